//! The daily report: EventBridge Scheduler invokes `handle` once a day (`DailyReportSchedule`,
//! in the reporting time zone); it emails yesterday's totals per brand and the top
//! influencers (made by `crm_app::daily_report`) to `REPORT_RECIPIENTS` through SES. The
//! day is claimed in the table before anything is sent, so a retried or doubled invocation
//! never sends it twice.

use std::sync::Arc;

use crm_app::config::{Config, ConfigError, Reporting};
use crm_app::metrics::Metrics;
use crm_core::stats::local_date;
use crm_messaging::Tick;
use crm_providers::ses::OutboundEmail;
use crm_store::StoreError;
use serde::Serialize;
use time::{Duration, OffsetDateTime};

use crm_app::daily_report::content;

pub struct Deps {
    pub messaging: Arc<crm_messaging::Deps>,
    pub reporting: Reporting,
}

impl Deps {
    pub async fn cold_start() -> Result<Self, ConfigError> {
        crm_app::telemetry::init();
        let config = Config::from_env().await?;
        let store = config.store().await;
        Ok(Self {
            messaging: Arc::new(crm_messaging::Deps::from_env(store).await?),
            reporting: config.reporting,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "outcome")]
pub enum DailyReport {
    /// Sent (or, with real sending off, rendered and logged) to this many recipients.
    Sent { day: String, recipients: usize },
    /// An earlier run had this day.
    AlreadySent { day: String },
    /// `REPORT_RECIPIENTS` is empty.
    NoRecipients,
}

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The day was claimed, and sending failed: it is not retried (at most once).
    #[error("sending the daily report failed: {0}")]
    Send(String),
}

pub async fn handle(deps: &Deps, tick: Tick) -> Result<DailyReport, ReportError> {
    let now = tick.now(OffsetDateTime::now_utc());
    let store = &deps.messaging.store;
    let recipients = &deps.reporting.recipients;
    if recipients.is_empty() {
        tracing::info!("REPORT_RECIPIENTS is empty: no daily report");
        return Ok(DailyReport::NoRecipients);
    }
    let day = local_date(&deps.reporting.zone, now) - Duration::days(1);
    // Built before the day is claimed: a failed read leaves it to the schedule's retry.
    let (subject, html, text) = content(store, &deps.reporting, day).await?;
    if !store.claim_daily_report(day, now).await? {
        tracing::info!(%day, "daily report already sent");
        return Ok(DailyReport::AlreadySent { day: day.to_string() });
    }
    let config = &deps.messaging.config;
    for (i, to) in recipients.iter().enumerate() {
        let email = OutboundEmail {
            from: config.defaults.from_email.clone(),
            from_name: config.defaults.from_name.clone(),
            to: to.clone(),
            subject: subject.clone(),
            html: html.clone(),
            text: text.clone(),
            message_id: format!("report-{day}-{i}"),
            headers: Vec::new(),
            tags: Vec::new(),
        };
        if config.real_sending {
            deps.messaging
                .ses
                .send(&email)
                .await
                .map_err(|e| ReportError::Send(e.to_string()))?;
        } else {
            tracing::info!(%day, "daily report rendered, not sent (ENABLE_REAL_SENDING is not true)");
        }
    }
    store.mark_daily_report_sent(day, recipients.len(), now).await?;
    tracing::info!(%day, recipients = recipients.len(), "daily report sent");
    Metrics::new().count("DailyReportsSent", recipients.len()).emit();
    Ok(DailyReport::Sent {
        day: day.to_string(),
        recipients: recipients.len(),
    })
}
