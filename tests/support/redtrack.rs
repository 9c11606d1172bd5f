//! A local stand-in for Redtrack's click log (`GET /tracks`): checks the key, pages its
//! rows by `page`/`per` over the days `date_from`..=`date_to` of their `track_time`, and
//! answers scripted failures first (a 429 asks to wait a second; a 5xx says to retry at
//! once). It records when each request came.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Map, Value, json};

pub const API_KEY: &str = "rt-api-key-for-tests";

/// A request as received: when, and its query.
pub type Received = (Instant, BTreeMap<String, String>);

#[derive(Clone)]
pub struct FakeRedtrack {
    pub base_url: String,
    rows: Arc<Mutex<Vec<Map<String, Value>>>>,
    failures: Arc<Mutex<VecDeque<u16>>>,
    requests: Arc<Mutex<Vec<Received>>>,
}

impl FakeRedtrack {
    pub async fn start(rows: Vec<Map<String, Value>>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let fake = Self {
            base_url: format!("http://{}", listener.local_addr().unwrap()),
            rows: Arc::new(Mutex::new(rows)),
            failures: Arc::default(),
            requests: Arc::default(),
        };
        let app = Router::new().route("/tracks", get(tracks)).with_state(fake.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        fake
    }

    /// The next requests are answered with these statuses, in order.
    pub fn fail_next(&self, statuses: &[u16]) {
        self.failures.lock().unwrap().extend(statuses);
    }

    /// Every request so far: when, and its query.
    pub fn requests(&self) -> Vec<Received> {
        self.requests.lock().unwrap().clone()
    }
}

async fn tracks(State(fake): State<FakeRedtrack>, Query(q): Query<BTreeMap<String, String>>) -> Response {
    fake.requests.lock().unwrap().push((Instant::now(), q.clone()));
    if q.get("api_key").map(String::as_str) != Some(API_KEY) {
        return (StatusCode::UNAUTHORIZED, Json(json!({"error": "invalid api_key"}))).into_response();
    }
    if let Some(status) = fake.failures.lock().unwrap().pop_front() {
        let wait = if status == 429 { "1" } else { "0" };
        let status = StatusCode::from_u16(status).unwrap();
        return (status, [(header::RETRY_AFTER, wait)], "busy").into_response();
    }
    let (Some(from), Some(to)) = (q.get("date_from"), q.get("date_to")) else {
        return (StatusCode::BAD_REQUEST, "date_from and date_to are required").into_response();
    };
    let page: usize = q.get("page").and_then(|p| p.parse().ok()).unwrap_or(1);
    let per: usize = q.get("per").and_then(|p| p.parse().ok()).unwrap_or(100);
    assert!(per <= 10_000, "Redtrack allows per up to 10,000");
    let rows: Vec<Map<String, Value>> = fake
        .rows
        .lock()
        .unwrap()
        .iter()
        .filter(|r| {
            let day = &r["track_time"].as_str().unwrap()[..10];
            day >= from.as_str() && day <= to.as_str()
        })
        .cloned()
        .collect();
    let items: Vec<_> = rows.iter().skip((page - 1) * per).take(per).cloned().collect();
    Json(json!({"items": items, "total": rows.len()})).into_response()
}

/// A time as Redtrack's click log writes `track_time`: `YYYY-MM-DD HH:MM:SS`.
pub fn track_time(at: time::OffsetDateTime) -> String {
    format!("{} {:02}:{:02}:{:02}", at.date(), at.hour(), at.minute(), at.second())
}
