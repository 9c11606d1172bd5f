// The handler's future is boxed: its state machine is deep (SDK calls).
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lambda_runtime::{Error, LambdaEvent, run, service_fn};

/// Left of the invocation's time when a recount stops.
const MARGIN: Duration = Duration::from_secs(5);

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let deps = crm_attribution::Deps::cold_start().await?;
    let deps = &deps;
    run(service_fn(
        move |event: LambdaEvent<crm_attribution::Invocation>| async move {
            let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
            let budget = Duration::from_millis(event.context.deadline)
                .saturating_sub(now)
                .saturating_sub(MARGIN);
            Ok::<_, Error>(Box::pin(crm_attribution::invoke(deps, event.payload, budget)).await?)
        },
    ))
    .await
}
