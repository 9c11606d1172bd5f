//! Journey rules, as data. A customer's journey with a brand is derived from the milestones
//! reached with that brand (each kept with the time it was first reached). Milestones only
//! accumulate, so applying events is commutative: a late or out-of-order postback (an FTD
//! batched a day after, a registration after the deposit) lands in the same state.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::compliance::ExclusionKind;
use crate::profile::ExclusionChange;
use crate::values::{Brand, Invalid};

/// What has happened between a customer and a brand, in journey order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Milestone {
    /// Any click, lead or other event: the acquisition journey has started.
    Touched,
    Registered,
    FirstDeposit,
    /// No deposit for the definition's advance period after the last one (time-based; a
    /// later deposit takes it away again).
    Dormant,
}

impl Milestone {
    pub const ALL: [Milestone; 4] = [Self::Touched, Self::Registered, Self::FirstDeposit, Self::Dormant];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Touched => "touched",
            Self::Registered => "registered",
            Self::FirstDeposit => "first_deposit",
            Self::Dormant => "dormant",
        }
    }
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == raw)
    }
    /// Reaching a milestone also means the brand was touched: the milestones recorded when
    /// this one is reached (the store's update and `reach` both follow it).
    pub fn reached_with(self) -> BTreeSet<Milestone> {
        BTreeSet::from([Self::Touched, self])
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JourneyType {
    Acquisition,
    Retention,
}

/// The transition table: the journey type and stage each milestone puts a customer in.
/// `Dormant` is reached by time (the journey-advance function), the others by events.
pub const STAGES: [(Milestone, JourneyType, i32); 4] = [
    (Milestone::Touched, JourneyType::Acquisition, -1),
    (Milestone::Registered, JourneyType::Acquisition, 0),
    (Milestone::FirstDeposit, JourneyType::Retention, 1),
    (Milestone::Dormant, JourneyType::Retention, 2),
];

fn stage_of(m: Milestone) -> (JourneyType, i32) {
    STAGES
        .iter()
        .find(|(s, ..)| *s == m)
        .map(|(_, t, n)| (*t, *n))
        .expect("every milestone has a stage")
}

/// A conversion type as operators name it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum EventKind {
    Registration,
    Ftd,
    Deposit,
    /// Responsible gambling: the customer excluded themselves, took a break or closed the
    /// account. Stops all marketing from the brand at once.
    Exclusion(ExclusionKind),
    /// Responsible gambling: the account is open again (lifts an exclusion if the brand allows).
    Reactivated,
    /// Anything else, kept as sent (trimmed).
    Other(String),
}

impl EventKind {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let v = raw.trim();
        if v.len() > 64 || v.chars().any(|c| c.is_control()) {
            return Err(Invalid::new(
                "invalid_format",
                "event type must be at most 64 printable characters",
            ));
        }
        let key: String = v
            .to_ascii_lowercase()
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect();
        Ok(match key.as_str() {
            "registration" | "reg" | "signup" | "register" | "registered" => Self::Registration,
            "ftd" | "firstdeposit" | "firsttimedeposit" => Self::Ftd,
            "deposit" | "dep" | "redeposit" => Self::Deposit,
            "selfexclusion" | "selfexcluded" | "selfexclude" | "exclusion" | "excluded" => {
                Self::Exclusion(ExclusionKind::SelfExclusion)
            }
            "coolingoff" | "cooloff" | "coolingperiod" | "timeout" | "takeabreak" => {
                Self::Exclusion(ExclusionKind::CoolingOff)
            }
            "accountclosed" | "accountclosure" | "closed" | "closeaccount" => {
                Self::Exclusion(ExclusionKind::AccountClosed)
            }
            "reactivated" | "reactivation" | "reopened" | "accountreopened" | "accountreactivated" => Self::Reactivated,
            _ => Self::Other(v.to_owned()),
        })
    }
    pub fn as_str(&self) -> &str {
        match self {
            Self::Registration => "registration",
            Self::Ftd => "ftd",
            Self::Deposit => "deposit",
            Self::Exclusion(k) => k.as_str(),
            Self::Reactivated => "reactivated",
            Self::Other(v) => v,
        }
    }
    /// The responsible-gambling change this event reports.
    pub fn exclusion(&self) -> Option<ExclusionChange> {
        match self {
            Self::Exclusion(k) => Some(ExclusionChange::Excluded(*k)),
            Self::Reactivated => Some(ExclusionChange::Reactivated),
            _ => None,
        }
    }
    /// A deposit implies the first deposit happened, even if the FTD postback never came.
    pub fn milestone(&self) -> Milestone {
        match self {
            Self::Registration => Milestone::Registered,
            Self::Ftd | Self::Deposit => Milestone::FirstDeposit,
            Self::Exclusion(_) | Self::Reactivated | Self::Other(_) => Milestone::Touched,
        }
    }
}

