//! Redtrack's click log (`GET /tracks`) as clicks: which window a run imports, and how a
//! row becomes the fields of a click (`ClickCommand::parse` does the rest, as for any
//! click).

use serde_json::{Map, Value};
use time::{Date, Duration, OffsetDateTime};

use crate::input::Fields;

/// How far each run reaches back before where the last one stopped: Redtrack may list a
/// click a little after it happened.
pub const OVERLAP: Duration = Duration::minutes(30);
/// How far the first run reaches back.
pub const FIRST_RUN: Duration = Duration::days(1);
/// The most one run covers: after an outage the import catches up a few hours per run
/// instead of attempting a window it cannot finish.
pub const MAX_SPAN: Duration = Duration::hours(6);
/// Rows per page asked for (Redtrack allows up to 10,000).
pub const PER_PAGE: u32 = 1_000;

/// The span one run imports: from shortly before the last run's end to now, at most
/// `MAX_SPAN`; the first run, the last day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub from: OffsetDateTime,
    pub to: OffsetDateTime,
}

impl Window {
    pub fn after(last_until: Option<OffsetDateTime>, now: OffsetDateTime) -> Self {
        match last_until {
            Some(until) => {
                let from = (until - OVERLAP).min(now);
                Self {
                    from,
                    to: now.min(from + MAX_SPAN),
                }
            }
            None => Self {
                from: now - FIRST_RUN,
                to: now,
            },
        }
    }
    /// The days to ask Redtrack for (its filter is by day, UTC).
    pub fn days(&self) -> (Date, Date) {
        (self.from.date(), self.to.date())
    }
}

/// A row's fields as a click: Redtrack's names mapped to ours (`id` is the click id,
/// `track_time` when it happened); the rest go through the click's own aliases.
pub fn click_fields(row: &Map<String, Value>) -> Fields {
    let text = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    let mut fields = Fields::new();
    for (ours, theirs) in [
        ("clickId", "id"),
        ("occurredAt", "track_time"),
        ("ip", "ip"),
        ("userAgent", "user_agent"),
        ("referrer", "referer"),
        ("landingPage", "landing"),
        ("campaign", "campaign"),
        ("cmpid", "campaign_id"),
        ("source", "rt_source"),
        ("medium", "rt_medium"),
        ("ref_id", "ref_id"),
    ] {
        if let Some(v) = row.get(theirs).and_then(text) {
            fields.insert(ours, v);
        }
    }
    if !fields.contains("source")
        && let Some(v) = row.get("source").and_then(text)
    {
        fields.insert("source", v);
    }
    for n in 1..=20 {
        let key = format!("sub{n}");
        if let Some(v) = row.get(&key).and_then(text) {
            fields.insert(key, v);
        }
    }
    fields
}

/// When a row's click happened, if it says.
pub fn track_time(row: &Map<String, Value>) -> Option<OffsetDateTime> {
    let raw = row.get("track_time")?.as_str()?;
    crate::input::parse_moment(raw).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::{ClickCommand, Defaults};
    use crate::values::{Currency, PhoneRegion};
    use time::macros::datetime;

    #[test]
    fn a_run_overlaps_the_last_one_and_the_first_reaches_a_day_back() {
        let now = datetime!(2026-12-03 00:10 UTC);
        let w = Window::after(Some(datetime!(2026-12-03 00:05 UTC)), now);
        assert_eq!((w.from, w.to), (datetime!(2026-12-02 23:35 UTC), now));
        assert_eq!(w.days(), (datetime!(2026-12-02 0:00 UTC).date(), now.date()));
        assert_eq!(Window::after(None, now).from, now - Duration::days(1));
        // Behind by a day (an outage): six hours per run until it catches up.
        let behind = Window::after(Some(now - Duration::days(1)), now);
        assert_eq!(behind.to, now - Duration::days(1) - OVERLAP + MAX_SPAN);
    }

    #[test]
    fn a_redtrack_row_is_a_click_with_its_values() {
        let row: Map<String, Value> = serde_json::from_value(serde_json::json!({
            "id": "6571f2c0a1b2c3d4e5f60718", "track_time": "2026-12-02 10:15:00", "ip": "203.0.113.7",
            "user_agent": "Mozilla/5.0", "referer": "https://instagram.com/", "campaign": "Spring",
            "campaign_id": "64f0aa", "source": "Instagram", "sub1": "bio", "sub20": "fb.1.17.abc",
            "ref_id": "src-9", "country": "PE", "fraud": 0
        }))
        .unwrap();
        let defaults = Defaults {
            brand: None,
            currency: Currency::parse("USD").unwrap(),
            phone_region: PhoneRegion::parse("US").unwrap(),
        };
        let c = ClickCommand::parse(&click_fields(&row), &defaults).unwrap();
        assert_eq!(c.click_id.as_str(), "6571f2c0a1b2c3d4e5f60718");
        assert_eq!(c.occurred_at, Some(datetime!(2026-12-02 10:15 UTC)));
        assert_eq!(c.details.ip.as_deref(), Some("203.0.113.7"));
        assert_eq!(c.details.source.as_deref(), Some("Instagram"));
        assert_eq!(c.details.subs["sub20"], "fb.1.17.abc");
        assert_eq!(c.details.params["cmpid"], "64f0aa");
        assert_eq!(track_time(&row), c.occurred_at);
    }
}
