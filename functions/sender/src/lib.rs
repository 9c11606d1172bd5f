//! The sender function: an SQS event source (partial batch responses). Each record names a
//! message; `crm_messaging::sender::deliver` sends it at most once. A record fails (and SQS
//! redelivers it, then moves it to the DLQ after five receives) only when DynamoDB could not
//! be reached; every provider outcome is recorded on the message instead.

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use crm_app::batch::{self, Queued};
use crm_app::metrics::Metrics;
use crm_core::message::{Message, SendJob, Status};
use crm_messaging::Deps;
use crm_messaging::MessagingError;
use crm_messaging::sender::{Delivered, deliver};
use time::OffsetDateTime;

pub async fn handle(deps: &Deps, event: SqsEvent) -> SqsBatchResponse {
    let (response, settled) = batch::sqs(&event, async |job: Queued<'_, SendJob>| {
        process(deps, &job, OffsetDateTime::now_utc()).await
    })
    .await;
    settled.iter().flatten().for_each(outcome_metric);
    response
}

/// One send job, at `now` (the sender's own clock: caps and quiet hours hold when it
/// sends, however late SQS delivers); the message it settled, if this receive sent it. An
/// error asks SQS to deliver the job again.
pub async fn process(
    deps: &Deps,
    job: &Queued<'_, SendJob>,
    now: OffsetDateTime,
) -> Result<Option<Message>, MessagingError> {
    // One receive of the job: its receipt handle (new on every delivery), hashed short.
    let record = job.record;
    let claim = claim_token(
        record
            .receipt_handle
            .as_deref()
            .or(record.message_id.as_deref())
            .unwrap_or_default(),
    );
    match deliver(deps, &job.body, &claim, now).await? {
        Delivered::NotMine => {
            tracing::info!(message_id = %job.body.message_id, "message already claimed or final; nothing to do");
            Ok(None)
        }
        Delivered::Settled(message) => Ok(Some(*message)),
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
