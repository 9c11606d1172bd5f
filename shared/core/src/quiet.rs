//! Quiet hours: no message on a channel while it is quiet time where the recipient is. The
//! recipient's time zone is the one a lead or postback gave, else every zone their phone
//! number's prefix may be in (libphonenumber's map, down to US area codes: the window must
//! hold in all of them), else the brand's. The zone database is compiled in (`jiff`'s
//! bundle): Lambda images may have no `/usr/share/zoneinfo`.

use std::collections::HashMap;
use std::fmt;
use std::sync::OnceLock;

use jiff::Timestamp;
use jiff::civil::{DateTime, Time};
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::values::{Invalid, PhoneE164};

/// A time of day, `HH:MM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct LocalTime {
    minutes: u16,
}

impl LocalTime {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let bad = || Invalid::new("invalid_format", "must be a time of day, HH:MM (24-hour)");
        let (h, m) = raw.trim().split_once(':').ok_or_else(bad)?;
        if h.is_empty() || h.len() > 2 || m.len() != 2 {
            return Err(bad());
        }
        let (h, m): (u16, u16) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
        if h > 23 || m > 59 {
            return Err(bad());
        }
        Ok(Self { minutes: h * 60 + m })
    }
    pub const fn hm(h: u16, m: u16) -> Self {
        Self { minutes: h * 60 + m }
    }
    fn civil(self) -> Time {
        Time::constant((self.minutes / 60) as i8, (self.minutes % 60) as i8, 0, 0)
    }
    fn of(t: Time) -> Self {
        Self {
            minutes: t.hour() as u16 * 60 + t.minute() as u16,
        }
    }
}

impl fmt::Display for LocalTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.minutes / 60, self.minutes % 60)
    }
}

impl TryFrom<String> for LocalTime {
    type Error = String;
    fn try_from(raw: String) -> Result<Self, String> {
        Self::parse(&raw).map_err(|e| e.message)
    }
}

impl From<LocalTime> for String {
    fn from(t: LocalTime) -> String {
        t.to_string()
    }
}

/// Quiet from `from` until `to`, local time; wraps midnight when `from` is later than `to`
/// (`21:00`–`08:00`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuietWindow {
    pub from: LocalTime,
    pub to: LocalTime,
}

impl QuietWindow {
    /// TCPA's: no SMS before 08:00 or after 21:00.
    pub const TCPA: Self = Self {
        from: LocalTime::hm(21, 0),
        to: LocalTime::hm(8, 0),
    };
    pub fn validate(&self) -> Result<(), Invalid> {
        if self.from == self.to {
            return Err(Invalid::new("invalid_value", "from and to must differ"));
        }
        Ok(())
    }
    fn is_quiet(&self, t: LocalTime) -> bool {
        if self.from < self.to {
            self.from <= t && t < self.to
        } else {
            t >= self.from || t < self.to
        }
    }
}

/// An IANA time zone name known to the compiled-in database.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ZoneName(String);

impl ZoneName {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let raw = raw.trim();
        match TimeZone::get(raw) {
            Ok(tz) if raw.len() <= 64 => Ok(Self(tz.iana_name().unwrap_or(raw).to_owned())),
            _ => Err(Invalid::new(
                "invalid_value",
                "must be an IANA time zone name, such as America/Lima",
            )),
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    fn zone(&self) -> Option<TimeZone> {
        TimeZone::get(&self.0).ok()
    }
}

impl TryFrom<String> for ZoneName {
    type Error = String;
    fn try_from(raw: String) -> Result<Self, String> {
        Self::parse(&raw).map_err(|e| e.message)
    }
}

impl From<ZoneName> for String {
    fn from(z: ZoneName) -> String {
        z.0
    }
}

impl fmt::Display for ZoneName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// libphonenumber's `resources/timezones/map_data.txt` (Apache 2.0): number prefix (country
/// code and following digits) → the zones numbers under it may be in.
const PHONE_ZONES: &str = include_str!("../data/phone_timezones.txt");

fn phone_zone_map() -> &'static HashMap<&'static str, Vec<&'static str>> {
    static MAP: OnceLock<HashMap<&'static str, Vec<&'static str>>> = OnceLock::new();
    MAP.get_or_init(|| {
        PHONE_ZONES
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split_once('|'))
            .map(|(prefix, zones)| (prefix, zones.split('&').collect()))
            .collect()
    })
}

