//! A flood on one key while another posts: an operator's postbacks alone, then while
//! `FLOODERS` tasks post leads with a landing key as fast as they are answered (ten times the
//! operator's one request at a time). Everything runs in this process against one emulator,
//! which answers one request at a time: the operator's latency under the flood is the
//! emulator's queue as much as ours (in AWS each function instance is its own, the routes
//! are throttled apart and DynamoDB is not one queue).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use serde_json::json;
use tower::ServiceExt;

use crate::{call, ms, percentile};

/// Tasks flooding the landing key: ten times the operator's single sender.
pub const FLOODERS: usize = 10;

pub struct Flood {
    pub alone: Vec<Duration>,
    pub flooded: Vec<Duration>,
    /// Operator answers other than 200 under the flood.
    pub operator_errors: usize,
    pub flood_requests: u64,
    pub flood_5xx: u64,
    pub flood_seconds: f64,
}

async fn postback(app: &Router, key: &str, i: usize, tag: &str) -> anyhow::Result<(Duration, bool)> {
    let body = json!({"eventType": "deposit", "userId": format!("{tag}{i}"), "depositAmount": "10", "transactionId": format!("{tag}{i}")});
    let req = http::Request::post("/api/postback")
        .header("x-api-key", key)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))?;
    let started = Instant::now();
    let status = app.clone().oneshot(req).await?.status();
    Ok((started.elapsed(), status.is_success()))
}

pub async fn run(app: &Router, n: usize) -> anyhow::Result<Flood> {
    let origin = "https://lp.bench.example";
    let landing = call(
        app,
        "POST",
        "/api/sources",
        Some(json!({"name": "LP", "kind": "landing", "brand": "rushbet", "allowedOrigins": [origin]})),
    )
    .await?["key"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let operator = call(
        app,
        "POST",
        "/api/sources",
        Some(json!({"name": "Rushbet", "kind": "operator", "brand": "rushbet"})),
    )
    .await?["key"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let mut alone = Vec::new();
    for i in 0..n {
        let (took, ok) = postback(app, &operator, i, "alone").await?;
        anyhow::ensure!(ok, "an operator postback failed with nothing else running");
        alone.push(took);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let (requests, errors) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let started = Instant::now();
    let mut flooders = Vec::new();
    for f in 0..FLOODERS {
        let (app, key, stop, requests, errors) = (
            app.clone(),
            landing.clone(),
            stop.clone(),
            requests.clone(),
            errors.clone(),
        );
        flooders.push(tokio::spawn(async move {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let body = json!({"email": format!("flood{f}_{i}@example.com"), "firstName": "F"});
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
            }
        }));
    }
    let (mut flooded, mut operator_errors) = (Vec::new(), 0);
    for i in 0..n {
        let (took, ok) = postback(app, &operator, i, "flooded").await?;
        operator_errors += usize::from(!ok);
        flooded.push(took);
    }
    stop.store(true, Ordering::Relaxed);
    for f in flooders {
        f.await?;
    }
    Ok(Flood {
        alone,
        flooded,
        operator_errors,
        flood_requests: requests.load(Ordering::Relaxed),
        flood_5xx: errors.load(Ordering::Relaxed),
        flood_seconds: started.elapsed().as_secs_f64(),
    })
}

impl Flood {
    pub fn markdown(&mut self) -> String {
        self.alone.sort();
        self.flooded.sort();
        let row = |name: &str, l: &[Duration]| {
            format!(
                "| {name} | {} | {} | {} |\n",
                l.len(),
                ms(percentile(l, 0.5)),
                ms(percentile(l, 0.95))
            )
        };
        let mut md = String::from("| operator postbacks | requests | p50 ms | p95 ms |\n|---|---:|---:|---:|\n");
        md.push_str(&row("alone", &self.alone));
        md.push_str(&row(
            &format!("while {FLOODERS} tasks flood a landing key"),
            &self.flooded,
        ));
        md.push_str(&format!(
            "\nUnder the flood: {} of {} operator postbacks answered other than 200; the landing key's {} leads in {:.1} s ({:.0}/s), {} answered 5xx.\n",
            self.operator_errors,
            self.flooded.len(),
            self.flood_requests,
            self.flood_seconds,
            self.flood_requests as f64 / self.flood_seconds,
            self.flood_5xx
        ));
        md
    }
}
