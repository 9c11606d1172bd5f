//! A customer profile and the pure operations on it: create from a touch, apply a touch,
//! merge several profiles into one.

use std::collections::{BTreeMap, BTreeSet};

use time::OffsetDateTime;

use crate::compliance::{Consent, Consents, Exclusion, ExclusionKind, record_consent};
use crate::contact::{ContactUpdate, Contacts};
use crate::definition::Channel;
use crate::identity::Identifier;
use crate::input::Names;
use crate::journey::{self, Milestone, Milestones};
use crate::quiet::ZoneName;
use crate::source::SourceKind;
use crate::values::{Brand, Currency, CustomerId, Money};

/// Everything one request tells us about a customer, whatever endpoint it came through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Touch {
    pub identifiers: Vec<Identifier>,
    pub brand: Brand,
    pub milestone: Milestone,
    pub names: Names,
    pub revenue: Option<(Currency, Money)>,
    /// What the request says about the customer beyond identity: consent, time zone,
    /// responsible-gambling events.
    pub facts: Facts,
    /// Test traffic: a customer it creates is a test customer.
    pub test: bool,
    /// The kind of source whose key the request carried (`None`: no key): decides whether
    /// its addresses may become the customer's primary.
    pub via: Option<SourceKind>,
    pub at: OffsetDateTime,
}

/// Compliance facts a lead or postback may carry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    /// A marketing consent checkbox: granted or refused, for every channel of the brand.
    pub consent: Option<bool>,
    pub timezone: Option<ZoneName>,
    pub exclusion: Option<ExclusionChange>,
    /// What the statement came from (`lead`, `postback`).
    pub source: &'static str,
}

/// A responsible-gambling event from the operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExclusionChange {
    Excluded(ExclusionKind),
    Reactivated,
}

impl Touch {
    /// A touch without names or revenue.
    pub fn new(identifiers: Vec<Identifier>, brand: Brand, milestone: Milestone, at: OffsetDateTime) -> Self {
        Self {
            identifiers,
            brand,
            milestone,
            names: Names::default(),
            revenue: None,
            facts: Facts::default(),
            test: false,
            via: None,
            at,
        }
    }

    /// What the request says about the customer's addresses. An operator's postback naming
    /// its own user id speaks for that account: its address becomes the primary.
    pub fn contact_update(&self) -> ContactUpdate {
        let names_its_user = self
            .identifiers
            .iter()
            .any(|i| matches!(i, Identifier::UserId { operator, .. } if *operator == self.brand));
        ContactUpdate::of(&self.identifiers, self.via, names_its_user, self.at)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub id: CustomerId,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub identifiers: BTreeSet<Identifier>,
    /// Where each email and phone came from, and each channel's primary.
    pub contacts: Contacts,
    pub milestones: Milestones,
    pub revenue: BTreeMap<Currency, Money>,
    /// Set when this customer was merged into another; the profile is then a tombstone.
    pub merged_into: Option<CustomerId>,
    /// Every customer merged into this one, directly or transitively.
    pub merged_from: BTreeSet<CustomerId>,
    /// Marketing consent per brand and channel.
    pub consents: Consents,
    /// Responsible-gambling exclusions, by the brand that reported them.
    pub exclusions: BTreeMap<Brand, Exclusion>,
    /// The customer's own time zone, when a lead or postback gave one.
    pub timezone: Option<ZoneName>,
    /// The person's data was erased: an anonymous tombstone nothing resolves to.
    pub erased: bool,
    /// Created by test traffic (identities apart from live ones): its messages are
    /// rendered and recorded, never sent.
    pub test: bool,
    /// Bumped by every write; merges use it as an optimistic lock.
    pub version: u64,
}

impl Profile {
    pub fn new(id: CustomerId, touch: &Touch) -> Self {
        let mut p = Self {
            id,
            created_at: touch.at,
            updated_at: touch.at,
            first_name: None,
            last_name: None,
            identifiers: BTreeSet::new(),
            contacts: Contacts::default(),
            milestones: Milestones::new(),
            revenue: BTreeMap::new(),
            merged_into: None,
            merged_from: BTreeSet::new(),
            consents: Consents::new(),
            exclusions: BTreeMap::new(),
            timezone: None,
            erased: false,
            test: touch.test,
            version: 0,
        };
        p.apply(touch);
        p
    }

