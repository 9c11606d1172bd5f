//! The ingest use cases: load what the decision needs, let the core decide, commit the
//! writes in one transaction, and retry from a fresh read when a concurrent request won a
//! race. Common-case cost: a new click is one transaction; a lead or postback is one batch
//! read plus one transaction.

use std::collections::BTreeMap;

use crm_core::identity::{Identifier, Owners};
use crm_core::input::{ClickCommand, LeadCommand, Names, PostbackCommand};
use crm_core::journey::Milestone;
use crm_core::plan::{
    DedupeClaim, FreshIds, Planned, TouchPlan, Write, lead_dedupe_key, plan_touch, postback_dedupe_key,
};
use crm_core::profile::{Profile, Touch};
use crm_core::records::{ClickRecord, EventRecord, LeadRecord};
use crm_core::values::CustomerId;
use time::OffsetDateTime;

use crate::config::Config;
use crate::store::{CommitError, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Concurrent writers kept invalidating our reads; the caller should retry.
    #[error("too much contention on these identifiers; retry")]
    Contended,
}

/// How many read-decide-commit rounds before giving up with a retryable error.
const MAX_ATTEMPTS: usize = 8;

/// What a committed (or recognised duplicate) ingest resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub customer: CustomerId,
    /// The record this request created or, when duplicate, the one it repeats.
    pub record_id: String,
    pub duplicate: bool,
    pub customer_created: bool,
    pub merged: Vec<CustomerId>,
}

fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

fn fresh_ids() -> FreshIds {
    FreshIds {
        customer: CustomerId::parse(&new_id()).expect("uuid v7 is a customer id"),
        merge: new_id(),
    }
}

/// What the endpoint adds to the touch's writes: its record and idempotency claim.
/// Returned writes go first, so their indexes say which condition failed.
type Extra<'a> = dyn Fn(&TouchPlan) -> Vec<Write> + Send + Sync + 'a;

enum Committed {
    Done(TouchPlan),
    /// One of the extras (record or idempotency claim) already existed: a repeat.
    Duplicate,
}

async fn commit_touch(
    store: &Store,
    touch: &Touch,
    reason: &str,
    optimistic: bool,
    extra: &Extra<'_>,
) -> Result<Committed, IngestError> {
    for attempt in 0..MAX_ATTEMPTS {
        if attempt > 1 {
            let jitter = u64::from(uuid::Uuid::new_v4().as_bytes()[0]) % 20;
            tokio::time::sleep(std::time::Duration::from_millis(5 * attempt as u64 + jitter)).await;
        }
        // First attempt of a click: assume everything is new and skip the read entirely.
        let owners = if attempt == 0 && optimistic {
            Owners::new()
        } else {
            store.owners(&touch.identifiers).await?
        };
        // After a lost race, also read the owners' profiles to see through merge tombstones.
        let mut profiles: BTreeMap<CustomerId, Profile> = if attempt > 0 {
            let ids: Vec<CustomerId> = owners
                .values()
                .cloned()
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            store.profiles(&ids).await?
        } else {
            BTreeMap::new()
        };
        let fresh = fresh_ids();
        let plan = loop {
            match plan_touch(touch, &owners, &profiles, &fresh, reason) {
                Planned::Ready(plan) => break Some(plan),
                Planned::NeedProfiles(ids) => {
                    let loaded = store.profiles(&ids).await?;
                    if ids.iter().any(|id| !loaded.contains_key(id)) {
                        // An owner without a profile: a write is in flight elsewhere. Re-read.
                        break None;
                    }
                    profiles.extend(loaded);
                }
            }
        };
        let Some(plan) = plan else { continue };
        let mut writes = extra(&plan);
        let extras = writes.len();
        writes.extend(plan.writes.iter().cloned());
        match store.commit(&writes).await {
            Ok(()) => return Ok(Committed::Done(plan)),
            Err(CommitError::Conflict { failed }) => {
                if failed.iter().any(|i| *i < extras) {
                    return Ok(Committed::Duplicate);
                }
                tracing::debug!(attempt, ?failed, "ingest transaction lost a race; re-reading");
            }
            Err(CommitError::Store(e)) => return Err(e.into()),
        }
    }
    Err(IngestError::Contended)
}

/// Why a merge happened, for its audit record: the request that linked the customers
/// (kind and record id) and the identifier types it carried (never their values).
fn reason(kind: &str, record_id: &str, identifiers: &[Identifier]) -> String {
    let kinds: Vec<&str> = identifiers.iter().map(|i| i.kind().as_str()).collect();
    format!("{kind} {record_id} linked {}", kinds.join(", "))
}

fn done(plan: TouchPlan, record_id: String) -> Outcome {
    Outcome {
        customer: plan.customer,
        record_id,
        duplicate: false,
        customer_created: plan.created,
        merged: plan.absorbed,
    }
}

async fn duplicate(store: &Store, customer: CustomerId, record_id: String) -> Result<Outcome, IngestError> {
    // The customer may have been merged since; answer with the survivor.
    let customer = store
        .current_profile(&customer)
        .await?
        .map(|p| p.id)
        .unwrap_or(customer);
    Ok(Outcome {
        customer,
        record_id,
        duplicate: true,
        customer_created: false,
        merged: vec![],
    })
}

