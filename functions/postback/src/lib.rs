//! `GET|POST /api/postback`: conversions (registration, FTD, deposit …) from operators,
//! trackers or Zapier. Idempotent per operator transaction id, or per payload fingerprint
//! within the dedupe window when no transaction id is sent.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use crm_core::input::PostbackCommand;
use crm_core::source::Route;
use crm_http::{AppState, HttpFunction, IngestRequest, JsonResult};

pub const PATH: &str = "/api/postback";

pub const FUNCTION: HttpFunction = HttpFunction {
    logical_id: "PostbackFunction",
    binary: "postback",
    needs: &[crm_http::Needs::SourceSecret],
    routes: &[PATH],
    router,
};

pub fn router(state: AppState) -> Router {
    // Its requests carry phone numbers: their metadata loads now, at cold start.
    crm_core::values::PhoneE164::warm_up();
    crm_http::ingest_router(state, PATH, Route::Postback, get(postback).post(postback))
}

async fn postback(State(state): State<AppState>, req: IngestRequest) -> JsonResult {
    let (cmd, mut body) = crm_http::ingest::<PostbackCommand>(&state, &req, "eventId").await?;
    tracing::info!(event_type = cmd.kind.as_str(), brand = %cmd.brand, "postback");
    if req.is_public() {
        return Ok(Json(body));
    }
    body["eventType"] = cmd.kind.as_str().into();
    body["brand"] = cmd.brand.as_str().into();
    Ok(Json(body))
}
