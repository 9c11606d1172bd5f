//! Frequency caps: at most `max` messages per rolling `per`, per brand and channel, and
//! across brands per channel (one person can be in many brands' journeys). Counted over the
//! person's send log, which the sender updates atomically with each send it allows.

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::definition::{Channel, Delay, PerChannel};
use crate::values::{Brand, Invalid};

/// At most `max` messages in any rolling window of length `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cap {
    pub max: u32,
    pub per: Delay,
}

/// Longest window a cap may have: the send log keeps this much history.
pub const MAX_WINDOW: Duration = Duration::days(31);

impl Cap {
    pub fn new(max: u32, per: Duration) -> Self {
        Self {
            max,
            per: Delay::from_duration(per),
        }
    }
    pub fn validate(&self) -> Result<(), Invalid> {
        let per = self.per.duration();
        if self.max > 1000 {
            return Err(Invalid::new("invalid_value", "max must be at most 1000"));
        }
        if per < Duration::minutes(1) || per > MAX_WINDOW {
            return Err(Invalid::new("invalid_value", "per must be between 1m and 31d"));
        }
        Ok(())
    }
    /// `2/24h,5/7d` (the environment's form); empty for no cap.
    pub fn parse_list(raw: &str) -> Result<Vec<Cap>, Invalid> {
        let bad = || {
            Invalid::new(
                "invalid_format",
                "caps are written max/window, comma separated: 2/24h,5/7d",
            )
        };
        raw.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|one| {
                let (max, per) = one.split_once('/').ok_or_else(bad)?;
                let cap = Cap {
                    max: max.trim().parse().map_err(|_| bad())?,
                    per: Delay::parse(per)?,
                };
                cap.validate()?;
                Ok(cap)
            })
            .collect()
    }
}

/// Caps per channel (`{"email": ["2/24h"], "sms": []}`); a channel without an entry has none.
pub type Caps = PerChannel<Vec<Cap>>;

impl PerChannel<Vec<Cap>> {
    pub fn for_channel(&self, channel: Channel) -> &[Cap] {
        self.get(channel).map_or(&[], Vec::as_slice)
    }
    /// Per brand, unless the brand sets its own: email 2 per 24 h and 5 per 7 days, SMS 1 per
    /// 24 h and 3 per 7 days.
    pub fn brand_default() -> Self {
        [
            (
                Channel::Email,
                vec![Cap::new(2, Duration::hours(24)), Cap::new(5, Duration::days(7))],
            ),
            (
                Channel::Sms,
                vec![Cap::new(1, Duration::hours(24)), Cap::new(3, Duration::days(7))],
            ),
        ]
        .into_iter()
        .collect()
    }
    /// Per person across brands: email 4 per 24 h, SMS 2 per 24 h.
    pub fn cross_brand_default() -> Self {
        [
            (Channel::Email, vec![Cap::new(4, Duration::hours(24))]),
            (Channel::Sms, vec![Cap::new(2, Duration::hours(24))]),
        ]
        .into_iter()
        .collect()
    }
    /// Checks every cap; `Err` names the channel.
    pub fn validate(&self) -> Result<(), (&'static str, Invalid)> {
        for (channel, caps) in self.iter() {
            for cap in caps {
                cap.validate().map_err(|e| (channel.as_str(), e))?;
            }
        }
        Ok(())
    }
}

/// One message counted against the caps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Sent {
    pub message_id: String,
    pub brand: Brand,
    #[serde(with = "crate::values::ts")]
    pub at: OffsetDateTime,
}

/// A person's recent sends on one channel, and the version its conditional update expects.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SendLog {
    pub sends: Vec<Sent>,
    pub version: u64,
}

impl SendLog {
    /// Whether `message_id` is already counted (a retry after the log was updated).
    pub fn counts(&self, message_id: &str) -> bool {
        self.sends.iter().any(|s| s.message_id == message_id)
    }
    /// The log with `sent` added and entries older than `MAX_WINDOW` dropped.
    pub fn with(&self, sent: Sent) -> Vec<Sent> {
        let horizon = sent.at - MAX_WINDOW;
        let mut sends: Vec<Sent> = self
            .sends
            .iter()
            .filter(|s| s.at > horizon && s.message_id != sent.message_id)
            .cloned()
            .collect();
        sends.push(sent);
        sends
    }
}

/// When message `message_id` of `brand` may go without exceeding `brand_caps` (over that
/// brand's sends) or `cross_brand` (over all sends): `now`, or the first moment every cap
/// has room. The message's own entry (a retry after a provider error) does not count.
/// Counts only drop as time passes, so this is the earliest time the message fits.
pub fn earliest(
    log: &SendLog,
    message_id: &str,
    brand: &Brand,
    brand_caps: &[Cap],
    cross_brand: &[Cap],
    now: OffsetDateTime,
) -> OffsetDateTime {
    let others = || log.sends.iter().filter(|s| s.message_id != message_id);
    let own: Vec<OffsetDateTime> = others().filter(|s| &s.brand == brand).map(|s| s.at).collect();
    let all: Vec<OffsetDateTime> = others().map(|s| s.at).collect();
    let mut t = now;
    // Each pass moves `t` to where a full window frees; no more passes than caps are needed,
    // but a few spare cost nothing.
    for _ in 0..=(brand_caps.len() + cross_brand.len()) * 2 + 2 {
        let next = brand_caps
            .iter()
            .map(|c| frees(&own, *c, t))
            .chain(cross_brand.iter().map(|c| frees(&all, *c, t)))
            .max()
            .unwrap_or(t);
        if next == t {
            return t;
        }
        t = next;
    }
    t
}

