//! Every key string of the single table, built here and nowhere else.
//!
//! | entity      | PK                       | SK        | GSI1 (timeline)                  | GSI2 (recent lists)          |
//! |-------------|--------------------------|-----------|----------------------------------|------------------------------|
//! | customer    | `CUSTOMER#<id>`          | `PROFILE` |                                  |                              |
//! | identifier  | `IDENT#<KIND>#<value>`   | `IDENT`   |                                  |                              |
//! | click       | `CLICK#<clickId>`        | `CLICK`   | `CUSTOMER#<id>` / `<ts>#CLICK#…` | `FEED#CLICK#<day>` / `<ts>#…`|
//! | lead        | `LEAD#<leadId>`          | `LEAD`    | `CUSTOMER#<id>` / `<ts>#LEAD#…`  | `FEED#LEAD#<day>` / `<ts>#…` |
//! | event       | `EVENT#<eventId>`        | `EVENT`   | `CUSTOMER#<id>` / `<ts>#EVENT#…` | `FEED#EVENT#<day>` / `<ts>#…`|
//! | merge       | `MERGE#<mergeId>`        | `MERGE`   | `CUSTOMER#<id>` / `<ts>#MERGE#…` |                              |
//! | dedupe      | `DEDUPE#<key>`           | `DEDUPE`  |                                  |                              |
//! | brand stats | `BRAND#<brand>`          | `STATS`   |                                  |                              |

use crm_core::identity::Identifier;
use crm_core::values::{Brand, CustomerId, format_ts};
use time::OffsetDateTime;

pub const PK: &str = "PK";
pub const SK: &str = "SK";
pub const GSI1: &str = "GSI1";
pub const GSI1PK: &str = "GSI1PK";
pub const GSI1SK: &str = "GSI1SK";
pub const GSI2: &str = "GSI2";
pub const GSI2PK: &str = "GSI2PK";
pub const GSI2SK: &str = "GSI2SK";
/// The table's TTL attribute (epoch seconds).
pub const TTL: &str = "expiresAt";
/// Every item says what it is.
pub const ENTITY: &str = "entityType";

pub const PROFILE_SK: &str = "PROFILE";
pub const IDENT_SK: &str = "IDENT";
pub const DEDUPE_SK: &str = "DEDUPE";
pub const STATS_SK: &str = "STATS";
/// Read by the health check; never written.
pub const HEALTH_PK: &str = "HEALTH";

/// Activity kinds kept on the timeline and in the recent lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activity {
    Click,
    Lead,
    Event,
    Merge,
}

impl Activity {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Click => "CLICK",
            Self::Lead => "LEAD",
            Self::Event => "EVENT",
            Self::Merge => "MERGE",
        }
    }
}

pub fn customer_pk(id: &CustomerId) -> String {
    format!("CUSTOMER#{id}")
}

pub fn identifier_pk(identifier: &Identifier) -> String {
    format!("IDENT#{}", identifier.tag())
}

/// The record's own key: `CLICK#<clickId>`, `LEAD#<id>` …; SK is the kind itself.
pub fn activity_pk(kind: Activity, id: &str) -> String {
    format!("{}#{id}", kind.as_str())
}

pub fn timeline_sk(at: OffsetDateTime, kind: Activity, id: &str) -> String {
    format!("{}#{}#{id}", format_ts(at), kind.as_str())
}

pub fn feed_pk(kind: Activity, day: &str) -> String {
    format!("FEED#{}#{day}", kind.as_str())
}

pub fn feed_sk(at: OffsetDateTime, id: &str) -> String {
    format!("{}#{id}", format_ts(at))
}

pub fn dedupe_pk(key: &str) -> String {
    format!("DEDUPE#{key}")
}

pub fn brand_pk(brand: &Brand) -> String {
    format!("BRAND#{brand}")
}

/// Attribute names inside profile maps and brand counters.
pub fn journey_attr(brand: &Brand, milestone: crm_core::journey::Milestone) -> String {
    format!("{brand}#{}", milestone.as_str())
}

pub fn brand_count_attr(event_type: &str) -> String {
    format!("count#{event_type}")
}

pub fn brand_revenue_attr(currency: &str) -> String {
    format!("revenue#{currency}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crm_core::values::{ClickId, Email};
    use time::macros::datetime;

    #[test]
    fn keys_have_their_documented_shape() {
        let id = CustomerId::parse("0192f0c1-7b7e-7cc0-9b1a-3c3f2d6e8a10").unwrap();
        assert_eq!(customer_pk(&id), "CUSTOMER#0192f0c1-7b7e-7cc0-9b1a-3c3f2d6e8a10");
        let email = Identifier::Email(Email::parse("A@B.co").unwrap());
        assert_eq!(identifier_pk(&email), "IDENT#EMAIL#a@b.co");
        let click = Identifier::ClickId(ClickId::parse("TEST_CLICK_001").unwrap());
        assert_eq!(identifier_pk(&click), "IDENT#CLICK_ID#TEST_CLICK_001");
        assert_eq!(activity_pk(Activity::Click, "TEST_CLICK_001"), "CLICK#TEST_CLICK_001");
        let at = datetime!(2026-11-22 02:25:01.5 UTC);
        assert_eq!(
            timeline_sk(at, Activity::Lead, "l1"),
            "2026-11-22T02:25:01.500Z#LEAD#l1"
        );
        assert_eq!(feed_pk(Activity::Event, "2026-11-22"), "FEED#EVENT#2026-11-22");
        assert_eq!(feed_sk(at, "e1"), "2026-11-22T02:25:01.500Z#e1");
        assert_eq!(dedupe_pk("TXN#rushbet#T1"), "DEDUPE#TXN#rushbet#T1");
        assert_eq!(brand_pk(&Brand::parse("rushbet").unwrap()), "BRAND#rushbet");
    }

    #[test]
    fn timeline_keys_sort_newest_last_across_kinds() {
        let a = timeline_sk(datetime!(2026-11-22 02:00 UTC), Activity::Merge, "z");
        let b = timeline_sk(datetime!(2026-11-22 03:00 UTC), Activity::Click, "a");
        assert!(a < b);
    }
}
