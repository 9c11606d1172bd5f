//! The event functions, run locally the way AWS drives them: the table's stream read
//! (`crate::stream`) into the journey and attribution functions, the send queue long-polled into the sender (records
//! it reports as failed stay on the queue, to be received again and, after five receives,
//! moved to the DLQ by the queue's redrive policy), the journey-advance and scheduler
//! functions ticked every five minutes, and the click-log import every ten. Also the messaging resources `template.yaml` declares: the queue, its DLQ and
//! the SES sender identity. Tests drive the same functions step by step (`pump_stream`,
//! `pump_queue`).

use std::time::Duration;

use anyhow::{Context, anyhow};
use crm_messaging::Deps;

use crate::stream::StreamReader;
use serde_json::{Value, json};

/// Seconds a received message stays invisible (`template.yaml`: six times the sender's
/// timeout).
pub const VISIBILITY_TIMEOUT: u32 = 720;
/// Receives before SQS moves a message to the DLQ.
pub const MAX_RECEIVES: u32 = 5;

/// Creates the send queue and its DLQ (or finds them) and returns the queue's URL.
pub async fn ensure_queue(sqs: &aws_sdk_sqs::Client, name: &str) -> anyhow::Result<String> {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let dlq = sqs
        .create_queue()
        .queue_name(format!("{name}-dlq"))
        .send()
        .await
        .context("CreateQueue (DLQ)")?;
    let dlq_arn = sqs
        .get_queue_attributes()
        .queue_url(dlq.queue_url().unwrap_or_default())
        .attribute_names(A::QueueArn)
        .send()
        .await
        .context("GetQueueAttributes (DLQ)")?
        .attributes
        .and_then(|mut a| a.remove(&A::QueueArn))
        .ok_or_else(|| anyhow!("the DLQ has no ARN"))?;
    let redrive = json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVES}).to_string();
    let queue = sqs
        .create_queue()
        .queue_name(name)
        .attributes(A::VisibilityTimeout, VISIBILITY_TIMEOUT.to_string())
        .attributes(A::RedrivePolicy, redrive)
        .send()
        .await
        .context("CreateQueue")?;
    queue.queue_url.ok_or_else(|| anyhow!("CreateQueue returned no URL"))
}

/// Verifies the sender identity in SES (the emulator sends only from verified identities,
/// as SES does).
pub async fn ensure_sender_identity(ses: &aws_sdk_sesv2::Client, email: &str) -> anyhow::Result<()> {
    match ses.create_email_identity().email_identity(email).send().await {
        Ok(_) => Ok(()),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_already_exists_exception()) => Ok(()),
        Err(e) => Err(anyhow!(aws_sdk_sesv2::error::DisplayErrorContext(e)).context("CreateEmailIdentity")),
    }
}

/// One receive from the send queue (long-polled for `wait` seconds) handed to the sender
/// as a Lambda event; the records it did not report as failed are deleted. Returns how many
/// records were received.
pub async fn pump_queue(deps: &Deps, sqs: &aws_sdk_sqs::Client, url: &str, wait: i32) -> anyhow::Result<usize> {
    pump_queue_into(sqs, url, wait, async |event| crm_sender::handle(deps, event).await).await
}

/// `pump_queue` with the function given: `handler` gets the event as Lambda would give it.
pub async fn pump_queue_into(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    wait: i32,
    handler: impl AsyncFnOnce(aws_lambda_events::sqs::SqsEvent) -> aws_lambda_events::sqs::SqsBatchResponse,
) -> anyhow::Result<usize> {
    let out = sqs
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .wait_time_seconds(wait)
        .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
        .send()
        .await
        .context("ReceiveMessage")?;
    let messages = out.messages.unwrap_or_default();
    if messages.is_empty() {
        return Ok(0);
    }
    let records: Vec<Value> = messages
        .iter()
        .map(|m| {
            let attributes: serde_json::Map<String, Value> = m
                .attributes
                .iter()
                .flatten()
                .map(|(k, v)| (k.as_str().to_owned(), Value::String(v.clone())))
                .collect();
            json!({
                "messageId": m.message_id,
                "receiptHandle": m.receipt_handle,
                "body": m.body,
                "attributes": attributes,
                "messageAttributes": {},
                "eventSource": "aws:sqs",
                "awsRegion": "us-east-1",
            })
        })
        .collect();
    let event: aws_lambda_events::sqs::SqsEvent =
        serde_json::from_value(json!({"Records": records})).context("building the SQS event")?;
    let response = handler(event).await;
    let failed: Vec<&str> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    // What Lambda's poller does with the records the function did not report: delete
    // them, in one batch.
    let done: Vec<&aws_sdk_sqs::types::Message> = messages
        .iter()
        .filter(|m| !failed.contains(&m.message_id().unwrap_or_default()))
        .collect();
    delete_batch(sqs, url, &done).await?;
    Ok(messages.len())
}

