//! Messaging, the shell around the core's journey plan and send decision: the journey
//! function's `process_change`, the scheduler's `tick` and the sender's `deliver`, with the
//! dependencies they share (`Deps`) and the short cache of definitions, settings and
//! templates. Event functions link this crate; the ingest functions do not.

pub mod advance;
pub mod catalog;
pub mod config;
pub mod content;
pub mod feedback;
pub mod journey;
pub mod scheduler;
pub mod sender;
pub mod test_send;

use crm_app::config::ConfigError;
use crm_core::send::Provider;
use crm_providers::laaffic::Laaffic;
use crm_providers::queue::Queue;
use crm_providers::ses::Ses;
use crm_providers::sns::Sns;
use crm_providers::{MessageSender, ProviderError};
use crm_store::{Store, StoreError};

pub use catalog::Catalog;
pub use config::MessagingConfig;

/// A scheduled invocation's input (`template.yaml`:
/// `{"scheduledTime": "<aws.scheduler.scheduled-time>"}`).
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tick {
    #[serde(default)]
    pub scheduled_time: Option<String>,
}

impl Tick {
    /// The tick's time: the scheduled time, unless the invocation is late (then the clock),
    /// so a sample event replays the same tick and a delayed one misses nothing.
    pub fn now(&self, clock: time::OffsetDateTime) -> time::OffsetDateTime {
        self.scheduled_time
            .as_deref()
            .and_then(|t| crm_core::values::parse_ts(t).ok())
            .map_or(clock, |t| t.max(clock))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MessagingError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The deployment lacks what the use case needs (a queue, a key, a URL): not the
    /// message's fault, and not the table's.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// Everything the messaging use cases reach: built once per function instance.
pub struct Deps {
    pub store: Store,
    pub config: MessagingConfig,
    pub catalog: Catalog,
    pub ses: Ses,
    pub sns: Sns,
    pub laaffic: Option<Laaffic>,
    pub queue: Option<Queue>,
}

impl Deps {
    pub fn new(shared: &aws_config::SdkConfig, store: Store, config: MessagingConfig) -> Self {
        let catalog = Catalog::new(store.clone(), config.defaults.clone(), config.cache_ttl);
        Self {
            ses: Ses::new(shared, config.ses_configuration_set.clone()),
            sns: Sns::new(shared),
            laaffic: config.laaffic.clone().map(Laaffic::new),
            queue: config.queue_url.as_ref().map(|url| Queue::new(shared, url.clone())),
            catalog,
            store,
            config,
        }
    }

    /// The provider that carries `provider`'s messages, if this deployment has it.
    pub fn provider(&self, provider: Provider) -> Result<&dyn MessageSender, ProviderError> {
        match provider {
            Provider::Ses => Ok(&self.ses),
            Provider::Sns => Ok(&self.sns),
            Provider::Laaffic => match &self.laaffic {
                Some(l) => Ok(l),
                None => Err(ProviderError::Rejected {
                    provider: crm_providers::laaffic::PROVIDER,
                    message: "Laaffic is not configured (LAAFFIC_API_KEY, LAAFFIC_API_SECRET, LAAFFIC_APP_ID)".into(),
                }),
            },
        }
    }

    /// The send queue (`SEND_QUEUE_URL`).
    pub fn queue(&self) -> Result<&Queue, ConfigError> {
        self.queue.as_ref().ok_or_else(|| ConfigError {
            var: "SEND_QUEUE_URL",
            message: "is not set".into(),
        })
    }

    /// An event function's cold start: telemetry, configuration, clients.
    pub async fn cold_start() -> Result<Self, ConfigError> {
        crm_app::telemetry::init();
        let config = crm_app::config::Config::from_env().await?;
        Self::from_env(config.store().await).await
    }

    /// `cold_start`, for the scheduler: without `SEND_QUEUE_URL` it fails, naming it.
    pub async fn cold_start_with_queue() -> Result<Self, ConfigError> {
        let deps = Self::cold_start().await?;
        deps.queue()?;
        Ok(deps)
    }

    /// From the environment, as a Lambda cold start does, around the function's store.
    pub async fn from_env(store: Store) -> Result<Self, ConfigError> {
        let config = MessagingConfig::from_env().await?;
        let shared = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        Ok(Self::new(&shared, store, config))
    }

    /// `from_env`, for a function that enqueues (the scheduler, cron): without
    /// `SEND_QUEUE_URL` it fails at cold start, naming it, rather than at every tick.
    pub async fn from_env_with_queue(store: Store) -> Result<Self, ConfigError> {
        let deps = Self::from_env(store).await?;
        deps.queue()?;
        Ok(deps)
    }
}