/// The zones a phone number may be in: the longest matching prefix's.
pub fn phone_zones(phone: &PhoneE164) -> Vec<ZoneName> {
    let digits = phone.as_str().trim_start_matches('+');
    let map = phone_zone_map();
    (1..=digits.len().min(10))
        .rev()
        .find_map(|n| map.get(&digits[..n]))
        .map(|zones| zones.iter().filter_map(|z| ZoneName::parse(z).ok()).collect())
        .unwrap_or_default()
}

/// The zones quiet hours must hold in: the customer's own, else the phone number's, else
/// `fallback`.
pub fn recipient_zones(own: Option<&ZoneName>, phone: Option<&PhoneE164>, fallback: &ZoneName) -> Vec<ZoneName> {
    if let Some(z) = own {
        return vec![z.clone()];
    }
    let zones = phone.map(phone_zones).unwrap_or_default();
    if zones.is_empty() {
        vec![fallback.clone()]
    } else {
        zones
    }
}

fn to_jiff(t: OffsetDateTime) -> Timestamp {
    Timestamp::from_nanosecond(t.unix_timestamp_nanos()).expect("a time this program handles fits jiff's range")
}

fn from_jiff(t: Timestamp) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(t.as_nanosecond()).expect("jiff's range fits time's")
}

/// If `t` is quiet in `zone`, the instant quiet time ends there.
fn opening(zone: &TimeZone, window: QuietWindow, t: OffsetDateTime) -> Option<OffsetDateTime> {
    let local = to_jiff(t).to_zoned(zone.clone());
    let now = LocalTime::of(local.time());
    if !window.is_quiet(now) {
        return None;
    }
    let mut day = local.date();
    if window.from > window.to && now >= window.from {
        day = day.tomorrow().ok()?;
    }
    let open = zone
        .to_ambiguous_zoned(DateTime::from_parts(day, window.to.civil()))
        .compatible()
        .ok()?;
    let open = from_jiff(open.timestamp()).max(t + Duration::seconds(1));
    if LocalTime::of(to_jiff(open).to_zoned(zone.clone()).time()) == window.to {
        return Some(open);
    }
    // `to` fell in a DST gap and `compatible` went past it: the window opened with the
    // clock change, somewhere in (t, open]. Quiet until then, so bisect to the second.
    let (mut quiet, mut open) = (t, open);
    while open - quiet > Duration::seconds(1) {
        let mid = quiet + (open - quiet) / 2;
        if window.is_quiet(LocalTime::of(to_jiff(mid).to_zoned(zone.clone()).time())) {
            quiet = mid;
        } else {
            open = mid;
        }
    }
    Some(open)
}

/// Whether `t` is outside quiet time in every zone.
pub fn allowed(zones: &[ZoneName], window: QuietWindow, t: OffsetDateTime) -> bool {
    zones
        .iter()
        .filter_map(ZoneName::zone)
        .all(|z| opening(&z, window, t).is_none())
}

/// The first moment at or after `now` that is outside quiet time in every zone; `None` if
/// the zones share no open time within three days.
pub fn next_open(zones: &[ZoneName], window: QuietWindow, now: OffsetDateTime) -> Option<OffsetDateTime> {
    let zones: Vec<TimeZone> = zones.iter().filter_map(ZoneName::zone).collect();
    let mut t = now;
    while t < now + Duration::days(3) {
        match zones.iter().find_map(|z| opening(z, window, t)) {
            None => return Some(t),
            Some(later) => t = later,
        }
    }
    None
}