    /// The in-memory twin of the store's commutative profile update (see `Write::ApplyTouch`).
    pub fn apply(&mut self, touch: &Touch) {
        self.identifiers.extend(touch.identifiers.iter().cloned());
        self.contacts.apply(&touch.contact_update());
        journey::reach(&mut self.milestones, &touch.brand, touch.milestone, touch.at);
        if let Some((currency, amount)) = &touch.revenue {
            *self.revenue.entry(currency.clone()).or_default() += *amount;
        }
        if touch.names.first.is_some() {
            self.first_name = touch.names.first.clone();
        }
        if touch.names.last.is_some() {
            self.last_name = touch.names.last.clone();
        }
        apply_facts(self, &touch.brand, &touch.facts, touch.at);
        self.updated_at = self.updated_at.max(touch.at);
        self.version += 1;
    }

    pub fn journeys(&self) -> Vec<journey::Journey> {
        journey::journeys(&self.milestones)
    }

    /// Where messages on `channel` go (see `crate::contact`).
    pub fn primary(&self, channel: Channel) -> Option<&Identifier> {
        self.contacts.primary(channel, &self.identifiers)
    }
}

fn apply_facts(p: &mut Profile, brand: &Brand, facts: &Facts, at: OffsetDateTime) {
    if let Some(granted) = facts.consent {
        for channel in Channel::ALL {
            let consent = Consent {
                granted,
                at,
                source: facts.source.to_owned(),
            };
            record_consent(&mut p.consents, brand, channel, consent);
        }
    }
    if facts.timezone.is_some() {
        p.timezone = facts.timezone.clone();
    }
    match facts.exclusion {
        Some(ExclusionChange::Excluded(kind)) => {
            let e = p.exclusions.entry(brand.clone()).or_insert(Exclusion {
                kind,
                at,
                reactivated_at: None,
            });
            e.kind = kind;
            e.at = at;
        }
        Some(ExclusionChange::Reactivated) => {
            if let Some(e) = p.exclusions.get_mut(brand) {
                e.reactivated_at = Some(at);
            }
        }
        None => {}
    }
}

/// Longest chain of merges followed from an old customer id to its survivor. Merges always
/// point at an older customer, so chains are short; a longer one means a corrupt table.
pub const MAX_MERGE_HOPS: usize = 16;

/// Where following merge tombstones from a customer id leads, given the profiles at hand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Follow {
    /// The customer that has not been merged away (its profile is among those given).
    Current(CustomerId),
    /// This profile is needed to go on.
    Load(CustomerId),
    /// More than `MAX_MERGE_HOPS` tombstones in a row.
    TooLong,
}

/// Follows `mergedInto` from `start` through `profiles`; the one rule every reader uses.
pub fn follow_merges(start: &CustomerId, profiles: &BTreeMap<CustomerId, Profile>) -> Follow {
    let mut id = start;
    for _ in 0..=MAX_MERGE_HOPS {
        match profiles.get(id) {
            None => return Follow::Load(id.clone()),
            Some(Profile {
                merged_into: Some(into),
                ..
            }) => id = into,
            Some(_) => return Follow::Current(id.clone()),
        }
    }
    Follow::TooLong
}