/// Deletes received messages from the queue in one request (at most ten, as received).
pub async fn delete_batch(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    messages: &[&aws_sdk_sqs::types::Message],
) -> anyhow::Result<()> {
    if messages.is_empty() {
        return Ok(());
    }
    let entries = messages
        .iter()
        .enumerate()
        .map(|(i, m)| {
            aws_sdk_sqs::types::DeleteMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .receipt_handle(m.receipt_handle().unwrap_or_default())
                .build()
        })
        .collect::<Result<Vec<_>, _>>()?;
    let out = sqs
        .delete_message_batch()
        .queue_url(url)
        .set_entries(Some(entries))
        .send()
        .await
        .context("DeleteMessageBatch")?;
    match out.failed.first() {
        Some(f) => Err(anyhow::anyhow!("DeleteMessageBatch: {} {:?}", f.code, f.message)),
        None => Ok(()),
    }
}

/// A stream function's loop: read, hand over, print what it did.
async fn stream_loop<F>(name: &str, mut reader: StreamReader, consumer: F)
where
    F: AsyncFn(aws_lambda_events::dynamodb::Event) -> aws_lambda_events::streams::DynamoDbEventResponse,
{
    loop {
        match reader.pump(&consumer).await {
            Ok(0) => tokio::time::sleep(Duration::from_millis(500)).await,
            Ok(n) => println!("{name}: {n} stream record(s) processed"),
            Err(e) => {
                eprintln!("{name}: {e:#}");
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        }
    }
}

/// The loops of `make dev`, until the process ends. Each prints what it did.
pub async fn run_loops(
    deps: std::sync::Arc<Deps>,
    attribution: std::sync::Arc<crm_attribution::Deps>,
    import: std::sync::Arc<crm_import_clicks::Deps>,
    shared: aws_config::SdkConfig,
    queue_url: String,
) -> anyhow::Result<()> {
    let (client, table) = (deps.store.client(), deps.store.table());
    let journey_reader = StreamReader::open(&shared, client, table)
        .await?
        .filtered_as("JourneyFunction")?;
    let attribution_reader = StreamReader::open(&shared, client, table)
        .await?
        .filtered_as("AttributionFunction")?;
    let sqs = aws_sdk_sqs::Client::new(&shared);
    let journey_deps = deps.clone();
    let journey = stream_loop("journey", journey_reader, async |event| {
        crm_journey::handle(&journey_deps, event).await
    });
    let attribution = stream_loop("attribution", attribution_reader, async |event| {
        crm_attribution::handle(&attribution, event).await
    });
    let queue_loop = {
        let deps = deps.clone();
        async move {
            loop {
                if let Err(e) = pump_queue(&deps, &sqs, &queue_url, 10).await {
                    eprintln!("sender: {e:#}");
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
            }
        }
    };
    let ticks = async move {
        let mut every = tokio::time::interval(Duration::from_secs(300));
        loop {
            every.tick().await;
            match crm_journey_advance::handle(&deps, crm_messaging::Tick::default()).await {
                Ok(r) if r.due > 0 => println!("journey-advance: {} due, {} went dormant", r.due, r.advanced),
                Ok(_) => {}
                Err(e) => eprintln!("journey-advance: {e}"),
            }
            match crm_scheduler::handle(&deps, crm_scheduler::Tick::default()).await {
                Ok(r) => println!(
                    "scheduler: {} due, {} enqueued, {} already claimed, {} interrupted",
                    r.due, r.enqueued, r.already_claimed, r.interrupted
                ),
                Err(e) => eprintln!("scheduler: {e}"),
            }
        }
    };
    // The click-log import and the silence watch, every ten minutes as EventBridge runs
    // them (imports for the sources listed in REDTRACK_API_KEYS only).
    let imports = async move {
        let mut every = tokio::time::interval(Duration::from_secs(600));
        loop {
            every.tick().await;
            match crm_import_clicks::tick(&import, time::OffsetDateTime::now_utc()).await {
                Ok(tick) => {
                    if !tick.silent_sources.is_empty() {
                        println!("conversion sources silent: {}", tick.silent_sources.join(", "));
                    }
                    for r in tick.sources {
                        println!(
                            "import-clicks {}: {} new, {} duplicates, {} pages{}",
                            r.source_id,
                            r.imported,
                            r.duplicates,
                            r.pages,
                            r.stopped.map(|s| format!(" (stopped: {s})")).unwrap_or_default()
                        );
                    }
                }
                Err(e) => eprintln!("import-clicks: {e}"),
            }
        }
    };
    tokio::join!(journey, attribution, queue_loop, ticks, imports);
    Ok(())
}
