//! The send queue (SQS): the scheduler enqueues `SendJob`s in batches of ten, each delayed
//! until its message is due; the sender consumes them.

use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use crm_core::message::SendJob;

use crate::{ProviderError, classify_sdk};

pub const PROVIDER: &str = "sqs";
/// Most entries SQS takes in one `SendMessageBatch`.
pub const BATCH: usize = 10;
/// Longest delay SQS allows on a message.
pub const MAX_DELAY_SECONDS: i32 = 900;

#[derive(Debug, Clone)]
pub struct Queue {
    client: aws_sdk_sqs::Client,
    url: String,
}

impl Queue {
    /// SQS calls keep the SDK's retries: a job enqueued twice is harmless (the sender's
    /// claim lets one through).
    pub fn new(shared: &aws_config::SdkConfig, url: impl Into<String>) -> Self {
        Self {
            client: aws_sdk_sqs::Client::new(shared),
            url: url.into(),
        }
    }

    /// The same, with an SDK interceptor (the benchmark counts requests with one).
    pub fn with_interceptor(
        shared: &aws_config::SdkConfig,
        url: impl Into<String>,
        interceptor: impl aws_smithy_runtime_api::client::interceptors::Intercept + 'static,
    ) -> Self {
        let config = aws_sdk_sqs::config::Builder::from(shared)
            .interceptor(interceptor)
            .build();
        Self {
            client: aws_sdk_sqs::Client::from_conf(config),
            url: url.into(),
        }
    }

    pub fn client(&self) -> &aws_sdk_sqs::Client {
        &self.client
    }
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Sends up to ten jobs, each with its delay in seconds (0-900). Returns the indexes of
    /// the jobs SQS did not take.
    pub async fn send_batch(&self, jobs: &[(SendJob, i32)]) -> Result<Vec<usize>, ProviderError> {
        let entries = jobs
            .iter()
            .enumerate()
            .map(|(i, (job, delay))| {
                SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(serde_json::to_string(job).expect("a job serialises"))
                    .delay_seconds((*delay).clamp(0, MAX_DELAY_SECONDS))
                    .build()
                    .expect("id and body are set")
            })
            .collect();
        let out = self
            .client
            .send_message_batch()
            .queue_url(&self.url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| classify_sdk(PROVIDER, e))?;
        Ok(out.failed.iter().filter_map(|f| f.id.parse().ok()).collect())
    }
}