/// The first moment at or after `t` when the window ending then holds fewer than `cap.max`
/// of `sends`.
fn frees(sends: &[OffsetDateTime], cap: Cap, t: OffsetDateTime) -> OffsetDateTime {
    let per = cap.per.duration();
    let mut inside: Vec<OffsetDateTime> = sends.iter().copied().filter(|s| *s > t - per).collect();
    if (inside.len() as u64) < u64::from(cap.max) {
        return t;
    }
    if cap.max == 0 {
        // Never: as far as any message can wait.
        return t + MAX_WINDOW + Duration::days(366);
    }
    inside.sort();
    // Once the oldest `len - max + 1` have left the window, `max - 1` remain.
    inside[inside.len() - cap.max as usize] + per
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use time::macros::datetime;

    const T0: OffsetDateTime = datetime!(2026-11-22 10:00 UTC);

    fn brand(b: &str) -> Brand {
        Brand::parse(b).unwrap()
    }
    fn sent(id: &str, b: &str, at: OffsetDateTime) -> Sent {
        Sent {
            message_id: id.into(),
            brand: brand(b),
            at,
        }
    }

    #[test]
    fn caps_parse_from_the_environment_form() {
        assert_eq!(
            Cap::parse_list("2/24h, 5/7d").unwrap(),
            vec![Cap::new(2, Duration::hours(24)), Cap::new(5, Duration::days(7))]
        );
        assert_eq!(Cap::parse_list("").unwrap(), vec![]);
        assert!(Cap::parse_list("2 per day").is_err());
        assert!(Cap::parse_list("2/90d").is_err());
    }

    #[test]
    fn a_full_window_frees_when_its_oldest_send_leaves() {
        let log = SendLog {
            sends: vec![
                sent("a", "rushbet", T0 - Duration::hours(20)),
                sent("b", "rushbet", T0 - Duration::hours(2)),
            ],
            version: 2,
        };
        let caps = Caps::brand_default();
        let at = earliest(
            &log,
            "new",
            &brand("rushbet"),
            caps.for_channel(Channel::Email),
            &[],
            T0,
        );
        assert_eq!(at, T0 + Duration::hours(4));
        // Another brand's sends count only across brands.
        assert_eq!(
            earliest(&log, "new", &brand("betano"), caps.for_channel(Channel::Email), &[], T0),
            T0
        );
        let cross = [Cap::new(2, Duration::hours(24))];
        assert_eq!(
            earliest(
                &log,
                "new",
                &brand("betano"),
                caps.for_channel(Channel::Email),
                &cross,
                T0
            ),
            T0 + Duration::hours(4)
        );
    }

    #[test]
    fn the_log_forgets_what_no_cap_can_see() {
        let log = SendLog {
            sends: vec![
                sent("old", "rushbet", T0 - Duration::days(40)),
                sent("a", "rushbet", T0),
            ],
            version: 1,
        };
        let next = log.with(sent("b", "rushbet", T0 + Duration::hours(1)));
        let ids: Vec<&str> = next.iter().map(|s| s.message_id.as_str()).collect();
        assert_eq!(ids, ["a", "b"]);
        assert!(log.counts("a") && !log.counts("b"));
    }

    proptest! {
        /// Sending whenever `earliest` allows never puts more than `max` sends in any window.
        #[test]
        fn caps_are_never_exceeded(
            caps in prop::collection::vec((1u32..4, 1i64..48), 1..3),
            cross in prop::collection::vec((1u32..6, 1i64..48), 0..2),
            attempts in prop::collection::vec((0i64..(14 * 24 * 60), 0usize..3), 1..60),
        ) {
            let caps: Vec<Cap> = caps.into_iter().map(|(m, h)| Cap::new(m, Duration::hours(h))).collect();
            let cross: Vec<Cap> = cross.into_iter().map(|(m, h)| Cap::new(m, Duration::hours(h))).collect();
            let brands = ["rushbet", "betano", "codere"];
            let mut attempts = attempts;
            attempts.sort();
            let mut log = SendLog::default();
            for (i, (minute, b)) in attempts.into_iter().enumerate() {
                let now = T0 + Duration::minutes(minute);
                let b = brand(brands[b]);
                if earliest(&log, "new", &b, &caps, &cross, now) == now {
                    log.sends = log.with(sent(&format!("m{i}"), b.as_str(), now));
                    log.version += 1;
                }
                for cap in &caps {
                    for own in brands {
                        let n = log.sends.iter().filter(|s| s.brand.as_str() == own && s.at > now - cap.per.duration()).count();
                        prop_assert!(n as u32 <= cap.max, "{own} has {n} in {}", cap.per);
                    }
                }
                for cap in &cross {
                    let n = log.sends.iter().filter(|s| s.at > now - cap.per.duration()).count();
                    prop_assert!(n as u32 <= cap.max);
                }
            }
        }

        /// A deferred message fits at the time it is deferred to, and not a minute before.
        #[test]
        fn deferral_goes_to_the_first_free_moment(
            sends in prop::collection::vec(0i64..(3 * 24 * 60), 0..12),
            max in 1u32..4,
            hours in 1i64..72,
        ) {
            let log = SendLog {
                sends: sends.iter().enumerate().map(|(i, m)| sent(&format!("m{i}"), "rushbet", T0 + Duration::minutes(*m))).collect(),
                version: 0,
            };
            let caps = [Cap::new(max, Duration::hours(hours))];
            let now = T0 + Duration::days(3);
            let t = earliest(&log, "new", &brand("rushbet"), &caps, &[], now);
            prop_assert!(t >= now);
            prop_assert_eq!(earliest(&log, "new", &brand("rushbet"), &caps, &[], t), t);
            if t > now {
                let before = t - Duration::seconds(1);
                prop_assert!(earliest(&log, "new", &brand("rushbet"), &caps, &[], before) > before);
            }
        }
    }
}
