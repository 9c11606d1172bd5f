//! The imperative shell shared by every function: typed configuration, the DynamoDB
//! adapter, the ingest use cases, HTTP plumbing (errors, input, auth) and the Lambda entry.

pub mod config;
pub mod http;
pub mod ingest;
pub mod keys;
pub mod lambda;
pub mod store;
pub mod telemetry;

use std::sync::Arc;

use config::Config;
use store::Store;

/// What every HTTP function's router needs.
#[derive(Clone, Debug)]
pub struct AppState {
    pub store: Store,
    pub config: Arc<Config>,
}

impl AppState {
    pub fn new(store: Store, config: Config) -> Self {
        Self {
            store,
            config: Arc::new(config),
        }
    }

    /// Cold start: configuration from the environment, then the AWS client.
    pub async fn from_env() -> Result<Self, config::ConfigError> {
        let config = Config::from_env()?;
        let store = Store::connect(config.table_name.clone()).await;
        Ok(Self::new(store, config))
    }
}
