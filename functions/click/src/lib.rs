//! `GET|POST /api/ingest/click`: a click from Redtrack (GET with macros filled into the
//! query string) or any other sender (JSON or form POST). Creates the click and, if new,
//! the customer; a repeated click id is answered as a duplicate and changes nothing. CORS,
//! for a landing page sending its clicks from the browser with its `landing` key.

use axum::extract::State;
use axum::http::Method;
use axum::routing::get;
use axum::{Json, Router};
use crm_core::input::ClickCommand;
use crm_core::source::Route;
use crm_http::{AppState, HttpFunction, IngestRequest, JsonResult};

pub const PATH: &str = "/api/ingest/click";

pub const FUNCTION: HttpFunction = HttpFunction {
    logical_id: "ClickFunction",
    binary: "click",
    routes: &[PATH],
    router,
};

pub fn router(state: AppState) -> Router {
    let cors = crm_http::browser_cors(&state.config.cors_origins, &[Method::GET, Method::POST]);
    crm_http::ingest_router(state, PATH, Route::Click, get(click).post(click)).layer(cors)
}

async fn click(State(state): State<AppState>, req: IngestRequest) -> JsonResult {
    let (_, body) = crm_http::ingest::<ClickCommand>(&state, &req, "clickId").await?;
    Ok(Json(body))
}
