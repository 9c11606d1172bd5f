//! `GET /api/health`: a real read against the table. 200 `healthy` or 503 `degraded`, so a
//! load balancer, uptime check or on-call engineer sees the truth.

use std::time::Instant;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use crm_http::{AppState, HttpFunction};
use serde_json::json;

pub const PATH: &str = "/api/health";

pub const FUNCTION: HttpFunction = HttpFunction {
    logical_id: "HealthFunction",
    binary: "health",
    needs: &[],
    routes: &[PATH],
    router,
};

pub fn router(state: AppState) -> Router {
    crm_http::finish(Router::new().route(PATH, get(health)).with_state(state))
}

async fn health(State(state): State<AppState>) -> Response {
    let started = Instant::now();
    let dynamodb = match state.store.ping().await {
        Ok(()) => json!({"status": "ok", "latencyMs": started.elapsed().as_millis() as u64}),
        Err(e) => {
            tracing::error!(error = %e, "health check: DynamoDB failed");
            json!({"status": "error", "error": "DynamoDB table unreachable"})
        }
    };
    let healthy = dynamodb["status"] == "ok";
    let body = json!({
        "status": if healthy { "healthy" } else { "degraded" },
        "version": env!("CARGO_PKG_VERSION"),
        "checks": {"dynamodb": dynamodb},
    });
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}
