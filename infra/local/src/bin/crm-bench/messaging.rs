//! The messaging part of `make bench`: scheduler throughput and requests per message for a
//! batch of due messages, the sender's requests, provider calls and CPU per message, and
//! how long the journey function takes from a committed lead to its scheduled message.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crm_core::definition::JourneyDefinition;
use crm_core::journey::{Milestone, Milestones, journeys, reach};
use crm_core::message::Message;
use crm_core::values::{Brand, CustomerId};
use crm_local::messaging::{ensure_queue, ensure_sender_identity, pump_queue};
use crm_local::stream::StreamReader;
use crm_messaging::{Deps, MessagingConfig};
use crm_providers::queue::Queue;
use crm_store::{CallCounter, Store};
use tokio::task::JoinSet;

const FROM: &str = "bench@example.com";

/// The messaging settings of every bench function (the setup's and the cold starts'), as
/// the stack's parameters set them in AWS.
pub const ENV: [(&str, &str); 4] = [
    ("ENABLE_REAL_SENDING", "true"),
    ("DEFAULT_FROM_EMAIL", FROM),
    ("UNSUBSCRIBE_SECRET", "bench-unsubscribe-secret-0123456789abcdef"),
    ("PUBLIC_BASE_URL", "http://localhost:3005"),
];

/// One of `ENV`'s settings.
pub fn setting(name: &str) -> Option<String> {
    ENV.iter().find(|(n, _)| *n == name).map(|(_, v)| (*v).to_owned())
}

pub struct Setup {
    pub deps: Arc<Deps>,
    pub sqs_calls: CallCounter,
    pub queue_url: String,
    pub shared: aws_config::SdkConfig,
}

/// A fresh table and queue, and messaging dependencies over them (real sending: the
/// providers are the emulator's).
pub async fn setup() -> anyhow::Result<Setup> {
    let shared = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let table = format!("bench-{}", uuid::Uuid::new_v4());
    let store = Store::connect(table.clone()).await;
    crm_local::ensure_table(store.client(), &table).await?;
    let queue_url = ensure_queue(&aws_sdk_sqs::Client::new(&shared), &format!("{table}-send")).await?;
    ensure_sender_identity(&aws_sdk_sesv2::Client::new(&shared), FROM).await?;
    let config = MessagingConfig::from_lookup(setting)?;
    let sqs_calls = CallCounter::default();
    let mut deps = Deps::new(&shared, store, config);
    deps.queue = Some(Queue::with_interceptor(&shared, queue_url.clone(), sqs_calls.clone()));
    Ok(Setup {
        deps: Arc::new(deps),
        sqs_calls,
        queue_url,
        shared,
    })
}

pub struct Throughput {
    pub count: usize,
    pub enqueued: usize,
    pub seconds: f64,
    pub dynamodb_per_message: f64,
    pub sqs_per_message: f64,
    pub cpu_us_per_message: f64,
}

/// `count` due messages (for synthetic customers), then one scheduler tick.
pub async fn scheduler(count: usize, cpu_time: fn() -> Duration) -> anyhow::Result<Throughput> {
    let s = setup().await?;
    let now = time::OffsetDateTime::now_utc();
    let step = JourneyDefinition::default_definition().steps[0].clone();
    let mut created = JoinSet::new();
    for chunk in (0..count).collect::<Vec<_>>().chunks(50) {
        for &i in chunk {
            let store = s.deps.store.clone();
            let step = step.clone();
            created.spawn(async move {
                let customer = CustomerId::parse(&uuid::Uuid::now_v7().to_string()).expect("a uuid");
                let mut m = Milestones::new();
                reach(
                    &mut m,
                    &Brand::parse("rushbet").expect("brand"),
                    Milestone::Touched,
                    now - time::Duration::minutes(1 + (i % 60) as i64),
                );
                let journey = journeys(&m).remove(0);
                store
                    .create_message(&Message::scheduled(&customer, &journey, &step, now))
                    .await
            });
        }
        while let Some(r) = created.join_next().await {
            r??;
        }
    }
    s.deps.store.calls().reset();
    s.sqs_calls.reset();
    let cpu = cpu_time();
    let started = Instant::now();
    let report = crm_messaging::scheduler::tick(&s.deps, now).await?;
    let seconds = started.elapsed().as_secs_f64();
    let cpu = cpu_time() - cpu;
    let result = Throughput {
        count,
        enqueued: report.enqueued,
        seconds,
        dynamodb_per_message: s.deps.store.calls().total() as f64 / count as f64,
        sqs_per_message: s.sqs_calls.total() as f64 / count as f64,
        cpu_us_per_message: cpu.as_secs_f64() * 1e6 / count as f64,
    };
    cleanup(&s).await;
    Ok(result)
}

pub struct Sending {
    pub count: usize,
    pub seconds: f64,
    pub dynamodb: std::collections::BTreeMap<String, u64>,
    pub provider_calls: usize,
    pub cpu_us_per_message: f64,
    /// The SDK's own CPU per message for the calls that are not DynamoDB's: one SES raw
    /// send, and the harness's share of a receive and a batch delete of ten.
    pub other_floor_us: f64,
    pub stream_to_scheduled_ms: Vec<f64>,
}

fn ses_raw_messages(endpoint: &str) -> usize {
    crm_local::emulator_get(endpoint, "/moto-api/data.json")
        .and_then(|b| serde_json::from_str::<serde_json::Value>(&b).ok())
        .and_then(|d| d["ses"]["RawMessage"].as_array().map(Vec::len))
        .unwrap_or(0)
}

