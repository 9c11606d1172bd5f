#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), crm_http::lambda::Error> {
    crm_http::lambda::serve(crm_sms_inbound::FUNCTION).await
}
