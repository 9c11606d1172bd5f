//! The activity records kept for the timeline and the recent lists. They serialise as the
//! admin API shows them (camelCase, fixed-width timestamps); the store adds its keys.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::attribution::Attribution;
use crate::input::ClickDetails;
use crate::message::Message;
use crate::stats::CountedRow;
use crate::values::CustomerId;

/// What a record counted: metric name → amount.
pub type Counts = BTreeMap<String, Decimal>;

/// Who wrote a record: the source whose key the request carried, the address it came
/// from, and whether it is test traffic. Every click, lead and event keeps it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Provenance {
    pub source_id: Option<String>,
    pub client_ip: Option<String>,
    pub test: bool,
}

/// The kinds of record kept on the timeline (and, but for merges, in the recent lists).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RecordKind {
    Click,
    Lead,
    Event,
    Merge,
    Message,
    /// A change of a customer's primary address (timeline only).
    Contact,
}

impl RecordKind {
    pub const ALL: [RecordKind; 6] = [
        Self::Click,
        Self::Lead,
        Self::Event,
        Self::Merge,
        Self::Message,
        Self::Contact,
    ];

    /// The kind's name in keys and `entityType`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Click => "CLICK",
            Self::Lead => "LEAD",
            Self::Event => "EVENT",
            Self::Merge => "MERGE",
            Self::Message => "MESSAGE",
            Self::Contact => "CONTACT",
        }
    }

    /// The kind's plural, as erasure and removal reports count records (`clicks`, …).
    pub fn plural(self) -> &'static str {
        match self {
            Self::Click => "clicks",
            Self::Lead => "leads",
            Self::Event => "events",
            Self::Merge => "merges",
            Self::Message => "messages",
            Self::Contact => "contacts",
        }
    }

    /// The kind named `name` in keys and `entityType`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// Whether the kind has a recent list (feeds by day); merges and contact changes are on
    /// the customer's timeline only.
    pub fn has_feed(self) -> bool {
        !matches!(self, Self::Merge | Self::Contact)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClickRecord {
    pub click_id: String,
    pub customer_id: CustomerId,
    pub brand: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub medium: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub landing_page: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referrer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub influencer_id: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub subs: BTreeMap<String, String>,
    /// The tracker's campaign id, the traffic source's and ad networks' click ids, the
    /// other UTMs (`crm_core::input::alias::PARAMS`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, String>,
    /// The tracked link's visit this click came through (`sub10`), which was counted as
    /// the click: this one is not counted again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visit_id: Option<String>,
    /// Set once, by the attribution function, when the record is counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribution: Option<Attribution>,
    /// What the record added to the stats (metric name → amount), set with `attribution`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counted: Option<Counts>,
    /// The source (`sourceId`) whose key wrote it, and the client address API Gateway saw;
    /// absent when ingest authentication is off and no key was sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ip: Option<String>,
    /// Test traffic: stored and shown, never counted, its messages never sent.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub test: bool,
    /// Identifiers (as `TYPE#value`) this request claimed for a customer whose profile was
    /// full (`crm_core::plan::MAX_LISTED_IDENTIFIERS`): kept here so erasure finds them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unlisted_identifiers: Vec<String>,
    /// The counter deltas the record added when counted (what voiding takes back).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub counted_rows: Vec<CountedRow>,
    /// Voided (`POST /api/sources/{id}/void`): shown, no longer counted.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::values::ts::option")]
    pub voided: Option<OffsetDateTime>,
    /// Its person was erased: the personal attributes are gone, and stay gone.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::values::ts::option")]
    pub erased_at: Option<OffsetDateTime>,
    #[serde(with = "crate::values::ts")]
    pub at: OffsetDateTime,
}

/// What a later report of a recorded click (Redtrack's click log after the tag or the link)
/// adds to it: the descriptive fields it lacked. Never what it was counted under (brand,
/// campaign, source, influencer, sub-ids): those rows are written once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClickFill {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub landing_page: Option<String>,
    pub referrer: Option<String>,
    /// The click's parameters with the new ones added, when there are new ones.
    pub params: Option<BTreeMap<String, String>>,
}

impl ClickRecord {
    /// What `details` adds to this click, if anything; nothing to an erased click.
    pub fn fill_from(&self, details: &ClickDetails) -> Option<ClickFill> {
        if self.erased_at.is_some() {
            return None;
        }
        let lacking = |ours: &Option<String>, theirs: &Option<String>| {
            if ours.is_none() { theirs.clone() } else { None }
        };
        let mut params = self.params.clone();
        for (k, v) in &details.params {
            params.entry(k.clone()).or_insert_with(|| v.clone());
        }
        let fill = ClickFill {
            ip: lacking(&self.ip, &details.ip),
            user_agent: lacking(&self.user_agent, &details.user_agent),
            landing_page: lacking(&self.landing_page, &details.landing_page),
            referrer: lacking(&self.referrer, &details.referrer),
            params: (params != self.params).then_some(params),
        };
        (fill != ClickFill::default()).then_some(fill)
    }

