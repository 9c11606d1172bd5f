#[tokio::main]
async fn main() -> Result<(), crm_platform::lambda::Error> {
    crm_platform::lambda::serve(crm_lead::router).await
}