/// Folds `absorbed` into `survivor`: identifiers and merge history unite, journeys keep the
/// most advanced state per brand (earliest time per milestone), revenue adds up per
/// currency, the survivor's names win where it has them.
pub fn merge(mut survivor: Profile, absorbed: &[Profile], at: OffsetDateTime) -> Profile {
    for other in absorbed {
        survivor.identifiers.extend(other.identifiers.iter().cloned());
        survivor.contacts.merge(&other.contacts);
        journey::union(&mut survivor.milestones, &other.milestones);
        for (currency, amount) in &other.revenue {
            *survivor.revenue.entry(currency.clone()).or_default() += *amount;
        }
        survivor.first_name = survivor.first_name.or_else(|| other.first_name.clone());
        survivor.last_name = survivor.last_name.or_else(|| other.last_name.clone());
        survivor.created_at = survivor.created_at.min(other.created_at);
        for ((brand, channel), consent) in &other.consents {
            record_consent(&mut survivor.consents, brand, *channel, consent.clone());
        }
        for (brand, e) in &other.exclusions {
            let mine = survivor.exclusions.entry(brand.clone()).or_insert_with(|| e.clone());
            if e.at > mine.at {
                (mine.kind, mine.at) = (e.kind, e.at);
            }
            mine.reactivated_at = mine.reactivated_at.max(e.reactivated_at);
        }
        survivor.timezone = survivor.timezone.or_else(|| other.timezone.clone());
        survivor.merged_from.insert(other.id.clone());
        survivor.merged_from.extend(other.merged_from.iter().cloned());
    }
    survivor.updated_at = survivor.updated_at.max(at);
    survivor.version += 1;
    survivor
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::values::{ClickId, Email};
    use time::macros::datetime;

    fn cid(n: u8) -> CustomerId {
        CustomerId::parse(&format!("0192f0c1-7b7e-7cc0-9b1a-3c3f2d6e8a{n:02}")).unwrap()
    }

    fn touch(ids: Vec<Identifier>, brand: &str, m: Milestone, rev: Option<&str>, at: OffsetDateTime) -> Touch {
        Touch {
            identifiers: ids,
            brand: Brand::parse(brand).unwrap(),
            milestone: m,
            names: Names::default(),
            revenue: rev.map(|r| (Currency::parse("USD").unwrap(), Money::parse(r).unwrap())),
            facts: Facts::default(),
            test: false,
            via: None,
            at,
        }
    }

    fn click(s: &str) -> Identifier {
        Identifier::ClickId(ClickId::parse(s).unwrap())
    }

    #[test]
    fn applying_a_deposit_adds_revenue_and_advances_the_journey() {
        let t0 = datetime!(2026-11-01 10:00 UTC);
        let mut p = Profile::new(
            cid(1),
            &touch(vec![click("c1")], "rushbet", Milestone::Touched, None, t0),
        );
        p.apply(&touch(
            vec![],
            "rushbet",
            Milestone::FirstDeposit,
            Some("100"),
            t0 + time::Duration::hours(1),
        ));
        p.apply(&touch(
            vec![],
            "rushbet",
            Milestone::FirstDeposit,
            Some("50.5"),
            t0 + time::Duration::hours(2),
        ));
        assert_eq!(p.revenue[&Currency::parse("USD").unwrap()].to_string(), "150.5");
        assert_eq!(p.journeys()[0].stage, 1);
        assert_eq!(p.version, 3);
    }

    #[test]
    fn following_merges_asks_for_each_missing_profile_then_stops_at_the_survivor() {
        let t0 = datetime!(2026-11-01 10:00 UTC);
        let mut profiles = BTreeMap::new();
        assert_eq!(follow_merges(&cid(3), &profiles), Follow::Load(cid(3)));
        let mut tomb = Profile::new(cid(3), &touch(vec![], "rushbet", Milestone::Touched, None, t0));
        tomb.merged_into = Some(cid(1));
        profiles.insert(cid(3), tomb);
        assert_eq!(follow_merges(&cid(3), &profiles), Follow::Load(cid(1)));
        profiles.insert(
            cid(1),
            Profile::new(cid(1), &touch(vec![], "rushbet", Milestone::Touched, None, t0)),
        );
        assert_eq!(follow_merges(&cid(3), &profiles), Follow::Current(cid(1)));
        // A cycle (never written by us) is reported, not followed for ever.
        profiles.get_mut(&cid(1)).unwrap().merged_into = Some(cid(3));
        assert_eq!(follow_merges(&cid(3), &profiles), Follow::TooLong);
    }

    #[test]
    fn merge_unites_identifiers_keeps_most_advanced_journey_and_adds_revenue() {
        let t0 = datetime!(2026-11-01 10:00 UTC);
        let mut a = Profile::new(
            cid(1),
            &touch(vec![click("c1")], "rushbet", Milestone::Touched, None, t0),
        );
        a.first_name = Some("Juan".into());
        let b_touch = touch(vec![click("c2")], "rushbet", Milestone::FirstDeposit, Some("100"), t0);
        let mut b = Profile::new(cid(2), &b_touch);
        b.last_name = Some("Pérez".into());
        b.identifiers.insert(Identifier::Email(Email::parse("x@y.co").unwrap()));
        b.merged_from.insert(cid(3));

        let m = merge(a, &[b], t0 + time::Duration::days(1));
        assert_eq!(m.id, cid(1));
        assert_eq!(m.identifiers.len(), 3);
        assert_eq!(m.journeys()[0].stage, 1);
        assert_eq!(m.revenue[&Currency::parse("USD").unwrap()].to_string(), "100");
        assert_eq!(
            (m.first_name.as_deref(), m.last_name.as_deref()),
            (Some("Juan"), Some("Pérez"))
        );
        assert_eq!(m.merged_from, BTreeSet::from([cid(2), cid(3)]));
    }
}

