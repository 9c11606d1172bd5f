// The handler's future is boxed: its state machine is deep (SDK calls), and the runtime's
// own future would otherwise exceed the compiler's layout depth.
use lambda_runtime::{Error, LambdaEvent, run, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let deps = crm_import_clicks::Deps::cold_start().await?;
    let deps = &deps;
    run(service_fn(move |event: LambdaEvent<serde_json::Value>| async move {
        Box::pin(crm_import_clicks::handle(deps, event.payload))
            .await
            .map_err(Error::from)
    }))
    .await
}
