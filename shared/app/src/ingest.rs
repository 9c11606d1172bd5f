//! The ingest use case, one path for clicks, leads and postbacks: load what the decision
//! needs, let the core decide, commit the writes in one transaction, and re-read and re-plan
//! when a concurrent request won a race. Common-case cost: a new click is one transaction;
//! a lead or postback is one batch read plus one transaction.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crm_core::identity::{Identifier, Owners};
use crm_core::plan::{
    FreshIds, Guard, Ingest, Planned, SignatureClaim, Write, keeps_newest, make_room, note_unlisted, plan_touch,
    request_writes,
};
use crm_core::profile::{Profile, Touch};
use crm_core::records::Provenance;
use crm_core::source::{SIGNATURE_TOLERANCE_SECS, Signed, SourceKind};
use crm_core::values::CustomerId;
use crm_store::{CommitError, Store, StoreError};
use time::OffsetDateTime;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The request's signature was accepted before: a replay.
    #[error("this signature was already used")]
    Replayed,
    /// Concurrent writers kept invalidating our reads; the caller should retry.
    #[error("too much contention on these identifiers; retry")]
    Contended,
}

/// How many read-decide-commit rounds before giving up with a retryable error.
const MAX_ATTEMPTS: usize = 8;

/// How long one request may keep resending a transaction whose outcome is unknown (the
/// functions time out at 10 s; the SDK's own attempts add at most 3 s to this).
pub const WRITE_BUDGET: Duration = Duration::from_secs(5);

/// Who sent an ingest request, as far as the use case is concerned.
#[derive(Debug, Clone, Default)]
pub struct Sender {
    /// What every record of the request keeps: its source, client address, test flag.
    pub provenance: Provenance,
    /// A source bound to no brand: its transaction ids are claimed in its own namespace.
    pub claims_as: Option<String>,
    /// A verified signature: claimed once, in the request's own transaction.
    pub signature: Option<Signed>,
    /// The kind of the source whose key the request carried; `None`: no key.
    pub kind: Option<SourceKind>,
}

impl Sender {
    /// The claim of the request's signature, if it is signed: held past the tolerance.
    pub fn signature_claim(&self, now: OffsetDateTime) -> Option<SignatureClaim> {
        self.signature.as_ref().map(|signed| SignatureClaim {
            source_id: self.provenance.source_id.clone().unwrap_or_default(),
            digest: signed.digest.clone(),
            at: now,
            expires_at: now + SIGNATURE_CLAIM,
        })
    }
}

/// How long a signature's claim is held: past the tolerance on either side of `t`.
const SIGNATURE_CLAIM: time::Duration = time::Duration::seconds(2 * SIGNATURE_TOLERANCE_SECS + 60);

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

/// Why a merge happened, for its audit record: the request that linked the customers
/// (kind and record id) and the identifier types it carried (never their values).
fn reason(kind: &str, record_id: &str, identifiers: &[Identifier]) -> String {
    let kinds: Vec<&str> = identifiers.iter().map(|i| i.kind().as_str()).collect();
    format!("{kind} {record_id} linked {}", kinds.join(", "))
}

