//! `POST /api/ingest/lead`: a landing-page form (JSON or form-encoded, from a browser on
//! another origin, hence CORS). Attaches email and phone to the customer of the click.

use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::routing::post;
use axum::{Json, Router};
use crm_core::input::LeadCommand;
use crm_platform::config::CorsOrigins;
use crm_platform::http::{self, ApiError, IngestFields};
use crm_platform::{AppState, ingest};
use time::OffsetDateTime;
use tower_http::cors::{AllowOrigin, CorsLayer};

pub const PATH: &str = "/api/ingest/lead";

fn cors(origins: &CorsOrigins) -> CorsLayer {
    let allow = match origins {
        CorsOrigins::Any => AllowOrigin::any(),
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
    http::ingest_router(state, PATH, post(lead)).layer(cors)
}

async fn lead(
    State(state): State<AppState>,
    IngestFields(fields): IngestFields,
) -> Result<Json<serde_json::Value>, ApiError> {
    let cmd = LeadCommand::parse(&fields, &state.config.defaults)?;
    let warnings = cmd.warnings.clone();
    let outcome = ingest::lead(&state.store, &state.config, cmd, OffsetDateTime::now_utc()).await?;
    tracing::info!(
        customer_id = %outcome.customer,
        lead_id = %outcome.record_id,
        duplicate = outcome.duplicate,
        merged = outcome.merged.len(),
        "lead ingested"
    );
    Ok(http::ingest_response(&outcome, "leadId", &warnings))
}
