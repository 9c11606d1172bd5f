//! The scheduler's use case, run every five minutes (and by the manual trigger): find what
//! is due in the next tick through the due index, claim each message `PENDING → QUEUED`
//! with a lease (one conditional write), and enqueue the claimed ones in batches of ten,
//! each delayed until its due time. Two ticks at once claim each message once. A tick that
//! dies after claiming leaves its messages `QUEUED`; their lease expires and the next tick
//! queues them again. A `SENDING` message whose lease expired lost its sender mid-send: it
//! is marked `FAILED` (`send_interrupted`), never sent again.

use crm_core::message::{SendJob, Status};
use crm_core::values::parse_ts;
use crm_providers::queue::{BATCH, MAX_DELAY_SECONDS};
use crm_store::{Due, StoreError, keys};
use time::{Duration, OffsetDateTime};
use tokio::task::JoinSet;

use crate::{Deps, MessagingError};

/// The schedule's period: a tick queues what falls due before the next one.
pub const TICK: Duration = Duration::minutes(5);
/// How long a queued message is left to its sender before it is queued again.
pub const QUEUE_LEASE: Duration = Duration::minutes(15);
const PAGE: i32 = 200;
/// Claims in flight at once: enough to hide each write's latency, few enough to keep a
/// burst of due messages from queueing every other request behind it.
const CONCURRENT_CLAIMS: usize = 16;

enum Claimed {
    Queued((SendJob, i32)),
    Interrupted,
    Lost,
}

async fn claim(store: crm_store::Store, action: Action, now: OffsetDateTime) -> Result<Claimed, StoreError> {
    Ok(match action {
        Action::Queue { due, delay } => {
            let lease = now.max(now + Duration::seconds(delay.into())) + QUEUE_LEASE;
            if store.queue_message(&due, lease, now).await? {
                let job = SendJob {
                    customer_id: due.customer,
                    message_id: due.message_id,
                };
                Claimed::Queued((job, delay))
            } else {
                Claimed::Lost
            }
        }
        Action::Interrupt(due) => {
            if store.interrupt_message(&due, now).await? {
                Claimed::Interrupted
            } else {
                Claimed::Lost
            }
        }
    })
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TickReport {
    /// Messages found due before the next tick (or whose lease expired).
    pub due: usize,
    pub enqueued: usize,
    /// Due messages another tick (or the journey function) moved first.
    pub already_claimed: usize,
    /// `SENDING` messages whose sender stopped: marked `FAILED`.
    pub interrupted: usize,
    /// Claimed but refused by SQS: queued again when their lease expires.
    pub enqueue_failed: usize,
    /// How late the most overdue pending message was (0 when none was overdue): a tick
    /// that keeps up keeps this near zero.
    pub lag_seconds: i64,
}

enum Action {
    Queue { due: Due, delay: i32 },
    Interrupt(Due),
}

fn action(due: Due, now: OffsetDateTime, horizon: OffsetDateTime) -> Option<Action> {
    let when = due.position.get(..24).and_then(|t| parse_ts(t).ok())?;
    match due.status {
        Status::Pending if when < horizon => {
            let delay = (when - now).whole_seconds().clamp(0, i64::from(MAX_DELAY_SECONDS)) as i32;
            Some(Action::Queue { due, delay })
        }
        Status::Queued if when <= now => Some(Action::Queue { due, delay: 0 }),
        Status::Sending if when <= now => Some(Action::Interrupt(due)),
        _ => None,
    }
}

pub async fn tick(deps: &Deps, now: OffsetDateTime) -> Result<TickReport, MessagingError> {
    let queue = deps.queue()?;
    let mut report = TickReport::default();
    let mut jobs: Vec<(SendJob, i32)> = Vec::new();
    let walked = walk(deps, queue, now, &mut report, &mut jobs).await;
    // Whatever was claimed goes on the queue, even when a later read failed: a claimed
    // message left off the queue would wait for its lease.
    if !jobs.is_empty() {
        enqueue(queue, &jobs, &mut report).await;
    }
    walked?;
    Ok(report)
}

async fn walk(
    deps: &Deps,
    queue: &crm_providers::queue::Queue,
    now: OffsetDateTime,
    report: &mut TickReport,
    jobs: &mut Vec<(SendJob, i32)>,
) -> Result<(), MessagingError> {
    let horizon = now + TICK;
    let mut failed = None;
    for shard in 0..keys::DUE_SHARDS {
        let mut start = None;
        loop {
            let (page, next) = deps.store.due_page(shard, horizon, PAGE, start).await?;
            for d in page.iter().filter(|d| d.status == Status::Pending) {
                if let Some(when) = d.position.get(..24).and_then(|t| parse_ts(t).ok()) {
                    report.lag_seconds = report.lag_seconds.max((now - when).whole_seconds());
                }
            }
            let actions: Vec<Action> = page.into_iter().filter_map(|d| action(d, now, horizon)).collect();
            report.due += actions.len();
            let mut actions = actions.into_iter().peekable();
            while actions.peek().is_some() {
                let mut claims = JoinSet::new();
                for action in actions.by_ref().take(CONCURRENT_CLAIMS) {
                    claims.spawn(claim(deps.store.clone(), action, now));
                }
                while let Some(result) = claims.join_next().await {
                    match result.expect("a claim task does not panic") {
                        Ok(Claimed::Queued(job)) => jobs.push(job),
                        Ok(Claimed::Interrupted) => report.interrupted += 1,
                        Ok(Claimed::Lost) => report.already_claimed += 1,
                        // The others in flight finish; this message is found again next tick.
                        Err(e) => failed = Some(e),
                    }
                }
            }
            while jobs.len() >= BATCH {
                let batch: Vec<_> = jobs.drain(..BATCH).collect();
                enqueue(queue, &batch, report).await;
            }
            if let Some(e) = failed.take() {
                return Err(e.into());
            }
            start = next;
            if start.is_none() {
                break;
            }
        }
    }
    Ok(())
}

async fn enqueue(queue: &crm_providers::queue::Queue, batch: &[(SendJob, i32)], report: &mut TickReport) {
    match queue.send_batch(batch).await {
        Ok(failed) => {
            report.enqueued += batch.len() - failed.len();
            report.enqueue_failed += failed.len();
        }
        Err(e) => {
            tracing::warn!(error = %e, jobs = batch.len(), "enqueue failed; the messages go again when their lease expires");
            report.enqueue_failed += batch.len();
        }
    }
}
