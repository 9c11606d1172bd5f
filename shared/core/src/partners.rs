//! Influencers and campaigns: who brings the traffic, and under which name. Clicks name them
//! as trackers pass them on (an influencer id, a campaign name or id); a name that nobody
//! created yet still counts, and its entry is created and flagged `autoCreated`, so no click
//! is lost because a dashboard entry was missing.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::values::Invalid;

/// Longest id, name or handle kept.
pub const MAX_LEN: usize = 200;

/// An influencer or campaign id chosen by an operator: what trackers will send.
pub fn parse_id(raw: &str) -> Result<String, Invalid> {
    let v = raw.trim();
    let ok = !v.is_empty() && v.len() <= 64 && v.chars().all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c));
    if ok {
        Ok(v.to_owned())
    } else {
        Err(Invalid::new(
            "invalid_format",
            "must be 1 to 64 letters, digits, '-', '_', '.' or ':'",
        ))
    }
}

/// A display name or free-text field: cleaned, not empty, at most `MAX_LEN` characters.
pub fn parse_text(raw: &str) -> Result<String, Invalid> {
    let v = crate::values::clean_text(raw).trim().to_owned();
    if v.is_empty() {
        Err(Invalid::new("missing", "must not be empty"))
    } else if v.chars().count() > MAX_LEN {
        Err(Invalid::new("too_long", format!("longer than {MAX_LEN} characters")))
    } else {
        Ok(v)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Influencer {
    pub influencer_id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handle: Option<String>,
    /// Where they publish: youtube, instagram, tiktok …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// The deal, as the affiliate manager writes it ("CPA 50 USD", "30% revshare").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payout: Option<String>,
    /// Created because a click named it, not by an operator.
    #[serde(default)]
    pub auto_created: bool,
    #[serde(with = "crate::values::ts")]
    pub created_at: OffsetDateTime,
    #[serde(with = "crate::values::ts")]
    pub updated_at: OffsetDateTime,
    /// Archived: off the console's lists; still credited (a click naming it counts).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::values::ts::option")]
    pub archived_at: Option<OffsetDateTime>,
}

impl Influencer {
    /// The entry a click naming an unknown influencer creates.
    pub fn auto(id: &str, at: OffsetDateTime) -> Self {
        Self {
            influencer_id: id.to_owned(),
            name: id.to_owned(),
            handle: None,
            channel: None,
            payout: None,
            auto_created: true,
            created_at: at,
            updated_at: at,
            archived_at: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Campaign {
    pub campaign_id: String,
    /// Unique, compared without case: clicks name campaigns by it.
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brand: Option<String>,
    /// The influencer a click of this campaign is credited to when it names none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub influencer_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default)]
    pub auto_created: bool,
    #[serde(with = "crate::values::ts")]
    pub created_at: OffsetDateTime,
    #[serde(with = "crate::values::ts")]
    pub updated_at: OffsetDateTime,
    /// Archived: off the console's lists; still credited (a click naming it counts).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::values::ts::option")]
    pub archived_at: Option<OffsetDateTime>,
}

impl Campaign {
    /// The entry a click naming an unknown campaign creates. Its id comes from the name, so
    /// two functions creating it at once create the same one.
    pub fn auto(name: &str, brand: &str, influencer: Option<&str>, at: OffsetDateTime) -> Self {
        Self {
            campaign_id: auto_campaign_id(name),
            name: name.to_owned(),
            brand: Some(brand.to_owned()),
            influencer_id: influencer.map(ToOwned::to_owned),
            source: None,
            auto_created: true,
            created_at: at,
            updated_at: at,
            archived_at: None,
        }
    }
}

/// How campaign names are compared.
pub fn name_key(name: &str) -> String {
    name.trim().to_lowercase()
}

/// The id of an auto-created campaign: `cmp_` and 16 hex digits of its name's hash.
pub fn auto_campaign_id(name: &str) -> String {
    let digest = Sha256::digest(name_key(name).as_bytes());
    format!("cmp_{}", &hex::encode(digest)[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_campaign_ids_ignore_case_and_spaces_around() {
        assert_eq!(auto_campaign_id("Test-Campaign "), auto_campaign_id("test-campaign"));
        assert_ne!(auto_campaign_id("a"), auto_campaign_id("b"));
        assert!(auto_campaign_id("x").starts_with("cmp_"));
    }

    #[test]
    fn ids_are_what_a_tracker_can_send() {
        assert_eq!(parse_id(" test-influencer-id ").unwrap(), "test-influencer-id");
        assert!(parse_id("has space").is_err());
        assert!(parse_id("").is_err());
        assert!(parse_text("  ").is_err());
        assert_eq!(parse_text("Test\u{0}Influencer").unwrap(), "TestInfluencer");
    }
}
