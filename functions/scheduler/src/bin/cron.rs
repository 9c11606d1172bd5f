// `GET|POST /api/cron/process-messages` behind API Gateway: the scheduler's tick on demand.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), crm_http::lambda::Error> {
    crm_http::lambda::serve_with(crm_scheduler::FUNCTION, crm_messaging::Deps::from_env_with_queue).await
}
