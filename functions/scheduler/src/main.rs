// The handler's future is boxed: its state machine is deep (SDK calls), and the runtime's
// own future would otherwise exceed the compiler's layout depth.
use lambda_runtime::{Error, LambdaEvent, run, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let deps = crm_messaging::Deps::cold_start().await?;
    // Without the send queue every tick would fail: fail at cold start instead, naming it.
    deps.queue()?;
    let deps = &deps;
    run(service_fn(move |event: LambdaEvent<crm_scheduler::Tick>| async move {
        Box::pin(crm_scheduler::handle(deps, event.payload))
            .await
            .map_err(Error::from)
    }))
    .await
}
