//! The activity records kept for the timeline and the recent lists.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::input::ClickDetails;
use crate::values::CustomerId;

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
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub subs: std::collections::BTreeMap<String, String>,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

impl ClickRecord {
    pub fn new(
        click_id: String,
        customer_id: CustomerId,
        brand: String,
        device_id: Option<String>,
        d: ClickDetails,
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
    #[serde(with = "time::serde::rfc3339")]
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
    #[serde(with = "time::serde::rfc3339")]
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
    pub absorbed_identifiers: std::collections::BTreeMap<String, Vec<String>>,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}