/// A customer's stage with each brand, as counted in "customers at each stage": none for a
/// profile merged into another (its survivor counts) or made by test traffic.
pub fn stages(p: &Profile) -> BTreeMap<Brand, journey::Milestone> {
    if p.merged_into.is_some() || p.test {
        return BTreeMap::new();
    }
    p.journeys().into_iter().map(|j| (j.brand, j.milestone)).collect()
}

/// The brands whose stage moved between two versions of a profile: (brand, from, to).
pub fn stage_moves(
    before: Option<&Profile>,
    after: &Profile,
) -> Vec<(Brand, Option<journey::Milestone>, Option<journey::Milestone>)> {
    let old = before.map(stages).unwrap_or_default();
    let new = stages(after);
    let brands: BTreeSet<&Brand> = old.keys().chain(new.keys()).collect();
    brands
        .into_iter()
        .filter_map(|b| {
            let (from, to) = (old.get(b).copied(), new.get(b).copied());
            (from != to).then(|| (b.clone(), from, to))
        })
        .collect()
}

/// Longest name key the search index keeps (longer names are cut).
pub const MAX_NAME_KEY: usize = 64;

/// A name as the customer search keys it: lower case, the common Latin accents folded
/// (`María` → `maria`), anything but letters and digits a single space.
pub fn name_key(raw: &str) -> String {
    let mut key = String::new();
    for c in raw.chars().flat_map(char::to_lowercase) {
        let folded: &str = match c {
            'á' | 'à' | 'â' | 'ä' | 'ã' | 'å' => "a",
            'é' | 'è' | 'ê' | 'ë' => "e",
            'í' | 'ì' | 'î' | 'ï' => "i",
            'ó' | 'ò' | 'ô' | 'ö' | 'õ' | 'ø' => "o",
            'ú' | 'ù' | 'û' | 'ü' => "u",
            'ñ' => "n",
            'ç' => "c",
            'ý' | 'ÿ' => "y",
            'ß' => "ss",
            'æ' => "ae",
            'œ' => "oe",
            c if c.is_alphanumeric() => {
                key.push(c);
                continue;
            }
            _ => " ",
        };
        if folded == " " {
            if !key.is_empty() && !key.ends_with(' ') {
                key.push(' ');
            }
        } else {
            key.push_str(folded);
        }
    }
    let mut key = key.trim_end().to_owned();
    while key.len() > MAX_NAME_KEY {
        key.pop();
    }
    key.trim_end().to_owned()
}

/// The keys a customer is found by: the full name both ways round ("first last", "last
/// first"), or the one name given.
pub fn name_keys(first: Option<&str>, last: Option<&str>) -> Vec<String> {
    let (first, last) = (first.map(name_key), last.map(name_key));
    let mut keys: Vec<String> = match (first.filter(|f| !f.is_empty()), last.filter(|l| !l.is_empty())) {
        (Some(f), Some(l)) => vec![name_key(&format!("{f} {l}")), name_key(&format!("{l} {f}"))],
        (Some(one), None) | (None, Some(one)) => vec![one],
        (None, None) => Vec::new(),
    };
    keys.dedup();
    keys
}

#[cfg(test)]
mod name_tests {
    use super::*;

    #[test]
    fn names_are_found_without_case_accents_or_punctuation() {
        assert_eq!(name_key("  María-José  NÚÑEZ "), "maria jose nunez");
        assert_eq!(name_key("O'Brien"), "o brien");
        assert_eq!(name_key("Ørsted Æbelø"), "orsted aebelo");
        assert_eq!(name_key(&"x".repeat(100)).len(), MAX_NAME_KEY);
        assert_eq!(
            name_keys(Some("Juan"), Some("Pérez")),
            vec!["juan perez".to_owned(), "perez juan".to_owned()]
        );
        assert_eq!(name_keys(None, Some("Pérez")), vec!["perez".to_owned()]);
        assert_eq!(name_keys(Some("  "), None), Vec::<String>::new());
    }
}
