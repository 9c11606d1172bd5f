//! `make bench`: latency and DynamoDB round trips per endpoint, through the same composed
//! app as `make dev`, against the AWS endpoint in the environment (the local emulator).
//! Writes a Markdown report to the path given as the first argument.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::Context;
use aws_sdk_dynamodb::types::AttributeValue;
use axum::Router;
use axum::body::Body;
use crm_app::config::Config;
use crm_http::AppState;
use crm_store::Store;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

/// Requests per row (`BENCH_N` overrides).
fn n() -> usize {
    std::env::var("BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100)
}

struct Bench {
    key: &'static str,
}

impl Bench {
    /// A new table and the composed app over it.
    async fn fresh(&self) -> anyhow::Result<(Router, Store)> {
        let table = format!("bench-{}", uuid::Uuid::new_v4());
        let store = Store::connect(table.clone()).await;
        crm_local::ensure_table(store.client(), &table).await?;
        let key = self.key;
        let config = Config::from_lookup(|k| match k {
            "TABLE_NAME" => Some(table.clone()),
            "ADMIN_API_KEY" => Some(key.into()),
            _ => None,
        })?;
        Ok((crm_local::app(AppState::new(store.clone(), config)), store))
    }

    /// Drops a finished scenario's table: the emulator slows down with all the data it holds.
    async fn done(&self, store: Store) -> anyhow::Result<()> {
        store.client().delete_table().table_name(store.table()).send().await?;
        Ok(())
    }

    /// Unmeasured preparation: `N` requests built by `make`.
    async fn setup(
        &self,
        app: &Router,
        make: impl Fn(usize) -> (&'static str, String, Option<Value>),
    ) -> anyhow::Result<()> {
        for i in 0..n() {
            let (method, uri, body) = make(i);
            call(app, method, &uri, body, self.key).await?;
        }
        Ok(())
    }
}

struct Row {
    name: &'static str,
    p50: Duration,
    p95: Duration,
    calls_avg: f64,
    calls_max: u64,
    ops: String,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

async fn call(app: &Router, method: &str, uri: &str, body: Option<Value>, admin_key: &str) -> anyhow::Result<Value> {
    let mut req = http::Request::builder()
        .method(method)
        .uri(uri)
        .header("authorization", format!("Bearer {admin_key}"));
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

/// Runs `N` requests built by `make(i)`, measuring latency and DynamoDB requests of each.
async fn measure(
    name: &'static str,
    app: &Router,
    store: &Store,
    key: &str,
    make: impl Fn(usize) -> (&'static str, String, Option<Value>),
) -> anyhow::Result<Row> {
    let (mut latencies, mut calls, mut ops) = (
        Vec::with_capacity(n()),
        Vec::with_capacity(n()),
        std::collections::BTreeMap::new(),
    );
    let cpu_start = cpu_time();
    for i in 0..n() {
        let (method, uri, body) = make(i);
        store.calls().reset();
        let started = Instant::now();
        call(app, method, &uri, body, key)
            .await
            .with_context(|| format!("{name}, request {i}"))?;
        latencies.push(started.elapsed());
        if started.elapsed() > Duration::from_secs(1) {
            tracing::warn!(name, i, ms = started.elapsed().as_millis() as u64, "slow request");
        }
        for (op, n) in store.calls().snapshot() {
            *ops.entry(op).or_insert(0u64) += n;
        }
        calls.push(store.calls().total());
    }
    let cpu = (cpu_time() - cpu_start) / n() as u32;
    eprintln!("{name}: cpu per request {:?}", cpu);
    latencies.sort();
    let ops = ops
        .iter()
        .map(|(op, count)| format!("{op} {:.2}", *count as f64 / n() as f64))
        .collect::<Vec<_>>()
        .join(", ");
    Ok(Row {
        name,
        p50: percentile(&latencies, 0.5),
        p95: percentile(&latencies, 0.95),
        calls_avg: calls.iter().sum::<u64>() as f64 / n() as f64,
        calls_max: calls.iter().copied().max().unwrap_or(0),
        ops,
    })
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    crm_app::telemetry::init();
    let out = std::env::args().nth(1).unwrap_or_else(|| "docs/performance.md".into());
    let key = "bench-admin-key-0123456789";
    let bench = Bench { key };

    // The emulator's own floor: a raw GetItem, no application code.
    let (_, store) = bench.fresh().await?;
    let mut raw = Vec::with_capacity(n());
    for _ in 0..n() {
        let started = Instant::now();
        store
            .client()
            .get_item()
            .table_name(store.table())
            .key("PK", AttributeValue::S("BENCH".into()))
            .key("SK", AttributeValue::S("BENCH".into()))
            .send()
            .await?;
        raw.push(started.elapsed());
    }
    raw.sort();

    let click = |i: usize| {
        (
            "POST",
            "/api/ingest/click".to_owned(),
            Some(json!({"clickId": format!("B_{i}"), "campaign": "bench", "source": "youtube"})),
        )
    };
    let deposit = |i: usize| {
        let body = json!({"eventType": "deposit", "clickId": format!("B_{i}"), "depositAmount": "25.50", "operatorId": "rushbet", "transactionId": format!("T{i}")});
        ("POST", "/api/postback".to_owned(), Some(body))
    };
    let mut rows = Vec::new();

    // Each scenario gets its own table (moto copies the whole table on every transaction,
    // so a shared, growing table would measure the emulator, not the endpoint).
    bench.done(store).await?;
    let (app, store) = bench.fresh().await?;
    rows.push(measure("click, new click id", &app, &store, key, click).await?);
    rows.push(
        measure("click, repeated click id", &app, &store, key, |i| {
            ("GET", format!("/api/ingest/click?clickid=B_{i}"), None)
        })
        .await?,
    );

    bench.done(store).await?;
    let (app, store) = bench.fresh().await?;
    bench.setup(&app, click).await?;
    rows.push(
        measure("lead, known click id, new email + phone", &app, &store, key, |i| {
            let body = json!({"clickId": format!("B_{i}"), "email": format!("b{i}@example.com"), "phone": format!("+5199988{i:04}"), "firstName": "Ana"});
            ("POST", "/api/ingest/lead".to_owned(), Some(body))
        })
        .await?,
    );

    bench.done(store).await?;
    let (app, store) = bench.fresh().await?;
    bench.setup(&app, click).await?;
    rows.push(measure("postback, known customer", &app, &store, key, deposit).await?);
    rows.push(measure("postback, replayed (duplicate)", &app, &store, key, deposit).await?);
    let customer = call(&app, "GET", "/api/customers?clickId=B_0", None, key).await?["customerId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    rows.push(
        measure("admin: customer profile", &app, &store, key, |_| {
            ("GET", format!("/api/customers/{customer}"), None)
        })
        .await?,
    );
    rows.push(
        measure("admin: recent events (50)", &app, &store, key, |_| {
            ("GET", "/api/events".to_owned(), None)
        })
        .await?,
    );

    bench.done(store).await?;
    let (app, store) = bench.fresh().await?;
    rows.push(
        measure("postback, unknown customer", &app, &store, key, |i| {
            (
                "GET",
                format!("/api/postback?event=registration&userId=new{i}&operator=roobet"),
                None,
            )
        })
        .await?,
    );
    rows.push(measure("health", &app, &store, key, |_| ("GET", "/api/health".to_owned(), None)).await?);
    bench.done(store).await?;

    let n = n();
    let mut md = String::new();
    writeln!(md, "# Performance")?;
    writeln!(md)?;
    writeln!(
        md,
        "Generated by `make bench` (`infra/local/src/bin/crm-bench.rs`); do not edit by hand."
    )?;
    writeln!(md)?;
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
        "- Backend: local moto emulator (`infra/emulator.py`, requests serialised), release build, {n} requests per row, one at a time, in-process through the same router as `make dev` (no HTTP socket); each group of rows on a fresh table, prepared by {n} unmeasured clicks where the case needs known customers"
    )?;
    for r in &rows {
        writeln!(
            md,
            "| {} | {} | {} | {:.2} / {} | {} |",
            r.name,
            ms(r.p50),
            ms(r.p95),
            r.calls_avg,
            r.calls_max,
            r.ops
        )?;
    }
    writeln!(md)?;
    writeln!(
        md,
        "Latency here is dominated by the emulator (compare the raw `GetItem` floor); the DynamoDB request counts are what carries over to AWS, where a round trip is typically single-digit milliseconds. moto also deep-copies the whole table for every transaction, so transaction latency here grows with table size (a bench on one shared table of a few thousand items exceeded the SDK's 3 s attempt timeout); real DynamoDB does not behave that way."
    )?;
    writeln!(md)?;
    writeln!(md, "## Release binary sizes")?;
    writeln!(md)?;
    writeln!(
        md,
        "Profile: `lto = true`, `codegen-units = 1`, `strip = true`, `panic = \"abort\"`, host target ({}).",
        std::env::consts::ARCH
    )?;
    writeln!(md)?;
    writeln!(md, "| binary | size |")?;
    writeln!(md, "|---|---:|")?;
    for bin in ["click", "lead", "postback", "health", "admin"] {
        if let Ok(meta) = std::fs::metadata(format!("target/release/{bin}")) {
            writeln!(md, "| {bin} | {:.1} MiB |", meta.len() as f64 / (1024.0 * 1024.0))?;
        }
    }
    std::fs::write(&out, &md).with_context(|| format!("writing {out}"))?;
    print!("{md}");
    Ok(())
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

/// CPU time (user + system) this process has used so far.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let ticks: u64 = fields.get(11).and_then(|u| u.parse().ok()).unwrap_or(0)
        + fields.get(12).and_then(|s| s.parse().ok()).unwrap_or(0);
    Duration::from_millis(ticks * 10)
}
