//! The Lambda entry shared by every HTTP function: API Gateway events in, the function's
//! axum router handles them, API Gateway responses out.

use std::sync::Arc;

use crm_store::Store;

pub use lambda_http::Error;

/// Cold start (telemetry, configuration and what the function needs of it, clients), then
/// serve the function's router forever.
pub async fn serve(function: crate::HttpFunction) -> Result<(), Error> {
    crm_app::telemetry::init();
    let state = crate::AppState::from_env().await?;
    state.config.check(function.needs)?;
    lambda_http::run((function.router)(state)).await
}

/// `serve`, for a function whose router also needs a dependency `make` builds from the
/// function's store (the messaging dependencies of the cron and test-send functions); it
/// is put in `AppState::extensions` as an `Arc`.
pub async fn serve_with<T, F, E>(function: crate::HttpFunction, make: fn(Store) -> F) -> Result<(), Error>
where
    T: Send + Sync + 'static,
    F: Future<Output = Result<T, E>>,
    E: Into<Error>,
{
    crm_app::telemetry::init();
    let mut state = crate::AppState::from_env().await?;
    state.config.check(function.needs)?;
    let dependency = make(state.store.clone()).await.map_err(Into::into)?;
    state.extensions.insert(Arc::new(dependency));
    lambda_http::run((function.router)(state)).await
}
