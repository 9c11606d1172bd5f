//! `POST /api/ingest/lead`: a landing-page form (JSON or form-encoded, from a browser on
//! another origin, hence CORS). Attaches email and phone to the customer of the click.

use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::routing::post;
use axum::{Json, Router};
use crm_app::config::CorsOrigins;
use crm_core::input::LeadCommand;
use crm_http::{AppState, HttpFunction, IngestFields, JsonResult};
use tower_http::cors::{AllowOrigin, CorsLayer};

pub const PATH: &str = "/api/ingest/lead";

pub const FUNCTION: HttpFunction = HttpFunction {
    logical_id: "LeadFunction",
    binary: "lead",
    routes: &[PATH],
    router,
};

fn cors(origins: &CorsOrigins) -> CorsLayer {
    let allow = match origins {
        CorsOrigins::Any => AllowOrigin::any(),
        // Configuration checked each origin at cold start.
        CorsOrigins::List(list) => AllowOrigin::list(list.iter().filter_map(|o| HeaderValue::from_str(o).ok())),
    };
    CorsLayer::new()
        .allow_origin(allow)
        .allow_methods([Method::POST, Method::OPTIONS])
        .allow_headers([header::CONTENT_TYPE, HeaderName::from_static("x-api-key")])
        .max_age(std::time::Duration::from_secs(86_400))
}

pub fn router(state: AppState) -> Router {
    let cors = cors(&state.config.cors_origins);
    crm_http::ingest_router(state, PATH, post(lead)).layer(cors)
}

async fn lead(State(state): State<AppState>, IngestFields(fields): IngestFields) -> JsonResult {
    let (_, body) = crm_http::ingest::<LeadCommand>(&state, &fields, "leadId").await?;
    Ok(Json(body))
}
