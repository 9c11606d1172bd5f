//! The two ways an event source hands a function a batch, each written once:
//!
//! - **SQS** ([`sqs`]): records are independent. Each is read as its typed payload and
//!   handled on its own; the ones that failed (or could not be read) are reported back
//!   (partial batch response, `ReportBatchItemFailures`) and SQS delivers only those again.
//! - **A DynamoDB stream** ([`stream`]): records of a shard are in order. They are handled
//!   one by one, `now` being the record's own time (so a replay decides as the first
//!   delivery did); the first failure is reported and nothing after it is tried, so Lambda
//!   retries from that record and the order holds.
//!
//! The per-record function returns `Result<_, E>`; its error is logged with the record's
//! id. What the records did is returned for the caller's metrics.

use std::fmt::Display;

use aws_lambda_events::dynamodb::{Event, EventRecord};
use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use aws_lambda_events::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use serde::de::DeserializeOwned;
use time::OffsetDateTime;

/// One SQS record, its body read as `T`.
pub struct Queued<'a, T> {
    pub body: T,
    pub record: &'a SqsMessage,
}

/// Handles each record of `event` with `each`; the response names the records to deliver
/// again: those `each` failed, and those whose body is not a `T` (after five receives they
/// reach the queue's dead-letter queue, where they can be read).
pub async fn sqs<T, R, E>(
    event: &SqsEvent,
    mut each: impl AsyncFnMut(Queued<'_, T>) -> Result<R, E>,
) -> (SqsBatchResponse, Vec<R>)
where
    T: DeserializeOwned,
    E: Display,
{
    let mut response = SqsBatchResponse::default();
    let mut done = Vec::new();
    for record in &event.records {
        let id = record.message_id.clone().unwrap_or_default();
        let body = match record.body.as_deref().map(serde_json::from_str::<T>) {
            Some(Ok(body)) => body,
            Some(Err(e)) => {
                tracing::error!(sqs_message_id = %id, error = %e, "unreadable queue record; left for the DLQ");
                response.add_failure(id);
                continue;
            }
            None => {
                tracing::error!(sqs_message_id = %id, "queue record without a body; left for the DLQ");
                response.add_failure(id);
                continue;
            }
        };
        match each(Queued { body, record }).await {
            Ok(r) => done.push(r),
            Err(e) => {
                tracing::error!(sqs_message_id = %id, error = %e, "queue record failed; SQS will deliver it again");
                response.add_failure(id);
            }
        }
    }
    (response, done)
}

/// Handles the records of `event` in order with `each`, each at its own time; stops at the
/// first failure and reports it, so Lambda retries the batch from that record.
pub async fn stream<R, E>(
    event: &Event,
    mut each: impl AsyncFnMut(&EventRecord, OffsetDateTime) -> Result<R, E>,
) -> (DynamoDbEventResponse, Vec<R>)
where
    E: Display,
{
    let mut response = DynamoDbEventResponse::default();
    let mut done = Vec::new();
    for record in &event.records {
        match each(record, record_time(record)).await {
            Ok(r) => done.push(r),
            Err(e) => {
                tracing::error!(error = %e, event_id = %record.event_id, "stream record failed; retried from this record");
                let mut failure = DynamoDbBatchItemFailure::default();
                failure.item_identifier = record.change.sequence_number.clone();
                response.batch_item_failures.push(failure);
                break;
            }
        }
    }
    (response, done)
}

/// When the record's change happened (DynamoDB's approximate creation time).
pub fn record_time(record: &EventRecord) -> OffsetDateTime {
    let nanos = record
        .change
        .approximate_creation_date_time
        .timestamp_nanos_opt()
        .unwrap_or_default();
    OffsetDateTime::from_unix_timestamp_nanos(nanos.into()).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqs_event(bodies: &[&str]) -> SqsEvent {
        let mut event = SqsEvent::default();
        for (i, body) in bodies.iter().enumerate() {
            let mut m = SqsMessage::default();
            m.message_id = Some(format!("m{i}"));
            m.body = Some((*body).to_owned());
            event.records.push(m);
        }
        event
    }

    fn failed(response: &SqsBatchResponse) -> Vec<String> {
        response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.clone())
            .collect()
    }

    #[tokio::test]
    async fn sqs_reports_the_records_that_failed_or_did_not_read_and_handles_the_rest() {
        let event = sqs_event(&["1", "\"two\"", "3", "4"]);
        let (response, done) = sqs(&event, async |q: Queued<'_, u32>| match q.body {
            3 => Err("boom"),
            n => Ok(n * 10),
        })
        .await;
        assert_eq!(failed(&response), ["m1", "m2"]);
        assert_eq!(done, [10, 40]);
    }

    fn stream_event(n: usize) -> Event {
        let mut event = Event::default();
        for i in 0..n {
            let mut r: EventRecord = serde_json::from_value(serde_json::json!({
                "eventID": format!("e{i}"), "eventName": "INSERT", "eventSource": "aws:dynamodb",
                "awsRegion": "us-east-1",
                "dynamodb": {"ApproximateCreationDateTime": 1_764_000_000 + i as i64, "SequenceNumber": format!("{i}00"),
                    "StreamViewType": "NEW_AND_OLD_IMAGES", "SizeBytes": 1}
            }))
            .unwrap();
            r.event_id = format!("e{i}");
            event.records.push(r);
        }
        event
    }

    #[tokio::test]
    async fn a_stream_batch_stops_at_its_first_failure_and_reports_it() {
        let event = stream_event(4);
        let mut seen = Vec::new();
        let (response, done) = stream(&event, async |r: &EventRecord, at: OffsetDateTime| {
            seen.push((r.event_id.clone(), at.unix_timestamp()));
            if r.event_id == "e2" { Err("boom") } else { Ok(()) }
        })
        .await;
        assert_eq!(done.len(), 2);
        assert_eq!(
            seen,
            [
                ("e0".into(), 1_764_000_000),
                ("e1".into(), 1_764_000_001),
                ("e2".into(), 1_764_000_002)
            ],
            "in order, each at its own time, nothing after the failure"
        );
        let ids: Vec<_> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.clone())
            .collect();
        assert_eq!(ids, [Some("200".to_owned())]);
    }
}