/// Milestones reached with each brand, with the time each was first reached.
pub type Milestones = BTreeMap<Brand, BTreeMap<Milestone, OffsetDateTime>>;

/// Records a milestone (and the touch it implies); keeps the earliest time.
pub fn reach(milestones: &mut Milestones, brand: &Brand, milestone: Milestone, at: OffsetDateTime) {
    let reached = milestones.entry(brand.clone()).or_default();
    for m in milestone.reached_with() {
        reached.entry(m).and_modify(|t| *t = (*t).min(at)).or_insert(at);
    }
}

/// Union of two histories, earliest time per milestone (used by merges).
pub fn union(into: &mut Milestones, other: &Milestones) {
    for (brand, reached) in other {
        for (m, at) in reached {
            reach(into, brand, *m, *at);
        }
    }
}

/// The state of one journey, as shown and as scheduled on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Journey {
    pub brand: Brand,
    #[serde(rename = "type")]
    pub journey_type: JourneyType,
    pub stage: i32,
    pub milestone: Milestone,
    /// When the current milestone was reached.
    #[serde(with = "crate::values::ts")]
    pub since: OffsetDateTime,
    /// When the journey started (first touch).
    #[serde(with = "crate::values::ts")]
    pub started_at: OffsetDateTime,
}

/// Journeys per brand. Activity without a brand is a placeholder: once the customer has a
/// journey with a real brand, the unbranded history is credited to every branded journey
/// and the unbranded journey is no longer listed.
pub fn journeys(milestones: &Milestones) -> Vec<Journey> {
    let unbranded = milestones.iter().find(|(b, _)| b.is_unbranded()).map(|(_, m)| m);
    let branded: Vec<_> = milestones.iter().filter(|(b, _)| !b.is_unbranded()).collect();
    let view = |brand: &Brand, reached: &BTreeMap<Milestone, OffsetDateTime>| {
        let (milestone, since) = reached.iter().next_back().map(|(m, t)| (*m, *t))?;
        let (journey_type, stage) = stage_of(milestone);
        let started_at = *reached.values().min()?;
        Some(Journey {
            brand: brand.clone(),
            journey_type,
            stage,
            milestone,
            since,
            started_at,
        })
    };
    match (branded.is_empty(), unbranded) {
        (true, Some(reached)) => view(&Brand::unbranded(), reached).into_iter().collect(),
        (_, None) => branded.into_iter().filter_map(|(b, r)| view(b, r)).collect(),
        (false, Some(extra)) => branded
            .into_iter()
            .filter_map(|(b, r)| {
                let mut combined: Milestones = BTreeMap::from([(b.clone(), r.clone())]);
                for (m, at) in extra {
                    reach(&mut combined, b, *m, *at);
                }
                view(b, &combined[b])
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn brand(s: &str) -> Brand {
        Brand::parse(s).unwrap()
    }

    #[test]
    fn event_names_normalise() {
        assert_eq!(EventKind::parse("Deposit").unwrap(), EventKind::Deposit);
        assert_eq!(EventKind::parse("first_deposit").unwrap(), EventKind::Ftd);
        assert_eq!(EventKind::parse("Sign-Up").unwrap(), EventKind::Registration);
        assert_eq!(
            EventKind::parse(" Approved ").unwrap(),
            EventKind::Other("Approved".into())
        );
    }

    #[test]
    fn a_touch_starts_acquisition_at_minus_one() {
        let mut m = Milestones::new();
        reach(
            &mut m,
            &brand("rushbet"),
            Milestone::Touched,
            datetime!(2026-11-01 10:00 UTC),
        );
        let j = &journeys(&m)[0];
        assert_eq!((j.journey_type, j.stage), (JourneyType::Acquisition, -1));
    }

    #[test]
    fn registration_is_stage_zero_and_deposit_moves_to_retention_one() {
        let mut m = Milestones::new();
        let b = brand("rushbet");
        reach(
            &mut m,
            &b,
            EventKind::Registration.milestone(),
            datetime!(2026-11-01 10:00 UTC),
        );
        assert_eq!(journeys(&m)[0].stage, 0);
        reach(
            &mut m,
            &b,
            EventKind::Deposit.milestone(),
            datetime!(2026-11-02 10:00 UTC),
        );
        let j = &journeys(&m)[0];
        assert_eq!(
            (j.journey_type, j.stage, j.since),
            (JourneyType::Retention, 1, datetime!(2026-11-02 10:00 UTC))
        );
        assert_eq!(j.started_at, datetime!(2026-11-01 10:00 UTC));
    }

    #[test]
    fn out_of_order_events_land_in_the_same_state() {
        let b = brand("rushbet");
        let (t1, t2) = (datetime!(2026-11-01 10:00 UTC), datetime!(2026-11-02 10:00 UTC));
        let mut in_order = Milestones::new();
        reach(&mut in_order, &b, Milestone::Registered, t1);
        reach(&mut in_order, &b, Milestone::FirstDeposit, t2);
        let mut reversed = Milestones::new();
        reach(&mut reversed, &b, Milestone::FirstDeposit, t2);
        reach(&mut reversed, &b, Milestone::Registered, t1);
        assert_eq!(in_order, reversed);
    }

    #[test]
    fn a_later_registration_never_moves_retention_back() {
        let mut m = Milestones::new();
        let b = brand("rushbet");
        reach(&mut m, &b, Milestone::FirstDeposit, datetime!(2026-11-01 10:00 UTC));
        reach(&mut m, &b, Milestone::Registered, datetime!(2026-11-03 10:00 UTC));
        assert_eq!(journeys(&m)[0].stage, 1);
    }

    #[test]
    fn brands_are_independent() {
        let mut m = Milestones::new();
        reach(
            &mut m,
            &brand("rushbet"),
            Milestone::FirstDeposit,
            datetime!(2026-11-01 10:00 UTC),
        );
        reach(
            &mut m,
            &brand("roobet"),
            Milestone::Touched,
            datetime!(2026-11-01 10:00 UTC),
        );
        let js = journeys(&m);
        let stage = |b: &str| js.iter().find(|j| j.brand.as_str() == b).unwrap().stage;
        assert_eq!((stage("rushbet"), stage("roobet")), (1, -1));
    }

    #[test]
    fn unbranded_history_is_credited_to_branded_journeys() {
        let mut m = Milestones::new();
        reach(
            &mut m,
            &Brand::unbranded(),
            Milestone::Touched,
            datetime!(2026-11-01 09:00 UTC),
        );
        assert_eq!(journeys(&m)[0].brand.as_str(), "unbranded");
        reach(
            &mut m,
            &brand("rushbet"),
            Milestone::FirstDeposit,
            datetime!(2026-11-02 10:00 UTC),
        );
        let js = journeys(&m);
        assert_eq!(js.len(), 1);
        assert_eq!((js[0].brand.as_str(), js[0].stage), ("rushbet", 1));
        assert_eq!(js[0].started_at, datetime!(2026-11-01 09:00 UTC));
    }
}
