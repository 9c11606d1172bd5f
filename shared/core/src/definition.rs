//! Journey definitions, as data: per brand, the messages each journey stage sends (steps)
//! and the time-based moves between stages (advances). Brands without a definition of their
//! own run `JourneyDefinition::default_definition()`.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use time::Duration;

use crate::journey::{Journey, JourneyType};
use crate::values::Invalid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Email,
    Sms,
}

impl Channel {
    pub const ALL: [Channel; 2] = [Self::Email, Self::Sms];
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Sms => "sms",
        }
    }
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        Self::ALL
            .into_iter()
            .find(|c| c.as_str().eq_ignore_ascii_case(raw.trim()))
            .ok_or_else(|| Invalid::new("invalid_value", "channel must be email or sms"))
    }
}

/// One value per channel. Settings that differ by channel (frequency caps, quiet hours,
/// daily budgets) are maps keyed by channel, written `{"email": …, "sms": …}`: a new
/// channel is one `Channel` variant and its entries, not a field in every settings type.
/// A channel without an entry has none (or, in a brand's override, keeps the default).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PerChannel<T>(BTreeMap<Channel, T>);

impl<T> Default for PerChannel<T> {
    fn default() -> Self {
        Self(BTreeMap::new())
    }
}

impl<T> PerChannel<T> {
    pub fn get(&self, channel: Channel) -> Option<&T> {
        self.0.get(&channel)
    }
    pub fn set(&mut self, channel: Channel, value: T) {
        self.0.insert(channel, value);
    }
    pub fn iter(&self) -> impl Iterator<Item = (Channel, &T)> {
        self.0.iter().map(|(c, v)| (*c, v))
    }
    pub fn values(&self) -> impl Iterator<Item = &T> {
        self.0.values()
    }
    /// `self` with `over`'s entries replacing its own, channel by channel.
    pub fn overlaid(mut self, over: &Self) -> Self
    where
        T: Clone,
    {
        self.0.extend(over.0.iter().map(|(c, v)| (*c, v.clone())));
        self
    }
}

impl<T> FromIterator<(Channel, T)> for PerChannel<T> {
    fn from_iter<I: IntoIterator<Item = (Channel, T)>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}

/// A length of time as marketers write it: `0`, `45s`, `30m`, `24h`, `7d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Delay(Duration);

impl Delay {
    /// Longest delay or expiry accepted (a year).
    pub const MAX: Duration = Duration::days(366);

    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let bad = || {
            Invalid::new(
                "invalid_format",
                "must be 0 or a whole number with s, m, h or d (30m, 24h, 7d)",
            )
        };
        let raw = raw.trim();
        if raw == "0" {
            return Ok(Self(Duration::ZERO));
        }
        let split = raw.len().checked_sub(1).ok_or_else(bad)?;
        let (digits, unit) = raw.split_at(split);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || digits.len() > 6 {
            return Err(bad());
        }
        let n: i64 = digits.parse().map_err(|_| bad())?;
        let d = match unit {
            "s" => Duration::seconds(n),
            "m" => Duration::minutes(n),
            "h" => Duration::hours(n),
            "d" => Duration::days(n),
            _ => return Err(bad()),
        };
        if d > Self::MAX {
            return Err(Invalid::new("invalid_value", "must be at most 366d"));
        }
        Ok(Self(d))
    }
    pub const fn from_duration(d: Duration) -> Self {
        Self(d)
    }
    pub fn duration(self) -> Duration {
        self.0
    }
}

impl fmt::Display for Delay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0.whole_seconds();
        match s {
            0 => f.write_str("0"),
            s if s % 86_400 == 0 => write!(f, "{}d", s / 86_400),
            s if s % 3_600 == 0 => write!(f, "{}h", s / 3_600),
            s if s % 60 == 0 => write!(f, "{}m", s / 60),
            s => write!(f, "{s}s"),
        }
    }
}

impl TryFrom<String> for Delay {
    type Error = String;
    fn try_from(v: String) -> Result<Self, String> {
        Self::parse(&v).map_err(|e| e.message)
    }
}

