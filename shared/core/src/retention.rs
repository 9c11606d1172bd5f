//! How long each kind of record is kept: DynamoDB's TTL deletes an item once its `removeAt`
//! (epoch seconds) has passed, within a few days. Lifetimes are configurable per kind
//! (`RETENTION_DAYS_*`); `None` keeps a kind for ever. Counters, brand settings and the
//! erasure and suppression lists are not records of a person's activity and are kept.

use time::{Duration, OffsetDateTime};

use crate::records::RecordKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Clicks (`RETENTION_DAYS_CLICKS`, default 395: a year and a month of attribution).
    pub clicks: Option<Duration>,
    /// Leads, merges and contact changes (`RETENTION_DAYS_LEADS`, default 730).
    pub leads: Option<Duration>,
    /// Conversions (`RETENTION_DAYS_EVENTS`, default 1825: five years of commission
    /// disputes).
    pub events: Option<Duration>,
    /// Messages with their bodies, from when they are final (`RETENTION_DAYS_MESSAGES`,
    /// default 395).
    pub messages: Option<Duration>,
    /// A person's send log per channel, from its last send (`RETENTION_DAYS_SEND_LOGS`,
    /// default 32; at least the longest frequency-cap window, 31 days).
    pub send_logs: Option<Duration>,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            clicks: Some(Duration::days(395)),
            leads: Some(Duration::days(730)),
            events: Some(Duration::days(1825)),
            messages: Some(Duration::days(395)),
            send_logs: Some(Duration::days(32)),
        }
    }
}

impl Retention {
    /// When a record of `kind` written at `at` is removed.
    pub fn record(&self, kind: RecordKind, at: OffsetDateTime) -> Option<OffsetDateTime> {
        let keep = match kind {
            RecordKind::Click => self.clicks,
            RecordKind::Lead | RecordKind::Merge | RecordKind::Contact => self.leads,
            RecordKind::Event => self.events,
            RecordKind::Message => self.messages,
        };
        keep.map(|d| at + d)
    }

    /// When a send log last written at `at` is removed.
    pub fn send_log(&self, at: OffsetDateTime) -> Option<OffsetDateTime> {
        self.send_logs.map(|d| at + d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn each_kind_keeps_its_own_lifetime_and_none_keeps_for_ever() {
        let at = datetime!(2026-12-01 10:00 UTC);
        let r = Retention::default();
        assert_eq!(r.record(RecordKind::Click, at), Some(at + Duration::days(395)));
        assert_eq!(r.record(RecordKind::Contact, at), Some(at + Duration::days(730)));
        assert_eq!(r.record(RecordKind::Event, at), Some(at + Duration::days(1825)));
        let forever = Retention { clicks: None, ..r };
        assert_eq!(forever.record(RecordKind::Click, at), None);
        assert_eq!(r.send_log(at), Some(at + Duration::days(32)));
    }
}
