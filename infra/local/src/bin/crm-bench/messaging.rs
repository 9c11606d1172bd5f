//! The messaging part of `make bench`: scheduler throughput and requests per message for a
//! batch of due messages, the sender's requests, provider calls and CPU per message, and
//! how long the journey function takes from a committed lead to its scheduled message.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crm_core::definition::JourneyDefinition;
use crm_core::journey::{Milestone, Milestones, journeys, reach};
use crm_core::message::Message;
use crm_core::values::{Brand, CustomerId};
use crm_local::messaging::{ensure_queue, ensure_sender_identity, pump_queue_into};
use crm_local::stream::StreamReader;
use crm_messaging::{Deps, MessagingConfig};
use crm_providers::queue::Queue;
use crm_store::{CallCounter, Store};
use tokio::task::JoinSet;

use crate::floor::{Floor, SES_SEND};
use crate::measure::{cpu_time, env_number, its_calls, metered, n, times, us, us_or_dash};
use crate::meter::meter;

pub const FROM: &str = "bench@example.com";

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
    let store = Store::connect(table.clone()).await.with_interceptor(meter());
    crm_local::ensure_table(store.client(), &table).await?;
    let queue_url = ensure_queue(&aws_sdk_sqs::Client::new(&shared), &format!("{table}-send")).await?;
    ensure_sender_identity(&aws_sdk_sesv2::Client::new(&shared), FROM).await?;
    let config = MessagingConfig::from_lookup(setting)?;
    let sqs_calls = CallCounter::default();
    let mut deps = Deps::new(&shared, store, config);
    deps.ses = deps.ses.with_interceptor(meter());
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
pub async fn scheduler(count: usize) -> anyhow::Result<Throughput> {
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
    /// The sender's handler, per message.
    pub cpu: Duration,
    /// Of which inside the SDK's calls.
    pub sdk: Duration,
    /// The SDK's floor of the same calls (DynamoDB's and the SES send), per message.
    pub floor: Option<Duration>,
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
pub async fn sender(count: usize, floor: &Floor) -> anyhow::Result<Sending> {
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
    let (before, floor_sends) = (ses_raw_messages(&endpoint), floor.sends());
    // The handler's CPU alone: receiving and deleting is the event source mapping's work in
    // AWS. After each batch, the floor makes the same DynamoDB calls and one SES send per
    // message.
    let (mut cpu, mut sdk, mut floor_cpu) = (Duration::ZERO, Duration::ZERO, Some(Duration::ZERO));
    let mut dynamodb = std::collections::BTreeMap::new();
    let started = Instant::now();
    let mut received = 0;
    while received < count {
        s.deps.store.calls().reset();
        let mut batch = 0;
        let n = pump_queue_into(&sqs, &s.queue_url, 1, async |event| {
            batch = event.records.len() as u64;
            let (answer, spent, inside) = metered(crm_sender::handle(&s.deps, event)).await;
            sdk += inside;
            cpu += spent;
            answer
        })
        .await?;
        anyhow::ensure!(
            n > 0 || started.elapsed() < Duration::from_secs(60),
            "the queue ran dry"
        );
        let mut calls = s.deps.store.calls().snapshot();
        for (op, c) in &calls {
            *dynamodb.entry(op.clone()).or_insert(0) += c;
        }
        calls.insert(SES_SEND.to_owned(), batch);
        floor_cpu = floor_cpu.zip(floor.replay(&calls).await?).map(|(a, b)| a + b);
        received += n;
    }
    let seconds = started.elapsed().as_secs_f64();
    // The floor's own sends reached the same emulator.
    let provider_calls = ses_raw_messages(&endpoint)
        .saturating_sub(before)
        .saturating_sub((floor.sends() - floor_sends) as usize);
    let result = Sending {
        count,
        seconds,
        dynamodb,
        provider_calls,
        cpu: cpu / count as u32,
        sdk: sdk / count as u32,
        floor: floor_cpu.map(|f| f / count as u32),
        stream_to_scheduled_ms: latencies,
    };
    cleanup(&s).await;
    Ok(result)
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

pub struct Messaging {
    ticks: Vec<Throughput>,
    sending: Sending,
}

/// The scheduler over 1,000 and `BENCH_DUE_MESSAGES` due messages, then the sender over N.
pub async fn run(floor: &Floor) -> anyhow::Result<Messaging> {
    let mut ticks = Vec::new();
    for count in [1_000, env_number("BENCH_DUE_MESSAGES", 10_000)] {
        ticks.push(scheduler(count).await?);
    }
    Ok(Messaging {
        ticks,
        sending: sender(n(), floor).await?,
    })
}

impl Messaging {
    pub fn markdown(&self, floor: &Floor) -> Result<String, std::fmt::Error> {
        let mut md = String::new();
        writeln!(md, "\n## Messaging\n")?;
        writeln!(
            md,
            "Scheduler: one tick over N due messages (8 due-index shards, claims 1 conditional `UpdateItem` each, `SendMessageBatch` of 10). Goals: ≤ 1 DynamoDB write and ≤ 0.1 SQS request per message.\n"
        )?;
        writeln!(
            md,
            "| due messages | enqueued | seconds | messages/s | DynamoDB requests/message | SQS requests/message | CPU µs/message |"
        )?;
        writeln!(md, "|---:|---:|---:|---:|---:|---:|---:|")?;
        for t in &self.ticks {
            writeln!(
                md,
                "| {} | {} | {:.2} | {:.0} | {:.3} | {:.3} | {:.0} |",
                t.count,
                t.enqueued,
                t.seconds,
                t.enqueued as f64 / t.seconds,
                t.dynamodb_per_message,
                t.sqs_per_message,
                t.cpu_us_per_message
            )?;
        }
        let s = &self.sending;
        let per = |op: &str| *s.dynamodb.get(op).unwrap_or(&0) as f64 / s.count as f64;
        let total: u64 = s.dynamodb.values().sum();
        // Per message: its DynamoDB calls and one SES send.
        let mut per_op: std::collections::BTreeMap<String, f64> =
            s.dynamodb.keys().map(|op| (op.clone(), per(op))).collect();
        per_op.insert(SES_SEND.to_owned(), 1.0);
        let [sdk, ratio] = its_calls(floor, s.cpu, s.sdk, &per_op);
        writeln!(
            md,
            "\nSender: {} welcome emails, each a queue record through the sender function (claim, profile, suppression list and send log, decide, frequency-cap record, render, SES v2 raw send, outcome). CPU is the handler's (receiving and deleting is the event source mapping's work); `in its SDK calls` is the SDK's own CPU inside the handler's calls (DynamoDB's and SES's); the floor is the same kinds of calls, small, and one SES raw send per message, through the plain clients after each batch. Goals: 6 DynamoDB requests (claim, profile, suppression list, send log, frequency-cap record, outcome) plus one conditional `UpdateItem` per sending limit the message counts against (here two: the brand's daily budget and the hourly guard on new public-source addresses), 1 provider call per message, ≤ 1.5× its calls; settings and templates read once per cache period.\n",
            s.count
        )?;
        writeln!(
            md,
            "| messages | seconds | messages/s | DynamoDB requests/message | of which UpdateItem / GetItem / Query | provider calls/message | CPU µs/message | in its SDK calls µs (between hooks) | × its calls | SDK floor µs | × SDK floor |"
        )?;
        writeln!(md, "|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|")?;
        writeln!(
            md,
            "| {} | {:.2} | {:.0} | {:.2} | {:.2} / {:.2} / {:.3} | {:.2} | {} | {} | {} | {} | {} |",
            s.count,
            s.seconds,
            s.count as f64 / s.seconds,
            total as f64 / s.count as f64,
            per("UpdateItem"),
            per("GetItem"),
            per("Query"),
            s.provider_calls as f64 / s.count as f64,
            us(s.cpu),
            sdk,
            ratio,
            us_or_dash(s.floor),
            times(s.cpu, s.floor),
        )?;
        let mut lat = s.stream_to_scheduled_ms.clone();
        lat.sort_by(f64::total_cmp);
        let pick = |p: f64| {
            lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
                .copied()
                .unwrap_or(0.0)
        };
        writeln!(
            md,
            "\nStream to scheduled: from a lead's answer to its welcome message existing, reading the stream as soon as the answer came (the local stream reader; in AWS the event source mapping adds its own delivery delay, typically well under a second): p50 {:.1} ms, p99 {:.1} ms over {} leads.",
            pick(0.5),
            pick(0.99),
            lat.len()
        )?;
        Ok(md)
    }
}
