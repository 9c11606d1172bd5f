//! A local stand-in for the Laaffic SMS API that checks what we send (path, headers, the
//! documented signature, body fields) and answers as configured: success, an HTTP 500, a
//! Laaffic error status, or too slowly.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};

pub const API_KEY: &str = "bDqJFiq9";
pub const API_SECRET: &str = "7bz1lzh9";
pub const APP_ID: &str = "app-test";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Sent,
    ServerError,
    /// A Laaffic status, e.g. `-10` (insufficient balance).
    Status(i32),
    /// Answers after this long.
    Slow(Duration),
}

/// One request as received, and whether it was well-formed and correctly signed.
#[derive(Debug, Clone)]
pub struct Request {
    pub body: Value,
    pub problems: Vec<String>,
}

#[derive(Clone)]
pub struct FakeLaaffic {
    pub base_url: String,
    answer: Arc<Mutex<Answer>>,
    received: Arc<Mutex<Vec<Request>>>,
}

impl FakeLaaffic {
    pub async fn start(answer: Answer) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let fake = Self {
            base_url,
            answer: Arc::new(Mutex::new(answer)),
            received: Arc::new(Mutex::new(Vec::new())),
        };
        let app = Router::new().route("/v3/sendSms", post(send)).with_state(fake.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        fake
    }

    pub fn set(&self, answer: Answer) {
        *self.answer.lock().unwrap() = answer;
    }

    pub fn received(&self) -> Vec<Request> {
        self.received.lock().unwrap().clone()
    }

    /// The configuration variables pointing the app at this fake.
    pub fn vars(&self) -> Vec<(&'static str, String)> {
        vec![
            ("LAAFFIC_API_KEY", API_KEY.into()),
            ("LAAFFIC_API_SECRET", API_SECRET.into()),
            ("LAAFFIC_APP_ID", APP_ID.into()),
            ("LAAFFIC_BASE_URL", self.base_url.clone()),
            ("LAAFFIC_SENDER_ID", "CRMTEST".into()),
            ("LAAFFIC_TIMEOUT_MS", "1000".into()),
        ]
    }
}

async fn send(State(fake): State<FakeLaaffic>, headers: HeaderMap, body: String) -> Response {
    let mut problems = Vec::new();
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    if header("content-type") != "application/json;charset=UTF-8" {
        problems.push(format!("content-type {}", header("content-type")));
    }
    if header("api-key") != API_KEY {
        problems.push("api-key".into());
    }
    let timestamp: i64 = header("timestamp").parse().unwrap_or_default();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    if (now - timestamp).abs() > 60 {
        problems.push(format!("timestamp {timestamp} is not now"));
    }
    let expected = crm_providers::laaffic::sign(API_KEY, API_SECRET, timestamp);
    if header("sign") != expected {
        problems.push("sign".into());
    }
    let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    if body["appId"] != APP_ID {
        problems.push("appId".into());
    }
    let numbers = body["numbers"].as_str().unwrap_or_default();
    if numbers.is_empty() || numbers.starts_with('+') || !numbers.chars().all(|c| c.is_ascii_digit()) {
        problems.push(format!("numbers {numbers:?}"));
    }
    let content = body["content"].as_str().unwrap_or_default();
    if content.is_empty() || content.chars().count() > 1024 {
        problems.push("content".into());
    }
    if body["orderId"].as_str().is_none_or(str::is_empty) {
        problems.push("orderId".into());
    }
    fake.received.lock().unwrap().push(Request {
        body: body.clone(),
        problems,
    });
    let answer = *fake.answer.lock().unwrap();
    match answer {
        Answer::Sent => Json(json!({
            "status": "0", "reason": "success", "success": "1", "fail": "0",
            "array": [{"msgId": format!("laaffic-{}", body["orderId"].as_str().unwrap_or_default()), "number": numbers, "orderId": body["orderId"]}]
        }))
        .into_response(),
        Answer::ServerError => (StatusCode::INTERNAL_SERVER_ERROR, "upstream failure").into_response(),
        Answer::Status(code) => {
            Json(json!({"status": code.to_string(), "reason": "refused", "success": "0", "fail": "1"})).into_response()
        }
        Answer::Slow(d) => {
            tokio::time::sleep(d).await;
            Json(json!({"status": "0", "reason": "success", "array": [{"msgId": "late"}]})).into_response()
        }
    }
}
