//! `GET|POST /api/ingest/click`: a click from Redtrack (GET with macros filled into the
//! query string) or any other sender (JSON or form POST). Creates the click and, if new,
//! the customer; a repeated click id is answered as a duplicate and changes nothing.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use crm_core::input::ClickCommand;
use crm_platform::http::{self, ApiError, IngestFields};
use crm_platform::{AppState, ingest};
use time::OffsetDateTime;

pub const PATH: &str = "/api/ingest/click";

pub fn router(state: AppState) -> Router {
    http::ingest_router(state, PATH, get(click).post(click))
}

async fn click(
    State(state): State<AppState>,
    IngestFields(fields): IngestFields,
) -> Result<Json<serde_json::Value>, ApiError> {
    let cmd = ClickCommand::parse(&fields, &state.config.defaults)?;
    let warnings = cmd.warnings.clone();
    let outcome = ingest::click(&state.store, cmd, OffsetDateTime::now_utc()).await?;
    tracing::info!(
        customer_id = %outcome.customer,
        click_id = %outcome.record_id,
        duplicate = outcome.duplicate,
        created = outcome.customer_created,
        "click ingested"
    );
    Ok(http::ingest_response(&outcome, "clickId", &warnings))
}
