//! The journey function's use case: a customer's profile changed (a committed write, read
//! from the table's stream); schedule, cancel or wake its messages.

use std::collections::{BTreeMap, BTreeSet};

use crm_core::compliance::excluded;
use crm_core::definition::Channel;
use crm_core::journey::{Journey, JourneyType};
use crm_core::message::Reason;
use crm_core::profile::Profile;
use crm_core::schedule::{Change, MessageWrite, plan};
use crm_core::send::address;
use crm_core::values::Brand;
use crm_store::StoreError;
use time::OffsetDateTime;

use crate::Deps;

/// What one change did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Planned {
    pub scheduled: usize,
    pub cancelled: usize,
    pub woken: usize,
}

/// Whether a change can affect messages: journeys, identifiers (addresses, their
/// confirmation, the primary) or merges moved.
pub fn matters(before: Option<&Profile>, after: &Profile) -> bool {
    match before {
        None => true,
        Some(b) => {
            b.journeys() != after.journeys()
                || b.identifiers != after.identifiers
                || b.contacts != after.contacts
                || b.merged_from != after.merged_from
                || b.merged_into != after.merged_into
                || b.exclusions != after.exclusions
        }
    }
}

/// Which of `brands` may not market to the customer: an exclusion by the brand itself, or
/// by another brand whose policy extends it to all brands (each policy from its settings).
async fn excluded_brands<'a>(
    deps: &Deps,
    customer: &Profile,
    brands: impl Iterator<Item = &'a Brand>,
) -> Result<BTreeSet<Brand>, StoreError> {
    let mut policies = BTreeMap::new();
    for by in customer.exclusions.keys() {
        policies.insert(by.clone(), deps.catalog.settings(by).await?.responsible_gambling);
    }
    let policy = |b: &Brand| policies.get(b).copied().unwrap_or_default();
    Ok(brands
        .filter(|b| excluded(&customer.exclusions, b, policy))
        .cloned()
        .collect())
}

/// Plans against the customer's *current* profile (so a late or replayed record plans what
/// the first delivery did), with every message of the customer and of those merged into it,
/// and applies each write on its own (each is conditional and idempotent).
pub async fn process_change(
    deps: &Deps,
    before: Option<&Profile>,
    after: &Profile,
    now: OffsetDateTime,
) -> Result<Planned, StoreError> {
    let Some(current) = deps.store.profile(&after.id).await? else {
        return Ok(Planned::default());
    };
    // A merged-away customer's messages are the survivor's concern (its own change record).
    if current.merged_into.is_some() {
        return Ok(Planned::default());
    }
    let mut existing = deps.store.customer_messages(&current.id).await?;
    for absorbed in &current.merged_from {
        existing.extend(deps.store.customer_messages(absorbed).await?);
    }
    let after_journeys = current.journeys();
    let before_journeys: Vec<Journey> = before.map(Profile::journeys).unwrap_or_default();
    let reachable: BTreeSet<Channel> = Channel::ALL
        .into_iter()
        .filter(|c| address(&current, *c).is_some())
        .collect();
    let confirmed: BTreeSet<Channel> = Channel::ALL
        .into_iter()
        .filter(|c| {
            current
                .primary(*c)
                .and_then(|i| current.contacts.points.get(i))
                .is_some_and(|p| p.confirmed_at.is_some())
        })
        .collect();
    let brands: Vec<_> = after_journeys.iter().map(|j| j.brand.clone()).collect();
    let definitions = deps.catalog.definitions(&brands).await?;
    let excluded = excluded_brands(deps, &current, existing.iter().map(|m| &m.brand).chain(&brands)).await?;
    let change = Change {
        customer: &current.id,
        before: &before_journeys,
        after: &after_journeys,
        reachable: &reachable,
        confirmed: &confirmed,
        existing: &existing,
        excluded: &excluded,
    };
    let mut done = Planned::default();
    // A placeholder message that could not be cancelled because a sender claimed it
    // meanwhile is going out, so the brand's step on the same stage and channel must not
    // (the plan puts cancels before creates).
    let mut placeholder_going: Vec<(JourneyType, i32, Channel)> = Vec::new();
    for write in plan(&definitions, change, now) {
        match write {
            MessageWrite::Create(m) => {
                if placeholder_going.contains(&(m.journey_type, m.stage, m.channel)) {
                    continue;
                }
                if deps.store.create_message(&m).await? {
                    done.scheduled += 1;
                    tracing::info!(customer_id = %m.customer_id, message_id = %m.message_id, brand = %m.brand,
                        step = %m.step_id, due_at = %crm_core::values::format_ts(m.due_at), "message scheduled");
                }
            }
            MessageWrite::Cancel {
                customer,
                message_id,
                reason,
            } => {
                if deps.store.cancel_message(&customer, &message_id, reason, now).await? {
                    done.cancelled += 1;
                    tracing::info!(customer_id = %customer, message_id = %message_id, reason = reason.as_str(), "message cancelled");
                } else if reason == Reason::BrandAssigned
                    && let Some(m) = deps.store.message(&customer, &message_id).await?
                    && m.status.is_delivered()
                {
                    placeholder_going.push((m.journey_type, m.stage, m.channel));
                }
            }
            MessageWrite::Wake { customer, message_id } => {
                if deps.store.wake_message(&customer, &message_id, now).await? {
                    done.woken += 1;
                }
            }
        }
    }
    Ok(done)
}
