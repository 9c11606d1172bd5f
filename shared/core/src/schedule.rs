//! Which messages a journey change schedules, cancels or wakes: one pure function of the
//! definitions, the customer's journeys before and after, the messages already there, and
//! now. The journey function calls it for every committed profile change (read from the
//! table's stream), with the *current* profile as "after", so a replayed or late stream
//! record plans the same writes as the first delivery, and the plan is idempotent against
//! the messages it already created.

use std::collections::{BTreeMap, BTreeSet};

use time::OffsetDateTime;

use crate::definition::{Channel, JourneyDefinition, Step};
use crate::journey::{Journey, JourneyType};
use crate::message::{Message, Reason, Status, message_id};
use crate::values::{Brand, CustomerId};

/// The definitions in force: a brand's own, else the default. The `unbranded` placeholder
/// always runs the default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Definitions {
    pub by_brand: BTreeMap<Brand, JourneyDefinition>,
    pub default: JourneyDefinition,
}

impl Definitions {
    pub fn for_brand(&self, brand: &Brand) -> &JourneyDefinition {
        self.by_brand.get(brand).unwrap_or(&self.default)
    }
}

impl Default for Definitions {
    fn default() -> Self {
        Self {
            by_brand: BTreeMap::new(),
            default: JourneyDefinition::default_definition(),
        }
    }
}

/// A write to one message item. Each is conditional on its own, so the shell may apply them
/// one by one: a failed condition means someone else already did it (or the sender got
/// there first), never an inconsistency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageWrite {
    /// Create a `PENDING` message unless its id exists.
    Create(Box<Message>),
    /// Cancel a message that has not been handed to a provider (`PENDING` or `QUEUED`).
    Cancel {
        customer: CustomerId,
        message_id: String,
        reason: Reason,
    },
    /// A message waiting for an address that the customer now has: due now.
    Wake { customer: CustomerId, message_id: String },
}

/// What the journey function knows about one customer when it plans.
#[derive(Debug, Clone, Copy)]
pub struct Change<'a> {
    pub customer: &'a CustomerId,
    /// Journeys before the change (the stream's old image; empty for a new customer).
    pub before: &'a [Journey],
    /// Journeys now (the current profile).
    pub after: &'a [Journey],
    /// Channels the customer has an address on now.
    pub reachable: &'a BTreeSet<Channel>,
    /// Channels whose primary address its owner has confirmed (double opt-in).
    pub confirmed: &'a BTreeSet<Channel>,
    /// Every message of this customer and of the customers merged into it.
    pub existing: &'a [Message],
    /// Brands whose marketing a responsible-gambling exclusion stops (the shell applies each
    /// excluding brand's policy): their pending messages are cancelled, nothing is scheduled.
    pub excluded: &'a BTreeSet<Brand>,
}

type StageKey = (Brand, JourneyType, i32);

fn stage_key(j: &Journey) -> StageKey {
    (j.brand.clone(), j.journey_type, j.stage)
}

/// Whether `m` belongs to the customer's current entry into `journey`'s stage (not to an
/// earlier one left since: a customer dormant again gets the reactivation again). After a
/// merge the stage's entry time is the earliest of both customers', so their messages
/// all count.
fn current_entry(m: &Message, journey: &Journey) -> bool {
    m.is_for(journey) && m.stage_entered_at >= journey.since
}

/// Whether `m` already stands for `step` of `journey`: the same step of the same stage
/// entry and brand (scheduled earlier, or for a customer merged into this one), or, for a
/// branded journey, a message the `unbranded` placeholder already delivered on that stage
/// and channel (one person never gets two welcomes because the click named no brand).
fn covers(m: &Message, journey: &Journey, step: &Step) -> bool {
    let same_step = current_entry(m, journey) && m.step_id == step.id && m.status != Status::Cancelled;
    let placeholder_delivered = m.brand.is_unbranded()
        && !journey.brand.is_unbranded()
        && m.journey_type == journey.journey_type
        && m.stage == journey.stage
        && m.channel == step.channel
        && m.status.is_delivered();
    same_step || placeholder_delivered
}