/// Up to ten minutes, fixed per message: a whole audience deferred to 08:00 does not reach
/// the provider in one second.
pub fn spread(message_id: &str) -> Duration {
    let h = message_id
        .bytes()
        .fold(0u32, |acc, b| acc.wrapping_mul(31).wrapping_add(u32::from(b)));
    Duration::seconds(i64::from(h % 600))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::values::PhoneRegion;
    use proptest::prelude::*;
    use time::macros::datetime;

    fn zone(name: &str) -> ZoneName {
        ZoneName::parse(name).unwrap()
    }
    fn phone(raw: &str) -> PhoneE164 {
        PhoneE164::parse(raw, PhoneRegion::parse("US").unwrap()).unwrap()
    }

    #[test]
    fn phone_prefixes_map_to_zones() {
        assert_eq!(phone_zones(&phone("+51987654321")), vec![zone("America/Lima")]);
        assert_eq!(phone_zones(&phone("+12015550123")), vec![zone("America/New_York")]);
        let spain = phone_zones(&phone("+34612345678"));
        assert!(spain.contains(&zone("Europe/Madrid")), "{spain:?}");
        let fallback = zone("UTC");
        assert_eq!(
            recipient_zones(Some(&zone("Europe/Madrid")), Some(&phone("+51987654321")), &fallback),
            vec![zone("Europe/Madrid")]
        );
        assert_eq!(recipient_zones(None, None, &fallback), vec![fallback.clone()]);
    }

    #[test]
    fn zone_names_and_times_validate() {
        assert!(ZoneName::parse("America/Lima").is_ok());
        assert!(ZoneName::parse("Mars/Olympus").is_err());
        assert_eq!(LocalTime::parse("08:00").unwrap(), LocalTime::hm(8, 0));
        for bad in ["8", "24:00", "08:60", "8:0", "x"] {
            assert!(LocalTime::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn lima_at_night_opens_at_eight_local() {
        let lima = [zone("America/Lima")];
        // 22:30 in Lima (UTC-5) is 03:30 UTC the next day.
        let night = datetime!(2026-11-23 03:30 UTC);
        assert!(!allowed(&lima, QuietWindow::TCPA, night));
        assert_eq!(
            next_open(&lima, QuietWindow::TCPA, night),
            Some(datetime!(2026-11-23 13:00 UTC))
        );
        let noon = datetime!(2026-11-23 17:00 UTC);
        assert_eq!(next_open(&lima, QuietWindow::TCPA, noon), Some(noon));
    }

    #[test]
    fn dst_moves_the_opening_in_utc() {
        let ny = [zone("America/New_York")];
        // 2026-03-08: clocks go forward at 02:00; 08:00 EDT is 12:00 UTC (13:00 the day before).
        assert_eq!(
            next_open(&ny, QuietWindow::TCPA, datetime!(2026-03-08 06:00 UTC)),
            Some(datetime!(2026-03-08 12:00 UTC))
        );
        assert_eq!(
            next_open(&ny, QuietWindow::TCPA, datetime!(2026-03-07 06:00 UTC)),
            Some(datetime!(2026-03-07 13:00 UTC))
        );
    }

    #[test]
    fn several_zones_must_all_be_open() {
        let zones = [zone("America/New_York"), zone("America/Los_Angeles")];
        // 07:00 in Los Angeles is 10:00 in New York: wait for 08:00 in Los Angeles.
        let t = datetime!(2026-11-23 15:00 UTC);
        assert_eq!(
            next_open(&zones, QuietWindow::TCPA, t),
            Some(datetime!(2026-11-23 16:00 UTC))
        );
        // Open 08:00-12:00 in zones thirteen hours apart: never open in both.
        let apart = [zone("America/New_York"), zone("Asia/Shanghai")];
        let strict = QuietWindow {
            from: LocalTime::hm(12, 0),
            to: LocalTime::hm(8, 0),
        };
        assert_eq!(next_open(&apart, strict, t), None);
    }

    const ZONES: [&str; 8] = [
        "America/New_York",
        "Europe/Madrid",
        "America/Lima",
        "Australia/Lord_Howe",
        "Asia/Kolkata",
        "America/Sao_Paulo",
        "Pacific/Chatham",
        "America/St_Johns",
    ];

    proptest! {
        /// Whatever the zones, time and window, the time given is open in every zone, and in
        /// one zone it is the very first open minute.
        #[test]
        fn next_open_is_open(
            picks in prop::collection::vec(0usize..ZONES.len(), 1..4),
            // Any minute of 2025-2028, which spans every DST transition of those years.
            minute in 0i64..(4 * 366 * 24 * 60),
            from in 0u16..(24 * 60),
            to in 0u16..(24 * 60),
        ) {
            prop_assume!(from != to);
            let window = QuietWindow { from: LocalTime { minutes: from }, to: LocalTime { minutes: to } };
            let zones: Vec<ZoneName> = picks.iter().map(|i| zone(ZONES[*i])).collect();
            let now = datetime!(2025-01-01 00:00 UTC) + Duration::minutes(minute);
            if let Some(t) = next_open(&zones, window, now) {
                prop_assert!(t >= now);
                prop_assert!(allowed(&zones, window, t));
                if zones.len() == 1 && t > now {
                    prop_assert!(!allowed(&zones, window, t - Duration::minutes(1)));
                }
            } else {
                prop_assert!(zones.len() > 1);
            }
        }
    }
}
