//! Time-based journey moves: a depositing customer goes dormant (retention 2) when the
//! brand's definition says so and no deposit came for its period. The journey function
//! records every deposit on the customer's timer (and takes dormancy away on a deposit that
//! follows it); the journey-advance function's `tick` applies the timers that are due. The
//! dormant milestone is a profile change like any other: the journey function schedules the
//! dormant stage's steps from it.

use crm_core::definition::AdvanceCheck;
use crm_core::journey::{EventKind, Milestone};
use crm_core::records::EventRecord;
use crm_core::values::Brand;
use crm_store::{AdvanceDue, StoreError, keys};
use time::OffsetDateTime;

use crate::Deps;

/// What a deposit did to the customer's timers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Deposit {
    pub timer_moved: bool,
    pub reactivated: bool,
}

/// A deposit (or FTD) event was recorded: push the customer's timer with its brand forward;
/// and when that deposit shows a dormancy was premature (it falls within the period before
/// `now`), end the dormancy. A late report of a deposit older than the period leaves a
/// dormant customer dormant (no second reactivation message).
pub async fn record_deposit(deps: &Deps, event: &EventRecord, now: OffsetDateTime) -> Result<Deposit, StoreError> {
    let is_deposit = EventKind::parse(&event.event_type).is_ok_and(|k| k.milestone() == Milestone::FirstDeposit);
    let Ok(brand) = Brand::parse(&event.brand) else {
        return Ok(Deposit::default());
    };
    if !is_deposit || brand.is_unbranded() {
        return Ok(Deposit::default());
    }
    let Some(customer) = deps.store.current_profile(&event.customer_id).await? else {
        return Ok(Deposit::default());
    };
    let definitions = deps.catalog.definitions(std::slice::from_ref(&brand)).await?;
    let Some(due) = definitions.for_brand(&brand).dormancy_due(event.at) else {
        return Ok(Deposit::default());
    };
    let mut done = Deposit {
        timer_moved: deps.store.record_deposit(&customer.id, &brand, event.at, due).await?,
        reactivated: false,
    };
    let dormant = customer
        .milestones
        .get(&brand)
        .is_some_and(|m| m.contains_key(&Milestone::Dormant));
    if done.timer_moved && dormant && due > now {
        done.reactivated = deps.store.reactivate(&customer.id, &brand, now).await?;
    }
    Ok(done)
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AdvanceReport {
    /// Timers found due.
    pub due: usize,
    /// Customers marked dormant.
    pub advanced: usize,
    /// Timers moved later (the definition's period changed).
    pub rescheduled: usize,
    /// Timers that no longer apply (the customer left the stage, or the advance was removed).
    pub cleared: usize,
}

const PAGE: i32 = 200;

pub async fn tick(deps: &Deps, now: OffsetDateTime) -> Result<AdvanceReport, StoreError> {
    let mut report = AdvanceReport::default();
    for shard in 0..keys::DUE_SHARDS {
        let mut start = None;
        loop {
            let (page, next) = deps.store.advance_due_page(shard, now, PAGE, start).await?;
            for timer in page {
                report.due += 1;
                apply(deps, &timer, now, &mut report).await?;
            }
            start = next;
            if start.is_none() {
                break;
            }
        }
    }
    Ok(report)
}

async fn apply(
    deps: &Deps,
    timer: &AdvanceDue,
    now: OffsetDateTime,
    report: &mut AdvanceReport,
) -> Result<(), StoreError> {
    let Some(customer) = deps.store.current_profile(&timer.customer).await? else {
        deps.store.settle_advance(timer, None).await?;
        report.cleared += 1;
        return Ok(());
    };
    let definitions = deps.catalog.definitions(std::slice::from_ref(&timer.brand)).await?;
    let definition = definitions.for_brand(&timer.brand);
    if customer.id != timer.customer {
        // The customer was merged away: its last deposit joins the survivor's timer (a
        // conditional maximum), which decides.
        if let Some(due) = definition.dormancy_due(timer.last_deposit) {
            deps.store
                .record_deposit(&customer.id, &timer.brand, timer.last_deposit, due)
                .await?;
        }
        deps.store.settle_advance(timer, None).await?;
        report.cleared += 1;
        return Ok(());
    }
    let journeys = customer.journeys();
    let journey = journeys.iter().find(|j| j.brand == timer.brand);
    match definition.check_advance(journey, timer.last_deposit, now) {
        AdvanceCheck::Advance { at } => {
            // One transaction with the timer's own condition: a deposit recorded since the
            // timer was read cancels it.
            if deps.store.advance_to_dormant(timer, at, now).await? {
                tracing::info!(customer_id = %customer.id, brand = %timer.brand, "customer went dormant");
                report.advanced += 1;
            }
        }
        AdvanceCheck::NotYet { due } => {
            deps.store.settle_advance(timer, Some(due)).await?;
            report.rescheduled += 1;
        }
        AdvanceCheck::NotApplicable => {
            deps.store.settle_advance(timer, None).await?;
            report.cleared += 1;
        }
    }
    Ok(())
}
