//! The decision at the heart of every ingest: given what a request says (a `Touch`) and what
//! the store holds (who owns its identifiers, and profiles when a merge needs them), the
//! list of writes that must land together in one transaction.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

use crate::identity::{Identifier, Owners, Resolution, resolve};
use crate::input::{LeadCommand, PostbackCommand};
use crate::profile::{Profile, Touch, merge};
use crate::records::{ClickRecord, EventRecord, LeadRecord, MergeRecord};
use crate::values::{Brand, Currency, CustomerId, Money};

/// One write of a transaction. The store turns each into one conditional DynamoDB operation.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    /// A new profile; fails if the id exists.
    CreateProfile(Profile),
    /// Commutative update of an existing customer that has not been merged away: add
    /// identifiers, reach the milestone, add revenue, set names. Needs no prior read.
    ApplyTouch {
        customer: CustomerId,
        touch: Touch,
    },
    /// Replaces a profile read at `expected_version` (merges).
    ReplaceProfile {
        profile: Profile,
        expected_version: u64,
    },
    /// Turns a profile into a tombstone pointing at its survivor.
    MarkMerged {
        customer: CustomerId,
        into: CustomerId,
        expected_version: u64,
        at: OffsetDateTime,
    },
    /// Takes an unowned identifier; fails if someone owns it.
    ClaimIdentifier {
        identifier: Identifier,
        customer: CustomerId,
        at: OffsetDateTime,
    },
    /// Moves an identifier; fails unless `from` still owns it.
    RepointIdentifier {
        identifier: Identifier,
        from: CustomerId,
        to: CustomerId,
    },
    RecordMerge(MergeRecord),
    /// Fails if the click id was already recorded (the click's idempotency).
    RecordClick(ClickRecord),
    RecordLead(LeadRecord),
    RecordEvent(EventRecord),
    /// Fails if the key is held and not expired (the idempotency of leads and postbacks).
    ClaimDedupe(DedupeClaim),
    /// Per-brand conversion counters and revenue.
    AddBrandStats {
        brand: Brand,
        event_type: String,
        revenue: Option<(Currency, Money)>,
        at: OffsetDateTime,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DedupeClaim {
    pub key: String,
    /// The record (lead or event id) the first request created.
    pub record_id: String,
    pub customer: CustomerId,
    pub at: OffsetDateTime,
    /// `None`: held forever (operator transaction ids).
    pub expires_at: Option<OffsetDateTime>,
}

/// Ids the shell generated for this attempt (the core does not touch a random source).
#[derive(Debug, Clone)]
pub struct FreshIds {
    pub customer: CustomerId,
    pub merge: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TouchPlan {
    pub customer: CustomerId,
    pub created: bool,
    pub absorbed: Vec<CustomerId>,
    pub writes: Vec<Write>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Planned {
    Ready(TouchPlan),
    /// Load these profiles and plan again.
    NeedProfiles(Vec<CustomerId>),
}

/// Follows merge tombstones through the loaded profiles. `Err` names a profile to load.
fn current_owner(start: &CustomerId, profiles: &BTreeMap<CustomerId, Profile>) -> Result<CustomerId, CustomerId> {
    let mut id = start.clone();
    for _ in 0..16 {
        match profiles.get(&id).and_then(|p| p.merged_into.clone()) {
            Some(into) if profiles.contains_key(&into) => id = into,
            Some(into) => return Err(into),
            None => return Ok(id),
        }
    }
    Ok(id)
}

/// Plans the writes that attach `touch` to its customer, creating or merging as needed.
/// `reason` says what linked the identifiers, for the merge audit record.
pub fn plan_touch(
    touch: &Touch,
    owners: &Owners,
    profiles: &BTreeMap<CustomerId, Profile>,
    fresh: &FreshIds,
    reason: &str,
) -> Planned {
    let mut current = BTreeMap::new();
    let mut missing = Vec::new();
    for (identifier, owner) in owners {
        match current_owner(owner, profiles) {
            Ok(c) => {
                current.insert(identifier.clone(), c);
            }
            Err(need) => missing.push(need),
        }
    }
    if !missing.is_empty() {
        return Planned::NeedProfiles(missing);
    }
    // Identifiers still pointing at a merged-away customer are repaired in passing.
    let mut repoint: BTreeMap<Identifier, (CustomerId, CustomerId)> = owners
        .iter()
        .filter(|(i, o)| current[*i] != **o)
        .map(|(i, o)| (i.clone(), (o.clone(), current[i].clone())))
        .collect();
    let claims = |customer: &CustomerId| -> Vec<Write> {
        touch
            .identifiers
            .iter()
            .filter(|i| !owners.contains_key(*i))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .map(|i| Write::ClaimIdentifier {
                identifier: i.clone(),
                customer: customer.clone(),
                at: touch.at,
            })
            .collect()
    };
    let repoints = |repoint: BTreeMap<Identifier, (CustomerId, CustomerId)>| {
        repoint
            .into_iter()
            .map(|(identifier, (from, to))| Write::RepointIdentifier { identifier, from, to })
    };

    match resolve(current.values()) {
        Resolution::New => {
            let customer = fresh.customer.clone();
            let mut writes = vec![Write::CreateProfile(Profile::new(customer.clone(), touch))];
            writes.extend(claims(&customer));
            Planned::Ready(TouchPlan {
                customer,
                created: true,
                absorbed: vec![],
                writes,
            })
        }
        Resolution::Existing(customer) => {
            let mut writes = vec![Write::ApplyTouch {
                customer: customer.clone(),
                touch: touch.clone(),
            }];
            writes.extend(claims(&customer));
            writes.extend(repoints(repoint));
            Planned::Ready(TouchPlan {
                customer,
                created: false,
                absorbed: vec![],
                writes,
            })
        }
        Resolution::Merge { survivor, absorbed } => {
            let needed: Vec<CustomerId> = std::iter::once(&survivor)
                .chain(&absorbed)
                .filter(|c| !profiles.contains_key(*c))
                .cloned()
                .collect();
            if !needed.is_empty() {
                return Planned::NeedProfiles(needed);
            }
            let survivor_profile = profiles[&survivor].clone();
            let absorbed_profiles: Vec<Profile> = absorbed.iter().map(|c| profiles[c].clone()).collect();
            let expected_version = survivor_profile.version;
            let mut merged = merge(survivor_profile, &absorbed_profiles, touch.at);
            merged.apply(touch);

            let mut writes = vec![Write::ReplaceProfile {
                profile: merged,
                expected_version,
            }];
            let mut absorbed_identifiers = BTreeMap::new();
            for p in &absorbed_profiles {
                writes.push(Write::MarkMerged {
                    customer: p.id.clone(),
                    into: survivor.clone(),
                    expected_version: p.version,
                    at: touch.at,
                });
                for identifier in &p.identifiers {
                    if owners.get(identifier).is_none_or(|o| *o == p.id) {
                        repoint.insert(identifier.clone(), (p.id.clone(), survivor.clone()));
                    }
                }
                absorbed_identifiers.insert(p.id.to_string(), p.identifiers.iter().map(Identifier::tag).collect());
            }
            writes.extend(claims(&survivor));
            writes.extend(repoints(repoint));
            writes.push(Write::RecordMerge(MergeRecord {
                merge_id: fresh.merge.clone(),
                customer_id: survivor.clone(),
                absorbed: absorbed.clone(),
                reason: reason.to_owned(),
                absorbed_identifiers,
                at: touch.at,
            }));
            Planned::Ready(TouchPlan {
                customer: survivor,
                created: false,
                absorbed,
                writes,
            })
        }
    }
}

fn digest(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0x1f]);
    }
    hex::encode(&h.finalize()[..16])
}

