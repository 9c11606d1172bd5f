// Lambda runs one request at a time per instance: a single-threaded runtime spends no CPU
// handing work between threads.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), crm_http::lambda::Error> {
    crm_http::lambda::serve(crm_lead::FUNCTION).await
}