/// Records `cmd` at `now`: its touch on the customer it resolves to (created or merged as
/// needed), its records and its idempotency guard, all in one transaction. A held guard
/// means a repeat, answered with the original record.
pub async fn run<C: Ingest>(
    store: &Store,
    cmd: &C,
    from: &Sender,
    now: OffsetDateTime,
    dedupe_window: time::Duration,
) -> Result<Outcome, IngestError> {
    let deadline = Instant::now() + WRITE_BUDGET;
    // Test traffic resolves, claims and repeats only among test traffic.
    let test_store;
    let store = if from.provenance.test {
        test_store = store.for_test_traffic();
        &test_store
    } else {
        store
    };
    let touch = Touch {
        test: from.provenance.test,
        via: from.kind,
        ..cmd.touch(now)
    };
    let guard = match cmd.guard(now, dedupe_window).for_source(from.claims_as.as_deref()) {
        // A test's transaction id is held for the dedupe window only: test records are
        // removed, and the same test may be sent again later.
        Guard::Claim { key, expires_at: None } if from.provenance.test => Guard::Claim {
            key,
            expires_at: Some(now + dedupe_window),
        },
        guard => guard,
    };
    let signature = from.signature_claim(now).map(Write::ClaimSignature);
    let record_id = cmd.record_id().unwrap_or_else(new_id);
    let reason = reason(C::KIND, &record_id, &touch.identifiers);
    for attempt in 0..MAX_ATTEMPTS {
        if attempt > 1 {
            let jitter = u64::from(uuid::Uuid::new_v4().as_bytes()[0]) % 20;
            tokio::time::sleep(Duration::from_millis(5 * attempt as u64 + jitter)).await;
        }
        // First attempt of a click: assume everything is new and skip the read entirely.
        let owners = if attempt == 0 && C::OPTIMISTIC {
            Owners::new()
        } else {
            store.owners(&touch.identifiers).await?
        };
        // After a lost race, also read the owners' profiles to see through merge tombstones.
        let mut profiles: BTreeMap<CustomerId, Profile> = BTreeMap::new();
        if attempt > 0 {
            let ids: Vec<CustomerId> = owners
                .values()
                .cloned()
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            profiles = store.profiles(&ids).await?;
        }
        let fresh = fresh_ids();
        let plan = loop {
            match plan_touch(&touch, &owners, &profiles, &fresh, &reason) {
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
        let Some(mut plan) = plan else { continue };
        // A full profile keeps its newest click and device ids: the oldest make room.
        if plan.unlisted.iter().any(|i| keeps_newest(i.kind()))
            && let Some(profile) = profiles.get(&plan.customer)
        {
            let kinds: Vec<_> = plan
                .unlisted
                .iter()
                .map(Identifier::kind)
                .filter(|k| keeps_newest(*k))
                .collect();
            let listed: Vec<Identifier> = profile
                .identifiers
                .iter()
                .filter(|i| kinds.contains(&i.kind()))
                .cloned()
                .collect();
            let ages = store.identifier_ages(&listed).await?;
            let (next, not_listed) = make_room(profile, &touch, &plan.unlisted, &ages);
            for w in &mut plan.writes {
                if matches!(w, Write::ApplyTouch { .. }) {
                    *w = Write::ReplaceProfile {
                        profile: next.clone(),
                        expected_version: profile.version,
                    };
                }
            }
            plan.unlisted = not_listed;
        }
        let mut writes: Vec<Write> = request_writes(cmd, &guard, &plan.customer, &record_id, &from.provenance, now);
        note_unlisted(&mut writes, &plan.unlisted);
        writes.extend(signature.clone());
        writes.extend(plan.writes);
        match store.commit(&writes, deadline).await {
            Ok(()) => {
                return Ok(Outcome {
                    customer: plan.customer,
                    record_id,
                    duplicate: false,
                    customer_created: plan.created,
                    merged: plan.absorbed,
                });
            }
            Err(CommitError::Conflict { failed }) if failed.iter().any(|i| writes[*i].is_replay()) => {
                return Err(IngestError::Replayed);
            }
            Err(CommitError::Conflict { failed }) if failed.iter().any(|i| writes[*i].is_guard()) => {
                // A signed repeat uses its signature too: sent again, it is a replay.
                if let Some(claim) = from.signature_claim(now)
                    && !store.claim_signature(&claim).await?
                {
                    return Err(IngestError::Replayed);
                }
                return repeated(store, &guard).await;
            }
            Err(CommitError::Conflict { failed }) => {
                tracing::debug!(attempt, ?failed, "ingest transaction lost a race; re-reading");
            }
            Err(CommitError::Store(e)) => return Err(e.into()),
        }
    }
    Err(IngestError::Contended)
}

/// The answer to a repeat: the record the guard points at, and its customer as of now (it
/// may have been merged since).
async fn repeated(store: &Store, guard: &Guard) -> Result<Outcome, IngestError> {
    let original = match guard {
        Guard::Click(click_id) => store.click_owner(click_id).await?.map(|c| (click_id.to_string(), c)),
        Guard::Claim { key, .. } => store.dedupe_hit(key).await?,
    };
    let (record_id, customer) =
        original.ok_or_else(|| StoreError::Unavailable("the original vanished after its duplicate check".into()))?;
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
