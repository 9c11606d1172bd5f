//! `make bench`: per endpoint, latency, DynamoDB round trips and CPU per request, through
//! the same composed app as `make dev`, against the AWS endpoint in the environment (the
//! local emulator); the AWS SDK's own CPU floor per call; cold start per function binary;
//! and the emulator's memory and transaction cost as its table grows. Writes a Markdown
//! report to the path given as the first argument.

mod console;
mod flood;
mod messaging;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use axum::Router;
use axum::body::Body;
use crm_app::config::Config;
use crm_http::AppState;
use crm_local::runtime;
use crm_store::Store;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

const ADMIN_KEY: &str = "test-admin-key-0123456789";

/// Requests per row (`BENCH_N` overrides).
fn n() -> usize {
    env_number("BENCH_N", 200)
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// CPU time this process has used, all threads, in nanoseconds (the scheduler's own
/// accounting, not 10 ms ticks).
fn cpu_time() -> Duration {
    let tasks = std::fs::read_dir("/proc/self/task").map(|d| d.flatten().collect::<Vec<_>>());
    let ns: u64 = tasks
        .unwrap_or_default()
        .iter()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    Duration::from_nanos(ns)
}

/// A new table and the composed app over it.
async fn fresh() -> anyhow::Result<(Router, Store)> {
    let table = format!("bench-{}", uuid::Uuid::new_v4());
    fresh_on(Store::connect(table).await).await
}

/// The composed app over `store`'s (new) table. Ingest requests are sent without keys, as
/// `make dev` takes them (a warm key costs no DynamoDB request; the flood section uses keys).
async fn fresh_on(store: Store) -> anyhow::Result<(Router, Store)> {
    fresh_app(store, "off").await
}

async fn fresh_app(store: Store, ingest_auth: &'static str) -> anyhow::Result<(Router, Store)> {
    let table = store.table().to_owned();
    crm_local::ensure_table(store.client(), &table).await?;
    let config = Config::from_lookup(|k| match k {
        "TABLE_NAME" => Some(table.clone()),
        "ADMIN_API_KEY" => Some(ADMIN_KEY.into()),
        "INGEST_AUTH" => Some(ingest_auth.into()),
        _ => messaging::setting(k),
    })?;
    let mut state = AppState::new(store.clone(), config);
    let shared = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let messaging = crm_messaging::MessagingConfig::from_lookup(messaging::setting)?;
    let deps = Arc::new(crm_messaging::Deps::new(&shared, store.clone(), messaging));
    let import = crm_import_clicks::Deps::new(store.clone(), &state.config, |_| None)?;
    crm_local::wire(&mut state, &shared, deps, Vec::new(), Arc::new(import));
    Ok((crm_local::app(state), store))
}

/// Drops a finished scenario's table.
async fn done(store: Store) -> anyhow::Result<()> {
    store.client().delete_table().table_name(store.table()).send().await?;
    Ok(())
}

type Request = (&'static str, String, Option<Value>);

async fn call(app: &Router, method: &str, uri: &str, body: Option<Value>) -> anyhow::Result<Value> {
    let mut req = http::Request::builder()
        .method(method)
        .uri(uri)
        .header("authorization", format!("Bearer {ADMIN_KEY}"));
    if body.is_some() {
        req = req.header("content-type", "application/json");
    }
    let req = req.body(body.map(|b| Body::from(b.to_string())).unwrap_or_default())?;
    let res = app.clone().oneshot(req).await?;
    let status = res.status();
    let bytes = res.into_body().collect().await?.to_bytes();
    anyhow::ensure!(
        status.is_success(),
        "{method} {uri} answered {status}: {}",
        String::from_utf8_lossy(&bytes)
    );
    Ok(serde_json::from_slice(&bytes)?)
}

/// Unmeasured preparation: `count` requests built by `make`.
async fn setup(app: &Router, count: usize, make: &dyn Fn(usize) -> Request) -> anyhow::Result<()> {
    for i in 0..count {
        let (method, uri, body) = make(i);
        call(app, method, &uri, body).await?;
    }
    Ok(())
}

struct Row {
    name: String,
    p50: Duration,
    p95: Duration,
    cpu: Duration,
    calls_avg: f64,
    calls_max: u64,
    /// DynamoDB calls per request, by operation.
    per_op: BTreeMap<String, f64>,
}

impl Row {
    fn ops(&self) -> String {
        ops_text(&self.per_op)
    }
}

fn ops_text(per_op: &BTreeMap<String, f64>) -> String {
    per_op
        .iter()
        .map(|(op, n)| format!("{op} {n:.2}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The SDK's own CPU per call of each DynamoDB operation (µs), from the floor's rows: what
/// a request's calls cost before any code of ours runs.
struct Floor(BTreeMap<String, f64>);

impl Floor {
    fn of(rows: &[Row]) -> Self {
        Self(
            rows.iter()
                .filter_map(|r| {
                    let op = r.per_op.keys().next()?;
                    Some((op.clone(), r.cpu.as_secs_f64() * 1e6))
                })
                .collect(),
        )
    }

    /// What `per_op` calls cost at the floor, µs (`None` for an operation it does not
    /// measure).
    fn cost(&self, per_op: &BTreeMap<String, f64>) -> Option<f64> {
        per_op.iter().map(|(op, n)| Some(n * self.0.get(op)?)).sum()
    }

    /// `cpu_us` as a multiple of `floor_us`, as the tables print it.
    fn times(cpu_us: f64, floor_us: Option<f64>) -> String {
        floor_us
            .filter(|f| *f > 0.0)
            .map(|f| format!("{:.2}×", cpu_us / f))
            .unwrap_or_else(|| "–".into())
    }

    fn ratio_text(&self, cpu_us: f64, per_op: &BTreeMap<String, f64>) -> String {
        Self::times(cpu_us, self.cost(per_op))
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

fn us(d: Duration) -> String {
    format!("{:.0}", d.as_secs_f64() * 1e6)
}

/// Runs `N` iterations of `step`, measuring latency, CPU and DynamoDB requests of each.
async fn measure<F, Fut>(name: &str, store: &Store, step: F) -> anyhow::Result<Row>
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    measure_runs(name, store, n(), step).await
}

/// `measure`, `runs` times.
async fn measure_runs<F, Fut>(name: &str, store: &Store, runs: usize, mut step: F) -> anyhow::Result<Row>
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let (mut latencies, mut calls, mut ops) = (Vec::new(), Vec::new(), std::collections::BTreeMap::new());
    let cpu_start = cpu_time();
    for i in 0..runs {
        store.calls().reset();
        let started = Instant::now();
        step(i).await.with_context(|| format!("{name}, request {i}"))?;
        latencies.push(started.elapsed());
        for (op, count) in store.calls().snapshot() {
            *ops.entry(op).or_insert(0u64) += count;
        }
        calls.push(store.calls().total());
    }
    let cpu = (cpu_time() - cpu_start) / runs as u32;
    latencies.sort();
    let per_op = ops
        .iter()
        .map(|(op, count)| (op.clone(), *count as f64 / runs as f64))
        .collect();
    Ok(Row {
        name: name.to_owned(),
        p50: percentile(&latencies, 0.5),
        p95: percentile(&latencies, 0.95),
        cpu,
        calls_avg: calls.iter().sum::<u64>() as f64 / runs as f64,
        calls_max: calls.iter().copied().max().unwrap_or(0),
        per_op,
    })
}

async fn endpoint(name: &str, app: &Router, store: &Store, make: &dyn Fn(usize) -> Request) -> anyhow::Result<Row> {
    endpoint_runs(name, app, store, n(), make).await
}

async fn endpoint_runs(
    name: &str,
    app: &Router,
    store: &Store,
    runs: usize,
    make: &dyn Fn(usize) -> Request,
) -> anyhow::Result<Row> {
    measure_runs(name, store, runs, |i| {
        let (method, uri, body) = make(i);
        let app = app.clone();
        async move { call(&app, method, &uri, body).await.map(|_| ()) }
    })
    .await
}

fn click(i: usize) -> (&'static str, String, Option<Value>) {
    let body = json!({"clickId": format!("B_{i}"), "campaign": "bench", "source": "youtube"});
    ("POST", "/api/ingest/click".to_owned(), Some(body))
}

fn lead(i: usize) -> (&'static str, String, Option<Value>) {
    let body = json!({"clickId": format!("B_{i}"), "email": format!("b{i}@example.com"), "phone": format!("+5199988{:04}", i % 10_000), "firstName": "Ana"});
    ("POST", "/api/ingest/lead".to_owned(), Some(body))
}

fn deposit(i: usize) -> (&'static str, String, Option<Value>) {
    let body = json!({"eventType": "deposit", "clickId": format!("B_{i}"), "depositAmount": "25.50", "operatorId": "rushbet", "transactionId": format!("T{i}")});
    ("POST", "/api/postback".to_owned(), Some(body))
}

/// The rows; with the floor, each row's CPU as a multiple of the floor's for its calls.
fn table(md: &mut String, rows: &[Row], floor: Option<&Floor>) -> std::fmt::Result {
    let (head, rule) = match floor {
        Some(_) => (" × SDK floor |", "---:|"),
        None => ("", ""),
    };
    writeln!(
        md,
        "| case | p50 ms | p95 ms | CPU µs / request |{head} DynamoDB requests avg / max | per operation |"
    )?;
    writeln!(md, "|---|---:|---:|---:|{rule}---:|---|")?;
    for r in rows {
        let ratio = floor
            .map(|f| format!(" {} |", f.ratio_text(r.cpu.as_secs_f64() * 1e6, &r.per_op)))
            .unwrap_or_default();
        writeln!(
            md,
            "| {} | {} | {} | {} |{ratio} {:.2} / {} | {} |",
            r.name,
            ms(r.p50),
            ms(r.p95),
            us(r.cpu),
            r.calls_avg,
            r.calls_max,
            r.ops()
        )?;
    }
    Ok(())
}

/// The SDK alone, no application code: what one call of each kind costs.
async fn sdk_floor() -> anyhow::Result<Vec<Row>> {
    let (_, store) = fresh().await?;
    let key = |pk: String| {
        [("PK", pk), ("SK", "X".to_owned())]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), AttributeValue::S(v)))
            .collect::<std::collections::HashMap<_, _>>()
    };
    let client = store.client().clone();
    let table = store.table().to_owned();
    let mut rows = vec![
        measure("SDK GetItem", &store, |_| {
            let (client, table, key) = (client.clone(), table.clone(), key("FLOOR".into()));
            async move {
                client.get_item().table_name(table).set_key(Some(key)).send().await?;
                Ok(())
            }
        })
        .await?,
    ];
    rows.push(
        measure("SDK TransactWriteItems, 3 puts", &store, |i| {
            let (client, table) = (client.clone(), table.clone());
            let items: Vec<TransactWriteItem> = (0..3)
                .map(|j| {
                    let mut item = key(format!("FLOOR#{i}#{j}"));
                    item.insert("v".into(), AttributeValue::S("x".repeat(200)));
                    let put = Put::builder()
                        .table_name(&table)
                        .set_item(Some(item))
                        .condition_expression("attribute_not_exists(PK)")
                        .build()
                        .expect("a valid put");
                    TransactWriteItem::builder().put(put).build()
                })
                .collect();
            async move {
                client
                    .transact_write_items()
                    .set_transact_items(Some(items))
                    .client_request_token(uuid::Uuid::new_v4().to_string())
                    .send()
                    .await?;
                Ok(())
            }
        })
        .await?,
    );
    // The operations the endpoints, reports and the sender also make, each on the three
    // items the transactions left: a 3-key BatchGetItem, a Query answering 3 items, an
    // UpdateItem adding to a counter, a PutItem.
    let keys: Vec<_> = (0..3).map(|j| key(format!("FLOOR#0#{j}"))).collect();
    rows.push(
        measure("SDK BatchGetItem, 3 keys", &store, |_| {
            let (client, table, keys) = (client.clone(), table.clone(), keys.clone());
            async move {
                let wanted = aws_sdk_dynamodb::types::KeysAndAttributes::builder()
                    .set_keys(Some(keys))
                    .consistent_read(true)
                    .build()?;
                client.batch_get_item().request_items(table, wanted).send().await?;
                Ok(())
            }
        })
        .await?,
    );
    rows.push(
        measure("SDK Query, 3 items", &store, |_| {
            let (client, table) = (client.clone(), table.clone());
            async move {
                client
                    .query()
                    .table_name(table)
                    .key_condition_expression("PK = :pk")
                    .expression_attribute_values(":pk", AttributeValue::S("FLOOR#0#0".into()))
                    .send()
                    .await?;
                Ok(())
            }
        })
        .await?,
    );
    rows.push(
        measure("SDK UpdateItem, ADD a counter", &store, |_| {
            let (client, table, key) = (client.clone(), table.clone(), key("FLOOR#0#1".into()));
            async move {
                client
                    .update_item()
                    .table_name(table)
                    .set_key(Some(key))
                    .update_expression("ADD n :one")
                    .expression_attribute_values(":one", AttributeValue::N("1".into()))
                    .send()
                    .await?;
                Ok(())
            }
        })
        .await?,
    );
    rows.push(
        measure("SDK PutItem", &store, |i| {
            let (client, table) = (client.clone(), table.clone());
            let mut item = key(format!("FLOOR#PUT#{i}"));
            item.insert("v".into(), AttributeValue::S("x".repeat(200)));
            async move {
                client.put_item().table_name(table).set_item(Some(item)).send().await?;
                Ok(())
            }
        })
        .await?,
    );
    done(store).await?;
    Ok(rows)
}

fn tracked(stats: &Option<Value>) -> String {
    stats
        .as_ref()
        .map(|s| s["trackedInstances"].to_string())
        .unwrap_or_else(|| "?".into())
}

fn mib(stats: &Option<Value>) -> f64 {
    stats.as_ref().and_then(|s| s["residentBytes"].as_f64()).unwrap_or(0.0) / (1024.0 * 1024.0)
}

/// A release binary's size, and its size deflated (what a zip of it holds, give or take
/// the zip's own ~100 bytes).
fn sizes(binary: &str) -> std::io::Result<(u64, u64)> {
    let bytes = std::fs::read(format!("target/release/{binary}"))?;
    let mut zipped = flate2::write::DeflateEncoder::new(std::io::sink(), flate2::Compression::default());
    std::io::Write::write_all(&mut zipped, &bytes)?;
    zipped.try_finish()?;
    Ok((bytes.len() as u64, zipped.total_out()))
}

/// Cold start of a release binary: process start to its first answer, through the local
/// stand-in for the Lambda Runtime API serving one sample event.
async fn cold_start(binary: &str, event: &str) -> anyhow::Result<Duration> {
    let table = format!("bench-cold-{}", uuid::Uuid::new_v4());
    let store = Store::connect(table.clone()).await;
    crm_local::ensure_table(store.client(), &table).await?;
    let mut env = vec![
        ("TABLE_NAME".to_owned(), table),
        ("ADMIN_API_KEY".to_owned(), ADMIN_KEY.to_owned()),
        ("RUST_LOG".to_owned(), "warn".to_owned()),
    ];
    env.extend(messaging::ENV.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    let path = std::path::PathBuf::from(format!("target/release/{binary}"));
    let invoked = runtime::invoke(
        &path,
        binary,
        serde_json::from_str(event)?,
        &env,
        false,
        Duration::from_secs(20),
    )
    .await;
    done(store).await?;
    let invoked = invoked?;
    match invoked.answer {
        runtime::Answer::Exited(status) => Err(anyhow::anyhow!(
            "{binary} exited ({status}): {}",
            invoked.log.lines().last().unwrap_or("")
        )),
        _ => Ok(invoked.took),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    crm_app::telemetry::init();
    let out = std::env::args().nth(1).unwrap_or_else(|| "docs/performance.md".into());
    let n = n();

    // The console's pages on a table of BENCH_TABLE_INGESTS customers alone
    // (BENCH_ONLY=console): the section printed, nothing written.
    if std::env::var("BENCH_ONLY").as_deref() == Ok("console") {
        let big = env_number("BENCH_TABLE_INGESTS", 10_000);
        let (app, store) = fresh().await?;
        setup(&app, big, &|i| click(i + 1_000_000)).await?;
        setup(&app, n, &lead).await?;
        let someone = call(&app, "GET", "/api/customers?clickId=B_1000000", None).await?["customerId"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let rows = console::pages(&app, &store, &someone, n).await?;
        done(store).await?;
        let mut md = String::new();
        writeln!(md, "Console pages, {big} customers, {n} requests each:\n")?;
        let floor_rows = sdk_floor().await?;
        let floor = Floor::of(&floor_rows);
        table(&mut md, &rows, Some(&floor))?;
        writeln!(md, "\nThe SDK's floor in the same run:\n")?;
        table(&mut md, &floor_rows, None)?;
        print!("{md}");
        return Ok(());
    }

    // A flood on one key while an operator posts (BENCH_ONLY=flood runs only this).
    let (flood_app, flood_store) = fresh_app(
        Store::connect(format!("bench-{}", uuid::Uuid::new_v4())).await,
        "required",
    )
    .await?;
    let flooded = flood::run(&flood_app, n).await?;
    done(flood_store).await?;
    if std::env::var("BENCH_ONLY").as_deref() == Ok("flood") {
        print!("{}", flooded.markdown());
        return Ok(());
    }

    let floor_rows = sdk_floor().await?;
    let floor = Floor::of(&floor_rows);

    // Attribution and reports: the stream function's requests per record, and a report
    // over 30 days of counters.
    // The emulator answers a Query by reading its whole table, one request at a time: a
    // report's queries wait on each other there far longer than on DynamoDB, so its store
    // allows 30 s a request (the functions' 3 s would answer 503), and each report is run
    // REPORT_RUNS times, not N. Stalled-stream protection off, as the functions' store has it.
    let patient = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .operation_timeout(Duration::from_secs(30))
                .build(),
        )
        .stalled_stream_protection(aws_config::stalled_stream_protection::StalledStreamProtectionConfig::disabled())
        .load()
        .await;
    let report_table = format!("bench-{}", uuid::Uuid::new_v4());
    let (report_app, report_store) = fresh_on(Store::from_sdk_config(&patient, report_table)).await?;
    let attribution = attribution_per_record(&report_app, &report_store).await?;
    let today = time::OffsetDateTime::now_utc().date();
    let month = format!("from={}&to={today}", today - time::Duration::days(29));
    let mut reports = Vec::new();
    let mut report_floors = Vec::new();
    for (by, what) in [
        ("brand", format!("by brand ({REPORT_BRANDS} brands)")),
        ("day", "by day".to_owned()),
        ("influencer", "by influencer".to_owned()),
    ] {
        reports.push(
            endpoint_runs(
                &format!("report: 30 days {what}"),
                &report_app,
                &report_store,
                REPORT_RUNS,
                &|_| ("GET", format!("/api/reports?groupBy={by}&{month}"), None),
            )
            .await?,
        );
        let dimension = match by {
            "influencer" => crm_core::stats::Dimension::Influencer,
            _ => crm_core::stats::Dimension::Brand,
        };
        report_floors
            .push(raw_counters_floor(&report_store, dimension, today - time::Duration::days(29), today).await?);
    }
    done(report_store).await?;

    // Each group of rows gets a fresh table; the growth section measures a large one.
    let mut rows = Vec::new();
    let (app, store) = fresh().await?;
    rows.push(endpoint("click, new click id", &app, &store, &click).await?);
    rows.push(
        endpoint("click, repeated click id", &app, &store, &|i| {
            ("GET", format!("/api/ingest/click?clickid=B_{i}"), None)
        })
        .await?,
    );
    rows.push(endpoint("lead, known click id, new email + phone", &app, &store, &lead).await?);
    rows.push(endpoint("postback, known customer", &app, &store, &deposit).await?);
    rows.push(endpoint("postback, replayed (duplicate)", &app, &store, &deposit).await?);
    rows.push(
        endpoint("postback, unknown customer", &app, &store, &|i| {
            (
                "GET",
                format!("/api/postback?event=registration&userId=new{i}&operator=roobet"),
                None,
            )
        })
        .await?,
    );
    let customer = call(&app, "GET", "/api/customers?clickId=B_0", None).await?["customerId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    rows.push(
        endpoint("admin: customer profile", &app, &store, &|_| {
            ("GET", format!("/api/customers/{customer}"), None)
        })
        .await?,
    );
    rows.push(
        endpoint("admin: recent events (50)", &app, &store, &|_| {
            ("GET", "/api/events".to_owned(), None)
        })
        .await?,
    );
    rows.push(endpoint("health", &app, &store, &|_| ("GET", "/api/health".to_owned(), None)).await?);
    done(store).await?;

    // The emulator as its table grows: memory over many ingests, and whether a lead costs
    // the same on a small and a large table.
    let big = env_number("BENCH_TABLE_INGESTS", 10_000);
    let (small_app, small_store) = fresh().await?;
    setup(&small_app, n, &click).await?;
    let small = endpoint("lead, table of ~3 × N items", &small_app, &small_store, &lead).await?;
    done(small_store).await?;
    let before = std::env::var("AWS_ENDPOINT_URL")
        .ok()
        .and_then(|e| crm_local::emulator_stats(&e));
    let (big_app, big_store) = fresh().await?;
    let fill_started = Instant::now();
    setup(&big_app, big, &|i| click(i + 1_000_000)).await?;
    let fill = fill_started.elapsed();
    let after = std::env::var("AWS_ENDPOINT_URL")
        .ok()
        .and_then(|e| crm_local::emulator_stats(&e));
    // The same clicks again: every one a duplicate, so no new data. What memory does now is
    // the emulator's own behaviour, not the table's growth.
    setup(&big_app, big, &|i| click(i + 1_000_000)).await?;
    let replayed = std::env::var("AWS_ENDPOINT_URL")
        .ok()
        .and_then(|e| crm_local::emulator_stats(&e));
    setup(&big_app, n, &click).await?;
    let large = endpoint(&format!("lead, table of ~3 × {big} items"), &big_app, &big_store, &lead).await?;
    // The console on that table: {big} customers and more.
    let someone = call(&big_app, "GET", "/api/customers?clickId=B_1000000", None).await?["customerId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let console_rows = console::pages(&big_app, &big_store, &someone, n).await?;
    done(big_store).await?;

    // Messaging: the scheduler over 1,000 and 10,000 due messages, then the sender.
    let mut ticks = Vec::new();
    for count in [1_000, env_number("BENCH_DUE_MESSAGES", 10_000)] {
        ticks.push(messaging::scheduler(count, cpu_time).await?);
    }
    let sending = messaging::sender(n, cpu_time).await?;

    let mut cold = Vec::new();
    for f in &crm_local::FUNCTIONS {
        let event = match f.binary {
            "click" => include_str!("../../../../../events/click/seed-post.json"),
            "lead" => include_str!("../../../../../events/lead/seed-post.json"),
            "postback" => include_str!("../../../../../events/postback/seed-deposit.json"),
            "health" => include_str!("../../../../../events/health/get.json"),
            _ => include_str!("../../../../../events/admin/recent-clicks.json"),
        };
        let took = cold_start(f.binary, event).await;
        cold.push((f.binary, took, sizes(f.binary)));
    }
    for (_, binary) in crm_local::EVENT_FUNCTIONS {
        let event = match binary {
            "journey" => include_str!("../../../../../events/journey/profile-insert.json"),
            "sender" => include_str!("../../../../../events/sender/send-job.json"),
            "journey-advance" => include_str!("../../../../../events/journey-advance/tick.json"),
            "ses-events" => include_str!("../../../../../events/ses-events/permanent-bounce.json"),
            "sms-replies" => include_str!("../../../../../events/sms-replies/stop.json"),
            "attribution" => include_str!("../../../../../events/attribution/click-insert.json"),
            "daily-report" => include_str!("../../../../../events/daily-report/tick.json"),
            "import-clicks" => include_str!("../../../../../events/import-clicks/tick.json"),
            _ => include_str!("../../../../../events/scheduler/tick.json"),
        };
        let took = cold_start(binary, event).await;
        cold.push((binary, took, sizes(binary)));
    }

    let mut md = String::new();
    writeln!(md, "# Performance\n")?;
    writeln!(
        md,
        "Generated by `make bench` (`infra/local/src/bin/crm-bench.rs`); do not edit by hand. How to read it, and what the profile showed, is in [performance-notes.md](performance-notes.md).\n"
    )?;
    writeln!(
        md,
        "- Date: {}",
        crm_core::values::format_ts(time::OffsetDateTime::now_utc())
    )?;
    writeln!(
        md,
        "- Machine: {} cores, {}",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        cpu_model()
    )?;
    writeln!(
        md,
        "- Backend: the local emulator (`infra/emulator.py`: moto, requests serialised, connections kept alive); release build; single-threaded runtime as in Lambda; {n} requests per row, one at a time, in-process through the same router as `make dev` (no HTTP socket on our side)"
    )?;
    writeln!(
        md,
        "- CPU is this process's scheduler time (all threads) per request: our code, the AWS SDK and the kernel's share of the loopback I/O; the emulator is another process and is not counted\n"
    )?;
    writeln!(md, "## Endpoints\n")?;
    writeln!(
        md,
        "`× SDK floor`: the row's CPU over what its DynamoDB calls cost the SDK alone (the floor's rows below, same run). Goals: ingest ≤ 1.5×, reports ≤ 2×.\n"
    )?;
    table(&mut md, &rows, Some(&floor))?;
    writeln!(md, "\n## The AWS SDK's own floor\n")?;
    writeln!(
        md,
        "The same client calling DynamoDB directly, no application code: what any endpoint pays per call before our code runs.\n"
    )?;
    table(&mut md, &floor_rows, None)?;
    writeln!(md, "\n## The emulator as the table grows\n")?;
    writeln!(
        md,
        "{big} new clicks (each stores a click, an identifier and a profile: {} items) took {:.1} s; the emulator's resident memory went from {:.0} MiB to {:.0} MiB, which is those items as moto keeps them (about {:.1} KiB each). Replaying the same {big} clicks (every one a duplicate: no new data) then moved it to {:.0} MiB. Tracked model instances: {} before, {} after, {} after the replays.\n",
        3 * big,
        fill.as_secs_f64(),
        mib(&before),
        mib(&after),
        (mib(&after) - mib(&before)) * 1024.0 / (3 * big) as f64,
        mib(&replayed),
        tracked(&before),
        tracked(&after),
        tracked(&replayed),
    )?;
    table(&mut md, &[small, large], Some(&floor))?;
    writeln!(md, "\n## The console on that table\n")?;
    writeln!(
        md,
        "Each page logged in as an owner (the session's own reads included: the session and its user), warm, {n} requests each, on the table above ({big} customers from clicks, and the leads of the rows before). Goal: ≤ 8 DynamoDB requests per page, none a Scan, whatever the table holds; compare each page's CPU with the floor's per call.\n"
    )?;
    table(&mut md, &console_rows, Some(&floor))?;
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
    for t in &ticks {
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
    let per = |op: &str| *sending.dynamodb.get(op).unwrap_or(&0) as f64 / sending.count as f64;
    let total: u64 = sending.dynamodb.values().sum();
    // Against the SDK's own cost of the message's DynamoDB calls, its SES send and its
    // share of the queue's receive and delete.
    let per_op: BTreeMap<String, f64> = sending.dynamodb.keys().map(|op| (op.clone(), per(op))).collect();
    let sender_ratio = Floor::times(
        sending.cpu_us_per_message,
        floor.cost(&per_op).map(|d| d + sending.other_floor_us),
    );
    writeln!(
        md,
        "\nSender: {} welcome emails, each a queue record through the sender function (claim, profile, suppression list and send log, decide, frequency-cap record, render, SES v2 raw send, outcome). Goals: ≤ 6 DynamoDB requests (3 before the compliance rules: claim, profile, outcome) and 1 provider call per message; settings and templates read once per cache period.\n",
        sending.count
    )?;
    writeln!(
        md,
        "| messages | seconds | messages/s | DynamoDB requests/message | of which UpdateItem / GetItem / Query | provider calls/message | CPU µs/message | × SDK floor |"
    )?;
    writeln!(md, "|---:|---:|---:|---:|---|---:|---:|---:|")?;
    writeln!(
        md,
        "| {} | {:.2} | {:.0} | {:.2} | {:.2} / {:.2} / {:.3} | {:.2} | {:.0} | {} |",
        sending.count,
        sending.seconds,
        sending.count as f64 / sending.seconds,
        total as f64 / sending.count as f64,
        per("UpdateItem"),
        per("GetItem"),
        per("Query"),
        sending.provider_calls as f64 / sending.count as f64,
        sending.cpu_us_per_message,
        sender_ratio,
    )?;
    let mut lat = sending.stream_to_scheduled_ms.clone();
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
    writeln!(md, "\n## Attribution and reports\n")?;
    writeln!(
        md,
        "Attribution: {} records ({} clicks, each followed by a deposit dated from 0 to 29 days back, for {REPORT_BRANDS} brands) counted by the attribution function over the table's stream (filtered as its event source mapping filters it): {:.2} DynamoDB requests per record ({}), {:.0} µs CPU per record ({} the SDK floor of those calls; goal ≤ 1.5×), {:.1} s in all.\n",
        attribution.records,
        attribution.records / 2,
        attribution.requests_per_record,
        ops_text(&attribution.per_op),
        attribution.cpu_us_per_record,
        floor.ratio_text(attribution.cpu_us_per_record, &attribution.per_op),
        attribution.seconds
    )?;
    writeln!(
        md,
        "Reports over those 30 days of counters (last touch: one query per UTC day of the period, 4 at a time), {REPORT_RUNS} requests each. The emulator answers a query by reading its whole table (here some {} items), one request at a time, so the latency is the emulator's; the requests per report are what a report costs on DynamoDB:\n",
        attribution.items
    )?;
    table(&mut md, &reports, None)?;
    writeln!(
        md,
        "\nThe SDK's floor of a report: the same queries (the months' counter partitions, every page) through the plain client, items left undecoded, plus one `GetItem`. A Query's floor grows with what it answers, so the 3-item Query above is no yardstick here. Goal: ≤ 2×.\n"
    )?;
    writeln!(md, "| case | CPU µs / request | SDK floor µs | × SDK floor |")?;
    writeln!(md, "|---|---:|---:|---:|")?;
    for (r, raw) in reports.iter().zip(&report_floors) {
        let cpu = r.cpu.as_secs_f64() * 1e6;
        let floor_us = raw + floor.0.get("GetItem").copied().unwrap_or(0.0);
        writeln!(
            md,
            "| {} | {:.0} | {:.0} | {} |",
            r.name,
            cpu,
            floor_us,
            Floor::times(cpu, Some(floor_us))
        )?;
    }
    writeln!(md, "\n## A flood on one key\n")?;
    writeln!(
        md,
        "An operator key's postbacks alone; while one landing key sends ten times a busy landing page's {}/s; while {} tasks post with it as fast as they are answered. One process, one emulator answering one request at a time: under the unpaced flood the operator's latency is the emulator's queue (in AWS the routes are throttled apart, each function instance is its own and DynamoDB is not one queue; see operations.md, \"How a flood is contained\").\n",
        flood::BUSY_LANDING_PER_S,
        flood::FLOODERS
    )?;
    md.push_str(&flooded.markdown());
    writeln!(md, "\n## Cold start and size per function binary\n")?;
    writeln!(
        md,
        "Process start to the first answer, through a local stand-in for the Lambda Runtime API serving the function's sample event from `events/` (configuration, SDK client, one request including its DynamoDB calls). Profile: `lto = true`, `codegen-units = 1`, `strip = true`, `panic = \"abort\"`, host target ({}).\n",
        std::env::consts::ARCH
    )?;
    writeln!(
        md,
        "Zipped: the binary deflated as Lambda's deployment package holds it (`bootstrap` in a zip; the goal is at most 10 MB each). `make sam-build` prints the same for the artifacts SAM built.\n"
    )?;
    writeln!(md, "| binary | cold start ms | size MiB | zipped MiB |")?;
    writeln!(md, "|---|---:|---:|---:|")?;
    for (binary, took, size) in &cold {
        let took = took.as_ref().map(|d| ms(*d)).unwrap_or_else(|e| format!("failed: {e}"));
        let mib = |bytes: u64| format!("{:.1}", bytes as f64 / 1048576.0);
        let (size, zipped) = match size {
            Ok((size, zipped)) => (mib(*size), mib(*zipped)),
            Err(_) => Default::default(),
        };
        writeln!(md, "| {binary} | {took} | {size} | {zipped} |")?;
    }
    std::fs::write(&out, &md).with_context(|| format!("writing {out}"))?;
    print!("{md}");
    Ok(())
}

/// CPU of a report's counter queries through the plain client (every month's partition of
/// `dimension` between `from` and `to`, every page, nothing decoded), µs per report.
async fn raw_counters_floor(
    store: &Store,
    dimension: crm_core::stats::Dimension,
    from: time::Date,
    to: time::Date,
) -> anyhow::Result<f64> {
    let months: Vec<(time::Date, time::Date)> = if from.month() == to.month() {
        vec![(from, to)]
    } else {
        let first_end = from.replace_day(from.month().length(from.year()))?;
        vec![(from, first_end), (first_end.next_day().expect("a next day"), to)]
    };
    let started = cpu_time();
    for _ in 0..REPORT_RUNS {
        for (a, b) in &months {
            let (low, high) = crm_store::keys::stats_day_range(*a, *b);
            let mut start = None;
            loop {
                let out = store
                    .client()
                    .query()
                    .table_name(store.table())
                    .key_condition_expression("PK = :pk AND SK BETWEEN :low AND :high")
                    .expression_attribute_values(":pk", AttributeValue::S(crm_store::keys::stats_pk(dimension, *a)))
                    .expression_attribute_values(":low", AttributeValue::S(low.clone()))
                    .expression_attribute_values(":high", AttributeValue::S(high.clone()))
                    .set_exclusive_start_key(start)
                    .send()
                    .await?;
                start = out.last_evaluated_key;
                if start.is_none() {
                    break;
                }
            }
        }
    }
    Ok((cpu_time() - started).as_secs_f64() * 1e6 / REPORT_RUNS as f64)
}

/// Brands the attribution and report rows spread their records over.
const REPORT_BRANDS: usize = 20;
/// Requests per report row (each is some 33 queries).
const REPORT_RUNS: usize = 20;

struct AttributionCost {
    records: usize,
    requests_per_record: f64,
    per_op: BTreeMap<String, f64>,
    cpu_us_per_record: f64,
    seconds: f64,
    /// Items in the table afterwards.
    items: i64,
}

/// Clicks and deposits spread over 30 days and `REPORT_BRANDS` brands, then the
/// attribution function over the stream, as Lambda would run it; its requests counted.
async fn attribution_per_record(app: &Router, store: &Store) -> anyhow::Result<AttributionCost> {
    let now = time::OffsetDateTime::now_utc();
    let per_day = REPORT_BRANDS;
    for day in 0..30i64 {
        for b in 0..per_day {
            let click = format!("rep_{day}_{b}");
            let brand = format!("brand{b}");
            let occurred = crm_core::values::format_ts(now - time::Duration::days(day));
            call(
                app,
                "POST",
                "/api/ingest/click",
                Some(json!({"clickId": click, "brand": brand, "influencerId": format!("inf{}", b % 5)})),
            )
            .await?;
            call(
                app,
                "POST",
                "/api/postback",
                Some(json!({"event": "deposit", "clickId": click, "operator": brand, "amount": "10.5", "occurredAt": occurred})),
            )
            .await?;
        }
    }
    let config = Config::from_lookup(|k| match k {
        "TABLE_NAME" => Some(store.table().to_owned()),
        _ => None,
    })?;
    let deps = crm_attribution::Deps {
        store: store.clone(),
        reporting: config.reporting,
    };
    let shared = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let mut reader = crm_local::stream::StreamReader::open(&shared, store.client(), store.table())
        .await?
        .filtered_as("AttributionFunction")?;
    store.calls().reset();
    let (cpu_start, started) = (cpu_time(), Instant::now());
    let mut records = 0;
    loop {
        let handled = reader.pump(async |e| crm_attribution::handle(&deps, e).await).await?;
        if handled == 0 {
            break;
        }
        records += handled;
    }
    let seconds = started.elapsed().as_secs_f64();
    let cpu = cpu_time() - cpu_start;
    // Per record means per click and deposit (the reader's filter passes only those).
    let counted = 2 * 30 * per_day;
    let calls = store.calls().snapshot();
    let total: u64 = calls.values().sum();
    let per_op = calls
        .iter()
        .map(|(op, c)| (op.clone(), *c as f64 / counted as f64))
        .collect();
    anyhow::ensure!(
        records >= counted,
        "only {records} stream records for {counted} records"
    );
    let described = store.client().describe_table().table_name(store.table()).send().await?;
    let items = described.table.and_then(|t| t.item_count).unwrap_or(0);
    Ok(AttributionCost {
        items,
        records: counted,
        requests_per_record: total as f64 / counted as f64,
        per_op,
        cpu_us_per_record: cpu.as_secs_f64() * 1e6 / counted as f64,
        seconds,
    })
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}