    pub fn new(
        click_id: String,
        customer_id: CustomerId,
        brand: String,
        device_id: Option<String>,
        d: ClickDetails,
        provenance: &Provenance,
        at: OffsetDateTime,
    ) -> Self {
        Self {
            click_id,
            customer_id,
            brand,
            device_id,
            ip: d.ip,
            user_agent: d.user_agent,
            campaign: d.campaign,
            source: d.source,
            medium: d.medium,
            landing_page: d.landing_page,
            referrer: d.referrer,
            influencer_id: d.influencer_id,
            subs: d.subs,
            params: d.params,
            visit_id: None,
            attribution: None,
            counted: None,
            source_id: provenance.source_id.clone(),
            client_ip: provenance.client_ip.clone(),
            test: provenance.test,
            unlisted_identifiers: Vec::new(),
            counted_rows: Vec::new(),
            voided: None,
            erased_at: None,
            at,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LeadRecord {
    pub lead_id: String,
    pub customer_id: CustomerId,
    pub brand: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub click_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign: Option<String>,
    /// Set once, by the attribution function, when the record is counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribution: Option<Attribution>,
    /// What the record added to the stats (metric name → amount), set with `attribution`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counted: Option<Counts>,
    /// The source (`sourceId`) whose key wrote it, and the client address API Gateway saw;
    /// absent when ingest authentication is off and no key was sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ip: Option<String>,
    /// Test traffic: stored and shown, never counted, its messages never sent.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub test: bool,
    /// Identifiers (as `TYPE#value`) this request claimed for a customer whose profile was
    /// full (`crm_core::plan::MAX_LISTED_IDENTIFIERS`): kept here so erasure finds them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unlisted_identifiers: Vec<String>,
    /// The counter deltas the record added when counted (what voiding takes back).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub counted_rows: Vec<CountedRow>,
    /// Voided (`POST /api/sources/{id}/void`): shown, no longer counted.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::values::ts::option")]
    pub voided: Option<OffsetDateTime>,
    #[serde(with = "crate::values::ts")]
    pub at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventRecord {
    pub event_id: String,
    pub customer_id: CustomerId,
    pub brand: String,
    pub event_type: String,
    /// Exact decimal as a string, never a float.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub click_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// When the operator says it happened, if it said so (late, batched postbacks).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::values::ts::option")]
    pub occurred_at: Option<OffsetDateTime>,
    /// The kinds of identifier the postback carried (`USER_ID`, `EMAIL` …): how it was tied
    /// to its customer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identified_by: Vec<String>,
    /// Set once, by the attribution function, when the record is counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribution: Option<Attribution>,
    /// What the record added to the stats (metric name → amount), set with `attribution`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counted: Option<Counts>,
    /// The source (`sourceId`) whose key wrote it, and the client address API Gateway saw;
    /// absent when ingest authentication is off and no key was sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ip: Option<String>,
    /// Test traffic: stored and shown, never counted, its messages never sent.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub test: bool,
    /// Identifiers (as `TYPE#value`) this request claimed for a customer whose profile was
    /// full (`crm_core::plan::MAX_LISTED_IDENTIFIERS`): kept here so erasure finds them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unlisted_identifiers: Vec<String>,
    /// The counter deltas the record added when counted (what voiding takes back).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub counted_rows: Vec<CountedRow>,
    /// Voided (`POST /api/sources/{id}/void`): shown, no longer counted.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::values::ts::option")]
    pub voided: Option<OffsetDateTime>,
    #[serde(with = "crate::values::ts")]
    pub at: OffsetDateTime,
}

/// The audit record of a merge: enough to explain it and to undo it later.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MergeRecord {
    pub merge_id: String,
    /// The surviving customer.
    pub customer_id: CustomerId,
    pub absorbed: Vec<CustomerId>,
    /// What linked them: the request kind and the identifier types it carried.
    pub reason: String,
    /// Identifiers each absorbed customer had (as `KIND#value`), to undo the merge.
    pub absorbed_identifiers: BTreeMap<String, Vec<String>>,
    #[serde(with = "crate::values::ts")]
    pub at: OffsetDateTime,
}

/// An explicit change of a customer's primary address on a channel (an admin call).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContactRecord {
    pub change_id: String,
    pub customer_id: CustomerId,
    pub channel: crate::definition::Channel,
    /// The new primary address.
    pub address: String,
    /// The primary before the change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<String>,
    /// Who made the change.
    pub by: String,
    #[serde(with = "crate::values::ts")]
    pub at: OffsetDateTime,
}

/// Any record on a customer's timeline, tagged with its kind as the admin API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Activity {
    Click(ClickRecord),
    Lead(LeadRecord),
    Event(EventRecord),
    Merge(MergeRecord),
    Message(Box<Message>),
    Contact(ContactRecord),
}

impl Activity {
    pub fn kind(&self) -> RecordKind {
        match self {
            Self::Click(_) => RecordKind::Click,
            Self::Lead(_) => RecordKind::Lead,
            Self::Event(_) => RecordKind::Event,
            Self::Merge(_) => RecordKind::Merge,
            Self::Message(_) => RecordKind::Message,
            Self::Contact(_) => RecordKind::Contact,
        }
    }
    /// The source whose key wrote it.
    pub fn source_id(&self) -> Option<&str> {
        match self {
            Self::Click(r) => r.source_id.as_deref(),
            Self::Lead(r) => r.source_id.as_deref(),
            Self::Event(r) => r.source_id.as_deref(),
            Self::Merge(_) | Self::Message(_) | Self::Contact(_) => None,
        }
    }
    /// Voided: shown, no longer counted (and not counted again).
    pub fn is_voided(&self) -> bool {
        match self {
            Self::Click(r) => r.voided.is_some(),
            Self::Lead(r) => r.voided.is_some(),
            Self::Event(r) => r.voided.is_some(),
            Self::Merge(_) | Self::Message(_) | Self::Contact(_) => false,
        }
    }
    /// What counting the record added (empty until counted, and for merges and messages).
    pub fn counted_rows(&self) -> &[CountedRow] {
        match self {
            Self::Click(r) => &r.counted_rows,
            Self::Lead(r) => &r.counted_rows,
            Self::Event(r) => &r.counted_rows,
            Self::Merge(_) | Self::Message(_) | Self::Contact(_) => &[],
        }
    }
    /// Test traffic (a test source's, or a request marked `test`): never counted.
    pub fn is_test(&self) -> bool {
        match self {
            Self::Click(r) => r.test,
            Self::Lead(r) => r.test,
            Self::Event(r) => r.test,
            Self::Merge(_) | Self::Message(_) | Self::Contact(_) => false,
        }
    }
    /// The customer it was recorded for.
    pub fn customer(&self) -> &CustomerId {
        match self {
            Self::Click(r) => &r.customer_id,
            Self::Lead(r) => &r.customer_id,
            Self::Event(r) => &r.customer_id,
            Self::Merge(r) => &r.customer_id,
            Self::Message(m) => &m.customer_id,
            Self::Contact(r) => &r.customer_id,
        }
    }
    /// The record's own id (click id, lead id, event id, merge id).
    pub fn id(&self) -> &str {
        match self {
            Self::Click(r) => &r.click_id,
            Self::Lead(r) => &r.lead_id,
            Self::Event(r) => &r.event_id,
            Self::Merge(r) => &r.merge_id,
            Self::Message(m) => &m.message_id,
            Self::Contact(r) => &r.change_id,
        }
    }
    pub fn at(&self) -> OffsetDateTime {
        match self {
            Self::Click(r) => r.at,
            Self::Lead(r) => r.at,
            Self::Event(r) => r.at,
            Self::Merge(r) => r.at,
            Self::Message(m) => m.created_at,
            Self::Contact(r) => r.at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recorded(d: ClickDetails) -> ClickRecord {
        let at = OffsetDateTime::UNIX_EPOCH;
        ClickRecord::new(
            "rt1".into(),
            CustomerId::parse("01a2b3c4-0000-7000-8000-000000000001").unwrap(),
            "rushbet".into(),
            None,
            d,
            &Provenance::default(),
            at,
        )
    }

    #[test]
    fn a_later_report_fills_what_the_click_lacked_and_changes_nothing_it_had() {
        let click = recorded(ClickDetails {
            ip: Some("198.51.100.7".into()),
            campaign: Some("Spring".into()),
            params: BTreeMap::from([("fbclid".into(), "IwAR0".into())]),
            ..ClickDetails::default()
        });
        let log = ClickDetails {
            ip: Some("203.0.113.9".into()),
            user_agent: Some("Mozilla/5.0".into()),
            landing_page: Some("https://lp.example/".into()),
            campaign: Some("Other".into()),
            params: BTreeMap::from([("fbclid".into(), "other".into()), ("ref_id".into(), "r9".into())]),
            ..ClickDetails::default()
        };
        let fill = click.fill_from(&log).expect("something to add");
        assert_eq!(fill.ip, None, "the click's own address stays");
        assert_eq!(fill.user_agent.as_deref(), Some("Mozilla/5.0"));
        assert_eq!(fill.landing_page.as_deref(), Some("https://lp.example/"));
        assert_eq!(
            fill.params,
            Some(BTreeMap::from([
                ("fbclid".into(), "IwAR0".into()),
                ("ref_id".into(), "r9".into())
            ]))
        );
        let mut complete = click.clone();
        complete.user_agent = fill.user_agent;
        complete.landing_page = fill.landing_page;
        complete.params = fill.params.unwrap();
        assert_eq!(complete.fill_from(&log), None, "nothing left to add");
        complete.user_agent = None;
        complete.erased_at = Some(OffsetDateTime::UNIX_EPOCH);
        assert_eq!(complete.fill_from(&log), None, "an erased click gets nothing back");
    }
}
