//! `POST /api/ingest/lead`: a landing-page form (JSON or form-encoded, from a browser on
//! another origin, hence CORS). Attaches email and phone to the customer of the click.

use axum::extract::State;
use axum::http::Method;
use axum::routing::post;
use axum::{Json, Router};
use crm_core::input::LeadCommand;
use crm_core::source::Route;
use crm_http::{AppState, HttpFunction, IngestRequest, JsonResult};

pub const PATH: &str = "/api/ingest/lead";

pub const FUNCTION: HttpFunction = HttpFunction {
    logical_id: "LeadFunction",
    binary: "lead",
    needs: &[crm_http::Needs::SourceSecret],
    routes: &[PATH],
    router,
};

pub fn router(state: AppState) -> Router {
    // Its requests carry phone numbers: their metadata loads now, at cold start.
    crm_core::values::PhoneE164::warm_up();
    let cors = crm_http::browser_cors(&state.config.cors_origins, &[Method::POST]);
    crm_http::ingest_router(state, PATH, Route::Lead, post(lead)).layer(cors)
}

async fn lead(State(state): State<AppState>, req: IngestRequest) -> JsonResult {
    let (_, body) = crm_http::ingest::<LeadCommand>(&state, &req, "leadId").await?;
    Ok(Json(body))
}
