//! A flood on one key while another posts: an operator's postbacks alone; then while a
//! landing key posts ten times a busy landing page's traffic (`BUSY_LANDING_PER_S` × 10,
//! paced); then while `FLOODERS` tasks post with it as fast as they are answered.
//! Everything runs in this process against one emulator, which answers one request at a
//! time: under the unpaced flood the operator's latency is the emulator's queue (in AWS each
//! function instance is its own, the routes are throttled apart and DynamoDB is not one
//! queue).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use serde_json::json;
use tower::ServiceExt;

use crate::harness::call;
use crate::measure::{ms, percentile};

/// Tasks flooding the landing key: ten times the operator's single sender.
pub const FLOODERS: usize = 10;
/// A busy landing page's leads per second; the paced flood sends ten times that.
pub const BUSY_LANDING_PER_S: u64 = 5;

/// The operator's postbacks during one phase, and what the landing key sent meanwhile.
pub struct Phase {
    pub name: String,
    pub latencies: Vec<Duration>,
    /// Operator answers other than 200.
    pub operator_errors: usize,
    pub flood_requests: u64,
    pub flood_5xx: u64,
    pub seconds: f64,
}

pub struct Flood {
    pub phases: Vec<Phase>,
}

async fn postback(app: &Router, key: &str) -> anyhow::Result<(Duration, bool)> {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let body = json!({"eventType": "deposit", "userId": id, "depositAmount": "10", "transactionId": id});
    let req = http::Request::post("/api/postback")
        .header("x-api-key", key)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))?;
    let started = Instant::now();
    let status = app.clone().oneshot(req).await?.status();
    Ok((started.elapsed(), status.is_success()))
}

/// The three phases on a table of their own, keys required.
pub async fn run(n: usize) -> anyhow::Result<Flood> {
    let store = crm_store::Store::connect(format!("bench-{}", uuid::Uuid::new_v4())).await;
    let (app, store) = crate::harness::fresh_app(store, "required").await?;
    let flood = phases(&app, n).await;
    crate::harness::done(&store).await?;
    flood
}

async fn phases(app: &Router, n: usize) -> anyhow::Result<Flood> {
    let origin = "https://lp.bench.example";
    let key = |body: serde_json::Value| async move {
        anyhow::Ok(
            call(app, "POST", "/api/sources", Some(body)).await?["key"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        )
    };
    let landing = key(json!({"name": "LP", "kind": "landing", "brand": "rushbet", "allowedOrigins": [origin]})).await?;
    let operator = key(json!({"name": "Rushbet", "kind": "operator", "brand": "rushbet"})).await?;
    let paced = Duration::from_secs_f64(FLOODERS as f64 / (10 * BUSY_LANDING_PER_S) as f64);
    let mut phases = Vec::new();
    for (name, flooders, pace) in [
        ("alone".to_owned(), 0, None),
        (
            format!(
                "while a landing key sends {}/s (10 × a busy page)",
                10 * BUSY_LANDING_PER_S
            ),
            FLOODERS,
            Some(paced),
        ),
        (
            format!("while {FLOODERS} tasks flood a landing key as fast as answered"),
            FLOODERS,
            None,
        ),
    ] {
        phases.push(phase(app, &operator, &landing, origin, name, flooders, pace, n).await?);
    }
    Ok(Flood { phases })
}

#[allow(clippy::too_many_arguments)]
async fn phase(
    app: &Router,
    operator: &str,
    landing: &str,
    origin: &'static str,
    name: String,
    flooders: usize,
    pace: Option<Duration>,
    n: usize,
) -> anyhow::Result<Phase> {
    let stop = Arc::new(AtomicBool::new(false));
    let (requests, errors) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for f in 0..flooders {
        let (app, key, stop, requests, errors) = (
            app.clone(),
            landing.to_owned(),
            stop.clone(),
            requests.clone(),
            errors.clone(),
        );
        tasks.push(tokio::spawn(async move {
            // Paced senders start spread over one interval, so their requests arrive evenly.
            if let Some(pace) = pace {
                tokio::time::sleep(pace * f as u32 / flooders as u32).await;
            }
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let sent = Instant::now();
                let body = json!({"email": format!("flood{f}_{i}_{}@example.com", uuid::Uuid::new_v4().simple()), "firstName": "F"});
                let req = http::Request::post("/api/ingest/lead")
                    .header("x-api-key", &key)
                    .header("origin", origin)
                    .header("content-type", "application/json")
                    .body(Body::from(body.to_string()))
                    .expect("a request");
                let status = app
                    .clone()
                    .oneshot(req)
                    .await
                    .map(|r| r.status().as_u16())
                    .unwrap_or(500);
                requests.fetch_add(1, Ordering::Relaxed);
                if status >= 500 {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
                if let Some(pace) = pace {
                    tokio::time::sleep(pace.saturating_sub(sent.elapsed())).await;
                }
            }
        }));
    }
    let (mut latencies, mut operator_errors) = (Vec::new(), 0);
    for _ in 0..n {
        let (took, ok) = postback(app, operator).await?;
        operator_errors += usize::from(!ok);
        latencies.push(took);
    }
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await?;
    }
    latencies.sort();
    Ok(Phase {
        name,
        latencies,
        operator_errors,
        flood_requests: requests.load(Ordering::Relaxed),
        flood_5xx: errors.load(Ordering::Relaxed),
        seconds: started.elapsed().as_secs_f64(),
    })
}

impl Flood {
    /// The section of the whole report: what was run, and the table.
    pub fn section(&self) -> String {
        format!(
            "\n## A flood on one key\n\nAn operator key's postbacks alone; while one landing key sends ten times a busy landing page's {BUSY_LANDING_PER_S}/s; while {FLOODERS} tasks post with it as fast as they are answered. One process, one emulator answering one request at a time: under the unpaced flood the operator's latency is the emulator's queue (in AWS the routes are throttled apart, each function instance is its own and DynamoDB is not one queue; see operations.md, \"How a flood is contained\").\n\n{}",
            self.markdown()
        )
    }

    pub fn markdown(&self) -> String {
        let mut md = String::from(
            "| operator postbacks | requests | p50 ms | p95 ms | not 200 | landing key's leads meanwhile (per s, 5xx) |\n|---|---:|---:|---:|---:|---|\n",
        );
        for p in &self.phases {
            md.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} ({:.0}/s, {} 5xx) |\n",
                p.name,
                p.latencies.len(),
                ms(percentile(&p.latencies, 0.5)),
                ms(percentile(&p.latencies, 0.95)),
                p.operator_errors,
                p.flood_requests,
                p.flood_requests as f64 / p.seconds,
                p.flood_5xx
            ));
        }
        md
    }
}
