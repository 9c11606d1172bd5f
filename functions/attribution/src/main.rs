// The handler's future is boxed: its state machine is deep (SDK calls).
use lambda_runtime::{Error, LambdaEvent, run, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let deps = crm_attribution::Deps::cold_start().await?;
    let deps = &deps;
    run(service_fn(move |event: LambdaEvent<_>| async move {
        Ok::<_, Error>(Box::pin(crm_attribution::handle(deps, event.payload)).await)
    }))
    .await
}
