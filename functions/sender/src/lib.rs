//! The sender function: an SQS event source (partial batch responses). Each record names a
//! message; `crm_messaging::sender::deliver` sends it at most once. A record fails (and SQS
//! redelivers it, then moves it to the DLQ after five receives) only when DynamoDB could not
//! be reached; every provider outcome is recorded on the message instead.

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use crm_app::metrics::Metrics;
use crm_core::message::{Message, SendJob, Status};
use crm_messaging::Deps;
use crm_messaging::sender::{Delivered, deliver};
use time::OffsetDateTime;

pub async fn handle(deps: &Deps, event: SqsEvent) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    for record in event.records {
        if !process(deps, &record, OffsetDateTime::now_utc()).await {
            response.add_failure(record.message_id.clone().unwrap_or_default());
        }
    }
    response
}

/// One queue record; `false` asks SQS to deliver it again.
pub async fn process(deps: &Deps, record: &SqsMessage, now: OffsetDateTime) -> bool {
    let job: SendJob = match record.body.as_deref().map(serde_json::from_str) {
        Some(Ok(job)) => job,
        _ => {
            tracing::error!(sqs_message_id = ?record.message_id, "unreadable send job; left for the DLQ");
            return false;
        }
    };
    // One receive of the job: its receipt handle (new on every delivery), hashed short.
    let claim = claim_token(
        record
            .receipt_handle
            .as_deref()
            .or(record.message_id.as_deref())
            .unwrap_or_default(),
    );
    match deliver(deps, &job, &claim, now).await {
        Ok(Delivered::NotMine) => {
            tracing::info!(message_id = %job.message_id, "message already claimed or final; nothing to do");
            true
        }
        Ok(Delivered::Settled(message)) => {
            outcome_metric(&message);
            true
        }
        Err(e) => {
            tracing::error!(error = %e, message_id = %job.message_id, "send job failed; SQS will deliver it again");
            false
        }
    }
}

/// What became of a message, by channel and reason: sent, failed, skipped (or cancelled),
/// or deferred (caps, quiet hours).
fn outcome_metric(m: &Message) {
    let name = match m.status {
        Status::Sent => "MessagesSent",
        Status::Failed => "MessagesFailed",
        Status::Skipped | Status::Cancelled => "MessagesSkipped",
        _ => "MessagesDeferred",
    };
    Metrics::new()
        .dimension("Channel", m.channel.as_str())
        .dimension("Reason", m.reason.map_or("none", |r| r.as_str()))
        .count(name, 1)
        .emit();
}

/// A short, stable token for one receive (receipt handles run to a kilobyte).
fn claim_token(receipt: &str) -> String {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let mut h = DefaultHasher::new();
    receipt.hash(&mut h);
    format!("{:016x}{:08x}", h.finish(), receipt.len())
}
