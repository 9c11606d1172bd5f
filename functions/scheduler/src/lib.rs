//! The scheduler: EventBridge Scheduler invokes `handle` every five minutes (its input
//! carries the scheduled time); the same tick runs on demand behind
//! `GET|POST /api/cron/process-messages` (the seed's manual trigger, `Authorization: Bearer
//! <CRON_SECRET>` when `CRON_SECRET` is set), answering with its counts.

use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::get;
use axum::{Json, Router};
use crm_app::metrics::{Metrics, Unit};
use crm_http::{ApiError, AppState, HttpFunction, JsonResult};
use crm_messaging::scheduler::{TickReport, tick};
use crm_messaging::{Deps, MessagingError};
use time::OffsetDateTime;

pub const PATH: &str = "/api/cron/process-messages";

pub const FUNCTION: HttpFunction = HttpFunction {
    logical_id: "CronFunction",
    binary: "cron",
    needs: &[],
    routes: &[PATH],
    router,
};

pub use crm_messaging::Tick;

pub async fn handle(deps: &Deps, event: Tick) -> Result<TickReport, MessagingError> {
    let now = event.now(OffsetDateTime::now_utc());
    let report = tick(deps, now).await?;
    tracing::info!(
        due = report.due,
        enqueued = report.enqueued,
        already_claimed = report.already_claimed,
        interrupted = report.interrupted,
        enqueue_failed = report.enqueue_failed,
        lag_seconds = report.lag_seconds,
        "scheduler tick"
    );
    Metrics::new()
        .value("SchedulerLag", report.lag_seconds as f64, Unit::Seconds)
        .count("MessagesQueued", report.enqueued)
        .count("MessagesInterrupted", report.interrupted)
        .emit();
    Ok(report)
}

pub fn router(state: AppState) -> Router {
    let deps: Arc<Deps> = state.extension();
    let routes = Router::new().route(PATH, get(process).post(process)).with_state(deps);
    crm_http::finish(routes)
}

async fn process(State(deps): State<Arc<Deps>>, headers: HeaderMap) -> JsonResult {
    crm_http::require_bearer(&headers, deps.config.cron_secret.as_ref())?;
    match handle(&deps, Tick::default()).await {
        Ok(report) => Ok(Json(serde_json::to_value(report).expect("a report serialises"))),
        Err(MessagingError::Store(e)) => Err(e.into()),
        Err(e @ MessagingError::Config(_)) => Err(ApiError::Unavailable(e.to_string())),
    }
}