impl From<Delay> for String {
    fn from(d: Delay) -> String {
        d.to_string()
    }
}

/// The journey stages a definition may name: the milestone stages of `journey::STAGES` and
/// the time-based dormant stage (retention 2).
pub const KNOWN_STAGES: [(JourneyType, i32, &str); 4] = [
    (JourneyType::Acquisition, -1, "clicked or signed up as a lead"),
    (
        JourneyType::Acquisition,
        0,
        "registered with the operator, no deposit yet",
    ),
    (JourneyType::Retention, 1, "deposited"),
    (JourneyType::Retention, 2, "dormant: no deposit for a while"),
];

pub fn is_known_stage(journey_type: JourneyType, stage: i32) -> bool {
    KNOWN_STAGES.iter().any(|(t, s, _)| *t == journey_type && *s == stage)
}

/// How long a step's message may wait (for an address, later for a frequency cap) before
/// it is skipped, when the step does not say.
pub const DEFAULT_EXPIRY: Delay = Delay(Duration::hours(72));

/// One message a stage sends: scheduled at stage entry + `delay`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Step {
    pub id: String,
    pub journey_type: JourneyType,
    pub stage: i32,
    pub channel: Channel,
    pub delay: Delay,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_after: Option<Delay>,
}

impl Step {
    pub fn expiry(&self) -> Delay {
        self.expires_after.unwrap_or(DEFAULT_EXPIRY)
    }
}

/// A time-based move: a customer who has stayed in `from` for `after` (for retention: `after`
/// since the last deposit) moves to `to`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Advance {
    pub journey_type: JourneyType,
    pub from: i32,
    pub to: i32,
    pub after: Delay,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JourneyDefinition {
    pub steps: Vec<Step>,
    #[serde(default)]
    pub advances: Vec<Advance>,
}

/// The time-based advance the journey-advance function applies: retention 1 → 2.
pub const DORMANCY: (JourneyType, i32, i32) = (JourneyType::Retention, 1, 2);

/// What the journey-advance function should do about one customer's journey with a brand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdvanceCheck {
    /// Move to dormant, as of `at` (the last deposit + the advance period).
    Advance { at: time::OffsetDateTime },
    /// Not yet: check again at `due`.
    NotYet { due: time::OffsetDateTime },
    /// The brand defines no such advance, or the journey is not in its `from` stage.
    NotApplicable,
}

impl JourneyDefinition {
    /// When a deposit at `last_deposit` makes `journey` dormant, if the definition says so.
    pub fn dormancy_due(&self, last_deposit: time::OffsetDateTime) -> Option<time::OffsetDateTime> {
        self.advances
            .iter()
            .find(|a| (a.journey_type, a.from, a.to) == DORMANCY)
            .map(|a| last_deposit + a.after.duration())
    }

    /// Whether `journey` (the customer's current one with the brand) goes dormant now.
    pub fn check_advance(
        &self,
        journey: Option<&Journey>,
        last_deposit: time::OffsetDateTime,
        now: time::OffsetDateTime,
    ) -> AdvanceCheck {
        let Some(journey) = journey.filter(|j| (j.journey_type, j.stage) == (DORMANCY.0, DORMANCY.1)) else {
            return AdvanceCheck::NotApplicable;
        };
        match self.dormancy_due(last_deposit.max(journey.since)) {
            None => AdvanceCheck::NotApplicable,
            Some(due) if now >= due => AdvanceCheck::Advance { at: due },
            Some(due) => AdvanceCheck::NotYet { due },
        }
    }
}

/// Why a definition was refused; `step` names the offending step id (or `advances[i]`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{step}: {message}")]
pub struct DefinitionError {
    pub step: String,
    pub code: &'static str,
    pub message: String,
}

/// Most steps a definition may have.
pub const MAX_STEPS: usize = 50;

