//! `GET|POST /api/ingest/click`: a click from Redtrack (GET with macros filled into the
//! query string) or any other sender (JSON or form POST). Creates the click and, if new,
//! the customer; a repeated click id is answered as a duplicate and changes nothing.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use crm_core::input::ClickCommand;
use crm_http::{AppState, HttpFunction, IngestFields, JsonResult};

pub const PATH: &str = "/api/ingest/click";

pub const FUNCTION: HttpFunction = HttpFunction {
    logical_id: "ClickFunction",
    binary: "click",
    routes: &[PATH],
    router,
};

pub fn router(state: AppState) -> Router {
    crm_http::ingest_router(state, PATH, get(click).post(click))
}

async fn click(State(state): State<AppState>, IngestFields(fields): IngestFields) -> JsonResult {
    let (_, body) = crm_http::ingest::<ClickCommand>(&state, &fields, "clickId").await?;
    Ok(Json(body))
}
