//! `GET|POST /api/postback`: conversions (registration, FTD, deposit …) from operators,
//! trackers or Zapier. Idempotent per operator transaction id, or per payload fingerprint
//! within the dedupe window when no transaction id is sent.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use crm_core::input::PostbackCommand;
use crm_platform::http::{self, ApiError, IngestFields};
use crm_platform::{AppState, ingest};
use time::OffsetDateTime;

pub const PATH: &str = "/api/postback";

pub fn router(state: AppState) -> Router {
    http::ingest_router(state, PATH, get(postback).post(postback))
}

async fn postback(
    State(state): State<AppState>,
    IngestFields(fields): IngestFields,
) -> Result<Json<serde_json::Value>, ApiError> {
    let cmd = PostbackCommand::parse(&fields, &state.config.defaults)?;
    let (warnings, event_type, brand) = (
        cmd.warnings.clone(),
        cmd.kind.as_str().to_owned(),
        cmd.brand.to_string(),
    );
    let outcome = ingest::postback(&state.store, &state.config, cmd, OffsetDateTime::now_utc()).await?;
    tracing::info!(
        customer_id = %outcome.customer,
        event_id = %outcome.record_id,
        event_type = %event_type,
        brand = %brand,
        duplicate = outcome.duplicate,
        "postback ingested"
    );
    let Json(mut body) = http::ingest_response(&outcome, "eventId", &warnings);
    body["eventType"] = event_type.into();
    body["brand"] = brand.into();
    Ok(Json(body))
}