impl JourneyDefinition {
    /// A definition as the admin API and the console take it (`{"steps": [...],
    /// "advances": [...]}`), each step read on its own so a bad one is named by its id (or
    /// index). Checked further by `validate`.
    pub fn from_json(body: &serde_json::Map<String, serde_json::Value>) -> Result<Self, DefinitionError> {
        let bad = |step: String, message: String| DefinitionError {
            step,
            code: "invalid_step",
            message,
        };
        let steps = body
            .get("steps")
            .and_then(serde_json::Value::as_array)
            .ok_or_else(|| bad("steps".into(), "steps must be a list".into()))?;
        let mut parsed = Vec::with_capacity(steps.len());
        for (i, raw) in steps.iter().enumerate() {
            let name = raw["id"].as_str().map_or_else(|| format!("steps[{i}]"), str::to_owned);
            parsed.push(serde_json::from_value(raw.clone()).map_err(|e| bad(name, e.to_string()))?);
        }
        let mut advances = Vec::new();
        for (i, raw) in body
            .get("advances")
            .and_then(serde_json::Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            advances
                .push(serde_json::from_value(raw.clone()).map_err(|e| bad(format!("advances[{i}]"), e.to_string()))?);
        }
        if let Some(other) = body.keys().find(|k| *k != "steps" && *k != "advances") {
            return Err(bad(other.clone(), "unknown field (steps and advances only)".into()));
        }
        Ok(Self {
            steps: parsed,
            advances,
        })
    }
}

impl JourneyDefinition {
    /// The definition of brands without one: welcome, registration nudges, deposit thank-you,
    /// and reactivation after 30 days without a deposit.
    pub fn default_definition() -> Self {
        let step = |id: &str, journey_type, stage, channel, delay: Duration| Step {
            id: id.into(),
            journey_type,
            stage,
            channel,
            delay: Delay(delay),
            template_id: None,
            expires_after: None,
        };
        use Channel::{Email, Sms};
        use JourneyType::{Acquisition, Retention};
        Self {
            steps: vec![
                step("welcome", Acquisition, -1, Email, Duration::ZERO),
                step("registered-nudge-email", Acquisition, 0, Email, Duration::hours(24)),
                step("registered-nudge-sms", Acquisition, 0, Sms, Duration::hours(48)),
                step("deposit-thanks", Retention, 1, Email, Duration::ZERO),
                step("reactivation", Retention, 2, Email, Duration::ZERO),
            ],
            advances: vec![Advance {
                journey_type: Retention,
                from: 1,
                to: 2,
                after: Delay(Duration::days(30)),
            }],
        }
    }

    pub fn steps_for(&self, journey_type: JourneyType, stage: i32) -> impl Iterator<Item = &Step> {
        self.steps
            .iter()
            .filter(move |s| s.journey_type == journey_type && s.stage == stage)
    }

