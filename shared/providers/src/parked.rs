//! Dead-letter queues that hold copies of personal data: Lambda parks an SNS notification it
//! could not handle (an SES bounce or complaint names its recipient; an SMS reply its
//! sender) for fourteen days. Erasure removes the person's copies from them and leaves the
//! rest for whoever redrives the queue.

use std::time::Duration;

use aws_sdk_sqs::types::{ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry, Message};

use crate::{ProviderError, classify_sdk};

const PROVIDER: &str = "sqs";
/// How long a message received for inspection stays hidden from other readers: longer than
/// one purge takes, so no message is read twice within it.
const HOLD: Duration = Duration::from_secs(120);
/// Most messages one purge reads per queue (a dead-letter queue that deep is an incident of
/// its own; the rest is left, and said so in the log).
const MAX_READ: usize = 2_000;

#[derive(Debug, Clone)]
pub struct ParkedQueues {
    client: aws_sdk_sqs::Client,
    urls: Vec<String>,
}

impl ParkedQueues {
    /// The queues erasure clears: `PARKED_QUEUE_URLS`, comma-separated (the SES events' and
    /// SMS replies' dead-letter queues in AWS; none under `make dev` unless set).
    pub fn urls_from_env() -> Vec<String> {
        std::env::var("PARKED_QUEUE_URLS")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(String::from)
            .collect()
    }

    /// Those queues, for a function's `AppState::extensions` at cold start (the admin API's
    /// and the console's: both erase).
    pub async fn from_env<S>(_: S) -> Result<Self, std::convert::Infallible> {
        let shared = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        Ok(Self::new(&shared, Self::urls_from_env()))
    }

    pub fn new(shared: &aws_config::SdkConfig, urls: Vec<String>) -> Self {
        Self {
            client: aws_sdk_sqs::Client::new(shared),
            urls,
        }
    }

    /// One queue: read until it answers nothing (each message stays hidden while this runs),
    /// delete the person's, put the others back.
    async fn purge_queue(&self, url: &str, needles: &[String]) -> Result<usize, ProviderError> {
        let (mut deleted, mut read, mut keep) = (0, 0, Vec::new());
        let outcome = async {
            while read < MAX_READ {
                let batch = self
                    .client
                    .receive_message()
                    .queue_url(url)
                    .max_number_of_messages(10)
                    .visibility_timeout(HOLD.as_secs() as i32)
                    // Long polling asks every SQS server, so an empty answer means empty.
                    .wait_time_seconds(1)
                    .send()
                    .await
                    .map_err(|e| classify_sdk(PROVIDER, e))?
                    .messages
                    .unwrap_or_default();
                if batch.is_empty() {
                    return Ok(());
                }
                read += batch.len();
                let (theirs, others): (Vec<Message>, Vec<Message>) = batch
                    .into_iter()
                    .partition(|m| mentions(m.body().unwrap_or(""), needles));
                keep.extend(others.into_iter().filter_map(|m| m.receipt_handle));
                if !theirs.is_empty() {
                    deleted += self.delete(url, theirs).await?;
                }
            }
            tracing::warn!(
                queue = url,
                read,
                "parked queue deeper than one purge reads: the rest was not checked"
            );
            Ok(())
        }
        .await;
        // Whatever happened, what is not theirs becomes visible again at once.
        for chunk in keep.chunks(10) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, handle)| {
                    ChangeMessageVisibilityBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(handle)
                        .visibility_timeout(0)
                        .build()
                        .expect("id and receipt handle are set")
                })
                .collect();
            let released = self
                .client
                .change_message_visibility_batch()
                .queue_url(url)
                .set_entries(Some(entries))
                .send()
                .await;
            if let Err(e) = released {
                // They reappear by themselves when the hold ends.
                tracing::warn!(queue = url, error = %classify_sdk(PROVIDER, e), "parked messages stay hidden until their hold ends");
            }
        }
        outcome.map(|()| deleted)
    }

    async fn delete(&self, url: &str, messages: Vec<Message>) -> Result<usize, ProviderError> {
        let entries: Vec<_> = messages
            .into_iter()
            .enumerate()
            .filter_map(|(i, m)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .set_receipt_handle(m.receipt_handle)
                    .build()
                    .ok()
            })
            .collect();
        let count = entries.len();
        let out = self
            .client
            .delete_message_batch()
            .queue_url(url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| classify_sdk(PROVIDER, e))?;
        match out.failed.first() {
            None => Ok(count),
            Some(f) => Err(ProviderError::Retryable {
                provider: PROVIDER,
                message: format!("deleting a parked message failed: {}", f.code),
            }),
        }
    }
}

impl ParkedQueues {
    /// Deletes every parked message whose text contains one of `needles` (lower-cased
    /// addresses); returns how many. Other messages are put back as they were.
    pub async fn purge(&self, needles: &[String]) -> Result<usize, ProviderError> {
        let mut deleted = 0;
        if needles.is_empty() {
            return Ok(0);
        }
        for url in &self.urls {
            deleted += self.purge_queue(url, needles).await?;
        }
        Ok(deleted)
    }
}

/// Whether a parked message's text names one of the addresses (compared without case;
/// JSON-in-JSON escapes nothing an address or an E.164 number contains).
fn mentions(body: &str, needles: &[String]) -> bool {
    let body = body.to_lowercase();
    needles.iter().any(|n| body.contains(n.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_is_theirs_when_it_names_one_of_their_addresses_in_any_case() {
        let needles = vec!["ana@example.com".to_owned(), "+51987654321".to_owned()];
        let sns = r#"{"Records":[{"Sns":{"Message":"{\"mail\":{\"destination\":[\"Ana@Example.com\"]}}"}}]}"#;
        assert!(mentions(sns, &needles));
        assert!(mentions(r#"{"originationNumber":"+51987654321"}"#, &needles));
        assert!(!mentions(r#"{"destination":["bob@example.com"]}"#, &needles));
        assert!(!mentions("anything", &[]));
    }
}