pub async fn click(store: &Store, cmd: ClickCommand, now: OffsetDateTime) -> Result<Outcome, IngestError> {
    let identifiers = cmd.identifiers();
    let touch = Touch {
        identifiers: identifiers.clone(),
        brand: cmd.brand.clone(),
        milestone: Milestone::Touched,
        names: Names::default(),
        revenue: None,
        at: now,
    };
    let record = |plan: &TouchPlan| {
        vec![Write::RecordClick(ClickRecord::new(
            cmd.click_id.to_string(),
            plan.customer.clone(),
            cmd.brand.to_string(),
            cmd.device_id.as_ref().map(ToString::to_string),
            cmd.details.clone(),
            now,
        ))]
    };
    match commit_touch(
        store,
        &touch,
        &reason("click", cmd.click_id.as_str(), &identifiers),
        true,
        &record,
    )
    .await?
    {
        Committed::Done(plan) => Ok(done(plan, cmd.click_id.to_string())),
        Committed::Duplicate => {
            let owner = store.click_owner(cmd.click_id.as_str()).await?;
            let owner =
                owner.ok_or_else(|| StoreError::Unavailable("click vanished after its duplicate check".into()))?;
            duplicate(store, owner, cmd.click_id.to_string()).await
        }
    }
}

async fn repeated(store: &Store, key: &str) -> Result<Outcome, IngestError> {
    let (record, customer) = store
        .dedupe_hit(key)
        .await?
        .ok_or_else(|| StoreError::Unavailable("dedupe claim vanished after its duplicate check".into()))?;
    duplicate(store, customer, record).await
}

/// Leads and postbacks: the touch, an idempotency claim on `key` and the request's own
/// records commit together. A held claim means a repeat, answered with the original.
async fn commit_claimed(
    store: &Store,
    kind: &str,
    touch: Touch,
    (key, expires_at): (String, Option<OffsetDateTime>),
    records: impl Fn(&TouchPlan, &str) -> Vec<Write> + Send + Sync,
) -> Result<Outcome, IngestError> {
    let record_id = new_id();
    let extra = |plan: &TouchPlan| {
        let claim = Write::ClaimDedupe(DedupeClaim {
            key: key.clone(),
            record_id: record_id.clone(),
            customer: plan.customer.clone(),
            at: touch.at,
            expires_at,
        });
        std::iter::once(claim).chain(records(plan, &record_id)).collect()
    };
    let reason = reason(kind, &record_id, &touch.identifiers);
    match commit_touch(store, &touch, &reason, false, &extra).await? {
        Committed::Done(plan) => Ok(done(plan, record_id)),
        Committed::Duplicate => repeated(store, &key).await,
    }
}

pub async fn lead(
    store: &Store,
    config: &Config,
    cmd: LeadCommand,
    now: OffsetDateTime,
) -> Result<Outcome, IngestError> {
    let touch = Touch {
        identifiers: cmd.identifiers(),
        brand: cmd.brand.clone(),
        milestone: Milestone::Touched,
        names: cmd.names.clone(),
        revenue: None,
        at: now,
    };
    let key = lead_dedupe_key(&cmd, now, config.dedupe_window);
    commit_claimed(store, "lead", touch, key, |plan, lead_id| {
        vec![Write::RecordLead(LeadRecord {
            lead_id: lead_id.to_owned(),
            customer_id: plan.customer.clone(),
            brand: cmd.brand.to_string(),
            click_id: cmd.click_id.as_ref().map(ToString::to_string),
            email: cmd.email.as_ref().map(ToString::to_string),
            phone: cmd.phone.as_ref().map(ToString::to_string),
            device_id: cmd.device_id.as_ref().map(ToString::to_string),
            first_name: cmd.names.first.clone(),
            last_name: cmd.names.last.clone(),
            campaign: cmd.campaign.clone(),
            at: now,
        })]
    })
    .await
}

pub async fn postback(
    store: &Store,
    config: &Config,
    cmd: PostbackCommand,
    now: OffsetDateTime,
) -> Result<Outcome, IngestError> {
    let touch = Touch {
        identifiers: cmd.identifiers(),
        brand: cmd.brand.clone(),
        milestone: cmd.kind.milestone(),
        names: Names::default(),
        revenue: cmd.revenue(),
        at: now,
    };
    let key = postback_dedupe_key(&cmd, now, config.dedupe_window);
    commit_claimed(store, "postback", touch, key, |plan, event_id| {
        vec![
            Write::RecordEvent(EventRecord {
                event_id: event_id.to_owned(),
                customer_id: plan.customer.clone(),
                brand: cmd.brand.to_string(),
                event_type: cmd.kind.as_str().to_owned(),
                amount: cmd.amount.map(|a| a.to_string()),
                currency: cmd.amount.map(|_| cmd.currency.to_string()),
                transaction_id: cmd.transaction_id.as_ref().map(ToString::to_string),
                click_id: cmd.click_id.as_ref().map(ToString::to_string),
                user_id: cmd.user_id.as_ref().map(ToString::to_string),
                at: now,
            }),
            Write::AddBrandStats {
                brand: cmd.brand.clone(),
                event_type: cmd.kind.as_str().to_owned(),
                revenue: cmd.revenue(),
                at: now,
            },
        ]
    })
    .await
}
