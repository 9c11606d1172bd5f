use lambda_runtime::{Error, LambdaEvent, run, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    crm_app::telemetry::init();
    let deps = crm_sms_replies::Deps::cold_start().await?;
    let deps = &deps;
    run(service_fn(move |event: LambdaEvent<_>| async move {
        Box::pin(crm_sms_replies::handle(deps, event.payload))
            .await
            .map_err(Error::from)
    }))
    .await
}