pub fn plan(definitions: &Definitions, change: Change<'_>, now: OffsetDateTime) -> Vec<MessageWrite> {
    let Change {
        customer,
        before,
        after,
        reachable,
        confirmed,
        existing,
        excluded,
    } = change;
    let mut writes = Vec::new();
    let has_branded = after.iter().any(|j| !j.brand.is_unbranded());
    let cancel = |m: &Message, reason| MessageWrite::Cancel {
        customer: m.customer_id.clone(),
        message_id: m.message_id.clone(),
        reason,
    };

    // Messages of stages the customer is no longer in. Every pending message is checked, not
    // only those of this change: a missed or reordered change still converges.
    let mut kept: BTreeMap<(StageKey, &str), &Message> = BTreeMap::new();
    let mut pending: Vec<&Message> = existing.iter().filter(|m| m.status.is_cancellable()).collect();
    // Delivered messages first, then the oldest: they are the ones a duplicate yields to.
    pending.sort_by_key(|m| (m.created_at, m.message_id.clone()));
    for m in existing.iter().filter(|m| m.status.is_delivered()) {
        if after.iter().any(|j| current_entry(m, j)) {
            kept.entry(((m.brand.clone(), m.journey_type, m.stage), m.step_id.as_str()))
                .or_insert(m);
        }
    }
    for m in pending {
        if excluded.contains(&m.brand) {
            writes.push(cancel(m, Reason::SelfExcluded));
            continue;
        }
        if !after.iter().any(|j| m.is_for(j)) {
            let reason = if m.brand.is_unbranded() && has_branded {
                Reason::BrandAssigned
            } else {
                Reason::StageLeft
            };
            writes.push(cancel(m, reason));
            continue;
        }
        let slot = ((m.brand.clone(), m.journey_type, m.stage), m.step_id.as_str());
        match kept.entry(slot) {
            // After a merge both customers may hold the same step: one goes.
            std::collections::btree_map::Entry::Occupied(_) => writes.push(cancel(m, Reason::Duplicate)),
            std::collections::btree_map::Entry::Vacant(v) => {
                v.insert(m);
            }
        }
    }

    // Steps of the stages entered by this change.
    let entered_before: BTreeSet<StageKey> = before.iter().map(stage_key).collect();
    let ids: BTreeSet<&str> = existing.iter().map(|m| m.message_id.as_str()).collect();
    let entered = after
        .iter()
        .filter(|j| !entered_before.contains(&stage_key(j)) && !excluded.contains(&j.brand));
    for journey in entered {
        let definition = definitions.for_brand(&journey.brand);
        for step in definition.steps_for(journey.journey_type, journey.stage) {
            let id = message_id(customer, journey, &step.id);
            if ids.contains(id.as_str()) || existing.iter().any(|m| covers(m, journey, step)) {
                continue;
            }
            writes.push(MessageWrite::Create(Box::new(Message::scheduled(
                customer, journey, step, now,
            ))));
        }
    }

    // Messages that were waiting for an address the customer now has, or for its
    // confirmation, which came.
    for m in existing {
        let waiting = m.status == Status::Pending
            && match m.reason {
                Some(Reason::NoAddress) => true,
                Some(Reason::Unconfirmed) => confirmed.contains(&m.channel),
                _ => false,
            };
        let cancelled = writes
            .iter()
            .any(|w| matches!(w, MessageWrite::Cancel { message_id, .. } if *message_id == m.message_id));
        if waiting && !cancelled && reachable.contains(&m.channel) {
            writes.push(MessageWrite::Wake {
                customer: m.customer_id.clone(),
                message_id: m.message_id.clone(),
            });
        }
    }
    writes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journey::{Milestone, Milestones, journeys, reach};
    use time::macros::datetime;

    const T0: OffsetDateTime = datetime!(2026-11-22 10:00 UTC);

    fn id(n: u8) -> CustomerId {
        CustomerId::parse(&format!("0192f0c1-7b7e-7cc0-9b1a-3c3f2d6e8a{n:02}")).unwrap()
    }
    fn brand(b: &str) -> Brand {
        Brand::parse(b).unwrap()
    }
    fn state(steps: &[(&str, Milestone, OffsetDateTime)]) -> Vec<Journey> {
        let mut m = Milestones::new();
        for (b, milestone, at) in steps {
            reach(&mut m, &brand(b), *milestone, *at);
        }
        journeys(&m)
    }
    fn creates(writes: &[MessageWrite]) -> Vec<(String, String)> {
        writes
            .iter()
            .filter_map(|w| match w {
                MessageWrite::Create(m) => Some((m.brand.to_string(), m.step_id.clone())),
                _ => None,
            })
            .collect()
    }
    fn cancels(writes: &[MessageWrite]) -> Vec<(String, Reason)> {
        writes
            .iter()
            .filter_map(|w| match w {
                MessageWrite::Cancel { message_id, reason, .. } => Some((message_id.clone(), *reason)),
                _ => None,
            })
            .collect()
    }
    fn run(before: &[Journey], after: &[Journey], existing: &[Message]) -> Vec<MessageWrite> {
        run_excluding(before, after, existing, &BTreeSet::new())
    }
    fn run_excluding(
        before: &[Journey],
        after: &[Journey],
        existing: &[Message],
        excluded: &BTreeSet<Brand>,
    ) -> Vec<MessageWrite> {
        let reachable = BTreeSet::from([Channel::Email]);
        let change = Change {
            customer: &id(1),
            before,
            after,
            reachable: &reachable,
            confirmed: &BTreeSet::new(),
            existing,
            excluded,
        };
        plan(&Definitions::default(), change, T0)
    }

    #[test]
    fn an_exclusion_cancels_the_brands_pending_messages_and_schedules_nothing() {
        let touched = state(&[("rushbet", Milestone::Touched, T0), ("betano", Milestone::Touched, T0)]);
        let mut existing = Vec::new();
        apply(&mut existing, &run(&[], &touched, &[]));
        assert_eq!(existing.len(), 2, "a welcome per brand");
        let excluded = BTreeSet::from([brand("rushbet")]);
        let registered = state(&[
            ("rushbet", Milestone::Registered, T0),
            ("betano", Milestone::Touched, T0),
        ]);
        let writes = run_excluding(&touched, &registered, &existing, &excluded);
        let rushbet_welcome = existing.iter().find(|m| m.brand == brand("rushbet")).unwrap();
        assert_eq!(
            cancels(&writes),
            vec![(rushbet_welcome.message_id.clone(), Reason::SelfExcluded)]
        );
        assert!(
            !writes.iter().any(|w| matches!(w, MessageWrite::Create(_))),
            "no registered nudges"
        );
    }
    /// Applies the creates and cancels to `existing`, as the store would.
    fn apply(existing: &mut Vec<Message>, writes: &[MessageWrite]) {
        for w in writes {
            match w {
                MessageWrite::Create(m) => existing.push((**m).clone()),
                MessageWrite::Cancel { message_id, reason, .. } => {
                    let m = existing.iter_mut().find(|m| &m.message_id == message_id).unwrap();
                    m.status = Status::Cancelled;
                    m.reason = Some(*reason);
                }
                MessageWrite::Wake { .. } => {}
            }
        }
    }

    #[test]
    fn a_first_touch_schedules_the_welcome_at_entry_time() {
        let after = state(&[("rushbet", Milestone::Touched, T0)]);
        let writes = run(&[], &after, &[]);
        assert_eq!(creates(&writes), [("rushbet".into(), "welcome".into())]);
        let MessageWrite::Create(m) = &writes[0] else { panic!() };
        assert_eq!((m.due_at, m.status), (T0, Status::Pending));
        assert_eq!(m.expires_at, T0 + time::Duration::hours(72));
    }

    #[test]
    fn registration_schedules_both_nudges_after_their_delays() {
        let before = state(&[("rushbet", Milestone::Touched, T0)]);
        let reg = T0 + time::Duration::hours(1);
        let after = state(&[
            ("rushbet", Milestone::Touched, T0),
            ("rushbet", Milestone::Registered, reg),
        ]);
        let writes = run(&before, &after, &[]);
        let due: Vec<_> = writes
            .iter()
            .map(|w| match w {
                MessageWrite::Create(m) => (m.step_id.clone(), m.channel, m.due_at - reg),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            due,
            [
                (
                    "registered-nudge-email".into(),
                    Channel::Email,
                    time::Duration::hours(24)
                ),
                ("registered-nudge-sms".into(), Channel::Sms, time::Duration::hours(48)),
            ]
        );
    }

    #[test]
    fn a_replayed_change_schedules_nothing_new() {
        let after = state(&[("rushbet", Milestone::Touched, T0)]);
        let mut existing = Vec::new();
        apply(&mut existing, &run(&[], &after, &[]));
        assert!(run(&[], &after, &existing).is_empty());
    }

    #[test]
    fn a_deposit_cancels_pending_acquisition_messages_and_thanks() {
        let t1 = T0 + time::Duration::hours(1);
        let registered = state(&[("rushbet", Milestone::Registered, T0)]);
        let mut existing = Vec::new();
        apply(&mut existing, &run(&[], &registered, &[]));
        assert_eq!(existing.len(), 2);
        let deposited = state(&[
            ("rushbet", Milestone::Registered, T0),
            ("rushbet", Milestone::FirstDeposit, t1),
        ]);
        let writes = run(&registered, &deposited, &existing);
        assert_eq!(creates(&writes), [("rushbet".into(), "deposit-thanks".into())]);
        let reasons: Vec<_> = cancels(&writes).into_iter().map(|(_, r)| r).collect();
        assert_eq!(reasons, [Reason::StageLeft, Reason::StageLeft]);
    }

    #[test]
    fn sent_messages_are_never_cancelled() {
        let registered = state(&[("rushbet", Milestone::Registered, T0)]);
        let mut existing = Vec::new();
        apply(&mut existing, &run(&[], &registered, &[]));
        existing[0].status = Status::Sent;
        existing[1].status = Status::Sending;
        let deposited = state(&[("rushbet", Milestone::FirstDeposit, T0)]);
        assert!(cancels(&run(&registered, &deposited, &existing)).is_empty());
    }

    #[test]
    fn brands_schedule_independently() {
        let before = state(&[("rushbet", Milestone::Touched, T0), ("roobet", Milestone::Touched, T0)]);
        let after = state(&[
            ("rushbet", Milestone::FirstDeposit, T0),
            ("roobet", Milestone::Touched, T0),
        ]);
        let mut existing = Vec::new();
        apply(&mut existing, &run(&[], &before, &[]));
        let writes = run(&before, &after, &existing);
        assert_eq!(creates(&writes), [("rushbet".into(), "deposit-thanks".into())]);
        let cancelled = cancels(&writes);
        assert_eq!(cancelled.len(), 1);
        let m = existing.iter().find(|m| m.message_id == cancelled[0].0).unwrap();
        assert_eq!(m.brand.as_str(), "rushbet");
    }

    #[test]
    fn a_brand_replaces_the_placeholder_without_a_second_welcome() {
        let unbranded = state(&[("unbranded", Milestone::Touched, T0)]);
        let mut existing = Vec::new();
        apply(&mut existing, &run(&[], &unbranded, &[]));
        let branded = state(&[
            ("unbranded", Milestone::Touched, T0),
            ("rushbet", Milestone::Touched, T0),
        ]);

        // Still pending: cancelled, and the brand's own welcome replaces it.
        let writes = run(&unbranded, &branded, &existing);
        assert_eq!(cancels(&writes)[0].1, Reason::BrandAssigned);
        assert_eq!(creates(&writes), [("rushbet".into(), "welcome".into())]);

        // Already sent: nothing more.
        existing[0].status = Status::Sent;
        assert!(run(&unbranded, &branded, &existing).is_empty());
    }

    #[test]
    fn after_a_merge_a_step_both_customers_had_is_kept_once() {
        let after = state(&[("rushbet", Milestone::Touched, T0)]);
        let mut mine = Message::scheduled(&id(1), &after[0], &JourneyDefinition::default_definition().steps[0], T0);
        let mut theirs = mine.clone();
        theirs.customer_id = id(2);
        theirs.message_id = "msg_absorbed".into();
        theirs.created_at = T0 - time::Duration::minutes(1);
        mine.created_at = T0;
        let writes = run(&after, &after, &[mine.clone(), theirs]);
        assert_eq!(cancels(&writes), [(mine.message_id, Reason::Duplicate)]);
        assert!(creates(&writes).is_empty());
    }

    #[test]
    fn a_merge_that_brings_a_stage_does_not_reschedule_its_messages() {
        let before = state(&[("rushbet", Milestone::Touched, T0)]);
        let after = state(&[("rushbet", Milestone::Touched, T0), ("roobet", Milestone::Touched, T0)]);
        let roobet = after.iter().find(|j| j.brand.as_str() == "roobet").unwrap();
        let mut theirs = Message::scheduled(&id(2), roobet, &JourneyDefinition::default_definition().steps[0], T0);
        theirs.status = Status::Sent;
        assert!(run(&before, &after, &[theirs]).is_empty());
    }

    #[test]
    fn a_second_entry_into_a_stage_sends_its_steps_again() {
        let t1 = T0 + time::Duration::days(40);
        let first = state(&[
            ("rushbet", Milestone::FirstDeposit, T0),
            ("rushbet", Milestone::Dormant, T0 + time::Duration::days(30)),
        ]);
        let mut existing = Vec::new();
        apply(&mut existing, &run(&[], &first, &[]));
        existing[0].status = Status::Sent;
        assert_eq!(existing[0].step_id, "reactivation");
        // A deposit reactivated the customer; 30 days later it is dormant again.
        let active = state(&[("rushbet", Milestone::FirstDeposit, T0)]);
        let again = state(&[
            ("rushbet", Milestone::FirstDeposit, T0),
            ("rushbet", Milestone::Dormant, t1),
        ]);
        assert_eq!(
            creates(&run(&active, &again, &existing)),
            [("rushbet".into(), "reactivation".into())]
        );
    }

    #[test]
    fn an_address_wakes_messages_waiting_for_it() {
        let after = state(&[("rushbet", Milestone::Touched, T0)]);
        let mut existing = Vec::new();
        apply(&mut existing, &run(&[], &after, &[]));
        existing[0].reason = Some(Reason::NoAddress);
        let writes = run(&after, &after, &existing);
        assert!(
            matches!(&writes[..], [MessageWrite::Wake { message_id, .. }] if *message_id == existing[0].message_id)
        );
    }
}
