// The handler's future is boxed: its state machine is deep (SDK calls), and the runtime's
// own future would otherwise exceed the compiler's layout depth.
use lambda_runtime::{Error, LambdaEvent, run, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    // Without the send queue every tick would fail: it fails at cold start instead.
    let deps = crm_messaging::Deps::cold_start_with_queue().await?;
    let deps = &deps;
    run(service_fn(move |event: LambdaEvent<crm_scheduler::Tick>| async move {
        Box::pin(crm_scheduler::handle(deps, event.payload))
            .await
            .map_err(Error::from)
    }))
    .await
}
