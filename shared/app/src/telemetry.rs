//! Logging: JSON lines in Lambda (CloudWatch), compact text locally. `RUST_LOG` filters.

use tracing_subscriber::EnvFilter;

pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(false);
    let result = if std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some() {
        // CloudWatch stamps each line itself.
        builder
            .json()
            .flatten_event(true)
            .without_time()
            .with_current_span(false)
            .try_init()
    } else {
        builder.compact().try_init()
    };
    // A second init (tests) keeps the first subscriber.
    drop(result);
}
