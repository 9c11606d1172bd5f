// `GET|POST /api/cron/process-messages` behind API Gateway: the scheduler's tick on demand.
use std::sync::Arc;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    crm_app::telemetry::init();
    let mut state = crm_http::AppState::from_env().await?;
    let deps = crm_messaging::Deps::from_env(state.store.clone()).await?;
    state.extensions.insert(Arc::new(deps));
    lambda_http::run(crm_scheduler::router(state)).await
}