    /// Checks what serde cannot: unique, well-formed step ids, known stages, sensible
    /// advances, and (through `template_resolves`) that every step has a template to send.
    pub fn validate(&self, template_resolves: impl Fn(&Step) -> bool) -> Result<(), DefinitionError> {
        let fail = |step: &str, code, message: &str| DefinitionError {
            step: step.to_owned(),
            code,
            message: message.to_owned(),
        };
        if self.steps.len() > MAX_STEPS {
            return Err(fail("steps", "too_many", "a definition has at most 50 steps"));
        }
        for (i, step) in self.steps.iter().enumerate() {
            let ok_id = !step.id.is_empty()
                && step.id.len() <= 64
                && step
                    .id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !ok_id {
                return Err(fail(
                    &format!("steps[{i}]"),
                    "invalid_format",
                    "id must be 1-64 letters, digits, '-' or '_'",
                ));
            }
            if self.steps[..i].iter().any(|s| s.id == step.id) {
                return Err(fail(&step.id, "duplicate", "step ids must be unique"));
            }
            if !is_known_stage(step.journey_type, step.stage) {
                return Err(fail(
                    &step.id,
                    "unknown_stage",
                    "stage must be acquisition -1 or 0, or retention 1 or 2",
                ));
            }
            if !template_resolves(step) {
                return Err(fail(
                    &step.id,
                    "unknown_template",
                    "no template matches this step (templateId, or brand/journey/stage/channel)",
                ));
            }
        }
        for (i, a) in self.advances.iter().enumerate() {
            let name = format!("advances[{i}]");
            if !is_known_stage(a.journey_type, a.from) || !is_known_stage(a.journey_type, a.to) || a.to <= a.from {
                return Err(fail(
                    &name,
                    "unknown_stage",
                    "an advance moves forward between known stages of one journey type",
                ));
            }
            if (a.journey_type, a.from, a.to) != DORMANCY {
                return Err(fail(
                    &name,
                    "unsupported_advance",
                    "the supported advance is retention 1 -> 2 (dormant) after a time without a deposit",
                ));
            }
            if a.after.duration() < Duration::hours(1) {
                return Err(fail(&name, "invalid_value", "after must be at least 1h"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_parse_as_marketers_write_them() {
        assert_eq!(Delay::parse("0").unwrap().duration(), Duration::ZERO);
        assert_eq!(Delay::parse("30m").unwrap().duration(), Duration::minutes(30));
        assert_eq!(Delay::parse("24h").unwrap().duration(), Duration::hours(24));
        assert_eq!(Delay::parse("7d").unwrap().duration(), Duration::days(7));
        for bad in ["", "h", "24", "-1h", "1.5h", "2w", "400d", "9999999s"] {
            assert!(Delay::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Delay::parse("48h").unwrap().to_string(), "2d");
        assert_eq!(Delay::parse("90m").unwrap().to_string(), "90m");
    }

    #[test]
    fn the_default_definition_is_valid() {
        JourneyDefinition::default_definition().validate(|_| true).unwrap();
    }

    #[test]
    fn a_bad_step_is_named() {
        let json = r#"{"steps":[{"id":"hello","journeyType":"acquisition","stage":-1,"channel":"email","delay":"0"},
                                {"id":"later","journeyType":"acquisition","stage":7,"channel":"sms","delay":"1h"}]}"#;
        let d: JourneyDefinition = serde_json::from_str(json).unwrap();
        let err = d.validate(|_| true).unwrap_err();
        assert_eq!((err.step.as_str(), err.code), ("later", "unknown_stage"));
        let err = JourneyDefinition::default_definition()
            .validate(|s| s.channel == Channel::Email)
            .unwrap_err();
        assert_eq!(
            (err.step.as_str(), err.code),
            ("registered-nudge-sms", "unknown_template")
        );
    }

    #[test]
    fn a_depositor_goes_dormant_thirty_days_after_the_last_deposit() {
        use crate::journey::{Milestone, Milestones, journeys, reach};
        use time::macros::datetime;
        let d = JourneyDefinition::default_definition();
        let first = datetime!(2026-10-01 10:00 UTC);
        let last = datetime!(2026-10-20 10:00 UTC);
        let mut m = Milestones::new();
        reach(
            &mut m,
            &crate::values::Brand::parse("rushbet").unwrap(),
            Milestone::FirstDeposit,
            first,
        );
        let j = journeys(&m).remove(0);
        assert_eq!(
            d.check_advance(Some(&j), last, last + Duration::days(29)),
            AdvanceCheck::NotYet {
                due: last + Duration::days(30)
            }
        );
        assert_eq!(
            d.check_advance(Some(&j), last, last + Duration::days(31)),
            AdvanceCheck::Advance {
                at: last + Duration::days(30)
            }
        );
        let mut registered = Milestones::new();
        reach(
            &mut registered,
            &crate::values::Brand::parse("rushbet").unwrap(),
            Milestone::Registered,
            first,
        );
        let not_depositor = journeys(&registered).remove(0);
        assert_eq!(
            d.check_advance(Some(&not_depositor), last, last + Duration::days(60)),
            AdvanceCheck::NotApplicable
        );
        let without = JourneyDefinition { advances: vec![], ..d };
        assert_eq!(
            without.check_advance(Some(&j), last, last + Duration::days(60)),
            AdvanceCheck::NotApplicable
        );
    }

    #[test]
    fn definitions_round_trip_through_json() {
        let d = JourneyDefinition::default_definition();
        let json = serde_json::to_string(&d).unwrap();
        assert!(json.contains(r#""delay":"1d""#), "{json}");
        assert_eq!(serde_json::from_str::<JourneyDefinition>(&json).unwrap(), d);
    }
}
