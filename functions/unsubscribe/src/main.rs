#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), crm_http::lambda::Error> {
    crm_http::lambda::serve_with(crm_unsubscribe::FUNCTION, crm_messaging::Deps::from_env).await
}
