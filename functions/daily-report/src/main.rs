// The handler's future is boxed: its state machine is deep (SDK calls).
use lambda_runtime::{Error, LambdaEvent, run, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let deps = crm_daily_report::Deps::cold_start().await?;
    let deps = &deps;
    run(service_fn(move |event: LambdaEvent<crm_messaging::Tick>| async move {
        Box::pin(crm_daily_report::handle(deps, event.payload))
            .await
            .map_err(Error::from)
    }))
    .await
}