/// The idempotency key of a postback: the operator's transaction id when it sent one (held
/// forever), else a fingerprint of the normalised payload (held for `window`).
pub fn postback_dedupe_key(
    cmd: &PostbackCommand,
    at: OffsetDateTime,
    window: Duration,
) -> (String, Option<OffsetDateTime>) {
    if let Some(txid) = &cmd.transaction_id {
        return (format!("TXN#{}#{}", cmd.brand, txid), None);
    }
    let ids: Vec<String> = cmd.identifiers().iter().map(Identifier::tag).collect();
    let amount = cmd.amount.map(|a| a.to_string()).unwrap_or_default();
    let mut parts = vec![
        "postback",
        cmd.kind.as_str(),
        cmd.brand.as_str(),
        &amount,
        cmd.currency.as_str(),
    ];
    parts.extend(ids.iter().map(String::as_str));
    (format!("FP#{}", digest(&parts)), Some(at + window))
}

/// The idempotency key of a lead: a fingerprint of the normalised form (a double submit or
/// a replayed webhook inside `window` is the same lead).
pub fn lead_dedupe_key(cmd: &LeadCommand, at: OffsetDateTime, window: Duration) -> (String, Option<OffsetDateTime>) {
    let ids: Vec<String> = cmd.identifiers().iter().map(Identifier::tag).collect();
    let first = cmd.names.first.clone().unwrap_or_default();
    let last = cmd.names.last.clone().unwrap_or_default();
    let campaign = cmd.campaign.clone().unwrap_or_default();
    let mut parts = vec!["lead", cmd.brand.as_str(), &first, &last, &campaign];
    parts.extend(ids.iter().map(String::as_str));
    (format!("LEADFP#{}", digest(&parts)), Some(at + window))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::Names;
    use crate::journey::Milestone;
    use crate::values::{ClickId, Email};
    use time::macros::datetime;

    const T0: OffsetDateTime = datetime!(2026-11-22 10:00 UTC);

    fn cid(n: u8) -> CustomerId {
        CustomerId::parse(&format!("0192f0c1-7b7e-7cc0-9b1a-3c3f2d6e8a{n:02}")).unwrap()
    }
    fn fresh() -> FreshIds {
        FreshIds {
            customer: cid(99),
            merge: "m1".into(),
        }
    }
    fn click(s: &str) -> Identifier {
        Identifier::ClickId(ClickId::parse(s).unwrap())
    }
    fn email(s: &str) -> Identifier {
        Identifier::Email(Email::parse(s).unwrap())
    }
    fn touch(ids: Vec<Identifier>) -> Touch {
        Touch {
            identifiers: ids,
            brand: Brand::unbranded(),
            milestone: Milestone::Touched,
            names: Names::default(),
            revenue: None,
            at: T0,
        }
    }
    fn ready(p: Planned) -> TouchPlan {
        match p {
            Planned::Ready(plan) => plan,
            other => panic!("expected a plan, got {other:?}"),
        }
    }

    #[test]
    fn unknown_identifiers_create_a_customer_claiming_all_of_them() {
        let plan = ready(plan_touch(
            &touch(vec![click("c1"), email("a@b.co")]),
            &Owners::new(),
            &BTreeMap::new(),
            &fresh(),
            "click",
        ));
        assert!(plan.created);
        assert_eq!(plan.customer, cid(99));
        assert!(matches!(plan.writes[0], Write::CreateProfile(ref p) if p.identifiers.len() == 2));
        assert_eq!(
            plan.writes
                .iter()
                .filter(|w| matches!(w, Write::ClaimIdentifier { .. }))
                .count(),
            2
        );
    }

    #[test]
    fn known_identifier_attaches_new_ones_to_its_owner_without_reading_the_profile() {
        let owners = Owners::from([(click("c1"), cid(1))]);
        let plan = ready(plan_touch(
            &touch(vec![click("c1"), email("a@b.co")]),
            &owners,
            &BTreeMap::new(),
            &fresh(),
            "lead",
        ));
        assert_eq!((plan.customer.clone(), plan.created), (cid(1), false));
        assert!(matches!(plan.writes[0], Write::ApplyTouch { ref customer, .. } if *customer == cid(1)));
        assert_eq!(
            plan.writes[1],
            Write::ClaimIdentifier {
                identifier: email("a@b.co"),
                customer: cid(1),
                at: T0
            }
        );
        assert_eq!(plan.writes.len(), 2);
    }

    #[test]
    fn identifiers_of_two_customers_ask_for_their_profiles_then_merge_into_the_oldest() {
        let owners = Owners::from([(click("c2"), cid(2)), (email("a@b.co"), cid(1))]);
        let t = touch(vec![click("c2"), email("a@b.co")]);
        assert_eq!(
            plan_touch(&t, &owners, &BTreeMap::new(), &fresh(), "lead"),
            Planned::NeedProfiles(vec![cid(1), cid(2)])
        );

        let mut p1 = Profile::new(cid(1), &touch(vec![email("a@b.co")]));
        p1.version = 4;
        let p2 = Profile::new(cid(2), &touch(vec![click("c2"), click("c3")]));
        let profiles = BTreeMap::from([(cid(1), p1), (cid(2), p2)]);
        let plan = ready(plan_touch(
            &t,
            &owners,
            &profiles,
            &fresh(),
            "lead linked EMAIL, CLICK_ID",
        ));

        assert_eq!((plan.customer.clone(), plan.absorbed.clone()), (cid(1), vec![cid(2)]));
        assert!(
            matches!(plan.writes[0], Write::ReplaceProfile { expected_version: 4, ref profile } if profile.identifiers.len() == 3)
        );
        assert!(plan.writes.contains(&Write::MarkMerged {
            customer: cid(2),
            into: cid(1),
            expected_version: 1,
            at: T0
        }));
        for c in ["c2", "c3"] {
            assert!(plan.writes.contains(&Write::RepointIdentifier {
                identifier: click(c),
                from: cid(2),
                to: cid(1)
            }));
        }
        assert!(matches!(plan.writes.last(), Some(Write::RecordMerge(m)) if m.absorbed == vec![cid(2)]));
    }

    #[test]
    fn an_identifier_left_on_a_tombstone_resolves_to_the_survivor_and_is_repointed() {
        let owners = Owners::from([(click("c2"), cid(2))]);
        let mut tomb = Profile::new(cid(2), &touch(vec![click("c2")]));
        tomb.merged_into = Some(cid(1));
        let profiles = BTreeMap::from([(cid(2), tomb)]);
        assert_eq!(
            plan_touch(&touch(vec![click("c2")]), &owners, &profiles, &fresh(), "x"),
            Planned::NeedProfiles(vec![cid(1)])
        );

        let mut profiles = profiles;
        profiles.insert(cid(1), Profile::new(cid(1), &touch(vec![click("c1")])));
        let plan = ready(plan_touch(&touch(vec![click("c2")]), &owners, &profiles, &fresh(), "x"));
        assert_eq!(plan.customer, cid(1));
        assert!(plan.writes.contains(&Write::RepointIdentifier {
            identifier: click("c2"),
            from: cid(2),
            to: cid(1)
        }));
    }

    #[test]
    fn postback_key_prefers_the_transaction_id() {
        let defaults = crate::input::Defaults {
            brand: None,
            currency: Currency::parse("USD").unwrap(),
            phone_region: crate::values::PhoneRegion::parse("US").unwrap(),
        };
        let f: crate::input::Fields = [
            ("event", "deposit"),
            ("clickId", "c1"),
            ("txid", "T-9"),
            ("operator", "rushbet"),
        ]
        .into_iter()
        .collect();
        let cmd = PostbackCommand::parse(&f, &defaults).unwrap();
        assert_eq!(
            postback_dedupe_key(&cmd, T0, Duration::hours(24)),
            ("TXN#rushbet#T-9".to_owned(), None)
        );

        let f: crate::input::Fields = [("event", "deposit"), ("clickId", "c1"), ("amount", "100")]
            .into_iter()
            .collect();
        let a = PostbackCommand::parse(&f, &defaults).unwrap();
        let f: crate::input::Fields = [("event", "deposit"), ("clickId", "c1"), ("amount", "100.00")]
            .into_iter()
            .collect();
        let b = PostbackCommand::parse(&f, &defaults).unwrap();
        let (ka, ea) = postback_dedupe_key(&a, T0, Duration::hours(24));
        assert_eq!(
            ka,
            postback_dedupe_key(&b, T0, Duration::hours(24)).0,
            "same payload, same fingerprint"
        );
        assert_eq!(ea, Some(T0 + Duration::hours(24)));
        let f: crate::input::Fields = [("event", "deposit"), ("clickId", "c1"), ("amount", "101")]
            .into_iter()
            .collect();
        let c = PostbackCommand::parse(&f, &defaults).unwrap();
        assert_ne!(ka, postback_dedupe_key(&c, T0, Duration::hours(24)).0);
    }
}
