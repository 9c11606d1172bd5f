//! The Lambda entry shared by every HTTP function: API Gateway events in, the function's
//! axum router handles them, API Gateway responses out.

use axum::Router;

pub use lambda_http::Error;

/// Cold start (telemetry, configuration, clients), then serve `build(state)` forever.
pub async fn serve(build: fn(crate::AppState) -> Router) -> Result<(), Error> {
    crm_app::telemetry::init();
    let state = crate::AppState::from_env().await?;
    lambda_http::run(build(state)).await
}