/// `count` customers with an email (leads through the lead router), each one's welcome
/// scheduled by the journey function (timed per lead), queued by one tick, then sent.
pub async fn sender(count: usize, cpu_time: fn() -> Duration) -> anyhow::Result<Sending> {
    let s = setup().await?;
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap_or_default();
    let mut reader = StreamReader::open(&s.shared, s.deps.store.client(), s.deps.store.table())
        .await?
        .filtered_as("JourneyFunction")?;
    let router = crm_lead::router(lead_state(&s.deps.store)?);
    let mut latencies = Vec::new();
    for i in 0..count {
        let body = serde_json::json!({"email": format!("bench{i}.{}@example.com", uuid::Uuid::new_v4().simple()), "firstName": "Ana", "operatorId": "rushbet"});
        let req = http::Request::post("/api/ingest/lead")
            .header("content-type", "application/json")
            .body(axum::body::Body::from(body.to_string()))?;
        let response = tower::ServiceExt::oneshot(router.clone(), req).await?;
        anyhow::ensure!(response.status().is_success(), "lead failed: {}", response.status());
        let committed = Instant::now();
        while reader.pump(async |e| crm_journey::handle(&s.deps, e).await).await? == 0 {}
        latencies.push(committed.elapsed().as_secs_f64() * 1000.0);
    }
    crm_messaging::scheduler::tick(&s.deps, time::OffsetDateTime::now_utc()).await?;
    let sqs = aws_sdk_sqs::Client::new(&s.shared);
    let before = ses_raw_messages(&endpoint);
    s.deps.store.calls().reset();
    let cpu = cpu_time();
    let started = Instant::now();
    let mut received = 0;
    while received < count {
        let n = pump_queue(&s.deps, &sqs, &s.queue_url, 1).await?;
        anyhow::ensure!(
            n > 0 || started.elapsed() < Duration::from_secs(60),
            "the queue ran dry"
        );
        received += n;
    }
    let seconds = started.elapsed().as_secs_f64();
    let cpu = cpu_time() - cpu;
    let dynamodb = s.deps.store.calls().snapshot();
    let provider_calls = ses_raw_messages(&endpoint) - before;
    let other_floor_us = other_floor(&s, &sqs, count, cpu_time).await?;
    let result = Sending {
        count,
        seconds,
        dynamodb,
        provider_calls,
        cpu_us_per_message: cpu.as_secs_f64() * 1e6 / count as f64,
        other_floor_us,
        stream_to_scheduled_ms: latencies,
    };
    cleanup(&s).await;
    Ok(result)
}

/// The SDK alone, per message, for the sender's calls that are not DynamoDB's: an SES raw
/// send of a welcome-sized mail, and a tenth of a ten-message receive and batch delete.
async fn other_floor(
    s: &Setup,
    sqs: &aws_sdk_sqs::Client,
    count: usize,
    cpu_time: fn() -> Duration,
) -> anyhow::Result<f64> {
    use aws_sdk_sesv2::types::{EmailContent, RawMessage};
    let quiet = s
        .shared
        .to_builder()
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .stalled_stream_protection(aws_config::stalled_stream_protection::StalledStreamProtectionConfig::disabled())
        .build();
    let ses = aws_sdk_sesv2::Client::new(&quiet);
    let mail = format!(
        "From: {FROM}\r\nTo: floor@example.com\r\nSubject: Welcome\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{}",
        "<p>Hola Ana, bienvenida.</p>".repeat(150)
    );
    let started = cpu_time();
    for _ in 0..count {
        let raw = RawMessage::builder()
            .data(aws_sdk_sesv2::primitives::Blob::new(mail.as_bytes()))
            .build()?;
        ses.send_email()
            .from_email_address(FROM)
            .destination(
                aws_sdk_sesv2::types::Destination::builder()
                    .to_addresses("floor@example.com")
                    .build(),
            )
            .content(EmailContent::builder().raw(raw).build())
            .send()
            .await?;
    }
    let ses_us = (cpu_time() - started).as_secs_f64() * 1e6 / count as f64;
    for i in 0..count {
        sqs.send_message()
            .queue_url(&s.queue_url)
            .message_body(format!("{{\"floor\":{i}}}"))
            .send()
            .await?;
    }
    let started = cpu_time();
    let mut received = 0;
    while received < count {
        let out = sqs
            .receive_message()
            .queue_url(&s.queue_url)
            .max_number_of_messages(10)
            .send()
            .await?;
        let messages = out.messages.unwrap_or_default();
        anyhow::ensure!(!messages.is_empty(), "the floor's queue ran dry");
        received += messages.len();
        crm_local::messaging::delete_batch(sqs, &s.queue_url, &messages.iter().collect::<Vec<_>>()).await?;
    }
    let sqs_us = (cpu_time() - started).as_secs_f64() * 1e6 / received as f64;
    Ok(ses_us + sqs_us)
}

fn lead_state(store: &Store) -> anyhow::Result<crm_http::AppState> {
    let table = store.table().to_owned();
    // The leads come in without a key, as make dev takes them.
    let config = crm_app::config::Config::from_lookup(|k| match k {
        "TABLE_NAME" => Some(table.clone()),
        "INGEST_AUTH" => Some("off".into()),
        _ => None,
    })?;
    Ok(crm_http::AppState::new(store.clone(), config))
}

async fn cleanup(s: &Setup) {
    let _ = s
        .deps
        .store
        .client()
        .delete_table()
        .table_name(s.deps.store.table())
        .send()
        .await;
    let _ = aws_sdk_sqs::Client::new(&s.shared)
        .delete_queue()
        .queue_url(&s.queue_url)
        .send()
        .await;
}
