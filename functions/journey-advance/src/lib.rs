//! The journey-advance function: EventBridge Scheduler invokes `handle` every five minutes;
//! it finds the dormancy timers that are due through the due index (no scan) and marks
//! those customers dormant. The journey function then schedules the dormant stage's steps.

use crm_app::metrics::Metrics;
use crm_messaging::advance::{AdvanceReport, tick};
use crm_messaging::{Deps, Tick};
use crm_store::StoreError;
use time::OffsetDateTime;

pub async fn handle(deps: &Deps, event: Tick) -> Result<AdvanceReport, StoreError> {
    let report = tick(deps, event.now(OffsetDateTime::now_utc())).await?;
    tracing::info!(
        due = report.due,
        advanced = report.advanced,
        rescheduled = report.rescheduled,
        cleared = report.cleared,
        "journey-advance tick"
    );
    Metrics::new()
        .count("DormancyDue", report.due)
        .count("CustomersAdvanced", report.advanced)
        .emit();
    Ok(report)
}
