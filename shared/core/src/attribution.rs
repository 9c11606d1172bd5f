//! Which click earned a lead or a conversion, and how sure we are of it; and, for the
//! multi-touch reports, how the credit of one conversion is shared among the clicks before it.
//!
//! The rules (documented in `docs/attribution.md`):
//! 1. the record's own click id, when that click was recorded: confidence 1.0;
//! 2. else the customer's last click for the same brand within the window before the
//!    conversion, with a confidence from how the record was linked to the customer;
//! 3. else the last click for any brand within the window, at half that confidence;
//! 4. else unattributed (confidence 0).
//!
//! "Before the conversion" is the time it happened (a late, batched FTD carries it), not
//! when it reached us, so a later click never takes the credit of an earlier conversion.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::partners::Campaign;
use crate::records::ClickRecord;
use crate::values::{Brand, Invalid};

/// The default attribution window.
pub const DEFAULT_WINDOW: Duration = Duration::days(30);
/// At most this many clicks are kept with a conversion for the multi-touch models.
pub const MAX_TOUCHES: usize = 20;
/// Time-decay credit halves for every this much time between a click and the conversion.
pub const HALF_LIFE: Duration = Duration::days(7);

/// A click as attribution sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Touchpoint {
    pub click_id: String,
    pub brand: String,
    #[serde(with = "crate::values::ts")]
    pub at: OffsetDateTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub influencer_id: Option<String>,
    /// The campaign as the click named it (a name or an id) until the shell resolves it,
    /// then the campaign's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub subs: BTreeMap<String, String>,
}

impl From<&ClickRecord> for Touchpoint {
    fn from(c: &ClickRecord) -> Self {
        Self {
            click_id: c.click_id.clone(),
            brand: c.brand.clone(),
            at: c.at,
            influencer_id: c.influencer_id.clone(),
            campaign_id: c.campaign.clone(),
            source: c.source.clone(),
            subs: c.subs.clone(),
        }
    }
}

impl Touchpoint {
    /// Credits the campaign the click named: its id replaces the name, and its influencer
    /// and brand stand in for those the click did not give (a Redtrack click often names
    /// only the campaign; its brand's reports should still count it).
    pub fn adopt(&mut self, campaign: &Campaign) {
        self.campaign_id = Some(campaign.campaign_id.clone());
        if self.influencer_id.is_none() {
            self.influencer_id = campaign.influencer_id.clone();
        }
        if self.brand == Brand::UNBRANDED
            && let Some(brand) = campaign.brand.as_ref().filter(|b| *b != Brand::UNBRANDED)
        {
            self.brand = brand.clone();
        }
    }
}

/// The strongest identifier that tied a record to its customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Link {
    /// Only a click id we never saw as a click.
    ClickId,
    DeviceId,
    Phone,
    Email,
    /// The operator's account id.
    UserId,
}

impl Link {
    /// The strongest of the identifier kinds (`USER_ID`, `EMAIL` …, as in keys) a record
    /// carried.
    pub fn strongest<'a>(kinds: impl IntoIterator<Item = &'a str>) -> Self {
        kinds
            .into_iter()
            .filter_map(|k| match k {
                "USER_ID" => Some(Self::UserId),
                "EMAIL" => Some(Self::Email),
                "PHONE" => Some(Self::Phone),
                "DEVICE_ID" => Some(Self::DeviceId),
                "CLICK_ID" => Some(Self::ClickId),
                _ => None,
            })
            .max()
            .unwrap_or(Self::ClickId)
    }
    /// Confidence of a same-brand last click reached through this link.
    pub fn confidence(self) -> Decimal {
        match self {
            Self::UserId => Decimal::new(9, 1),
            Self::Email => Decimal::new(8, 1),
            Self::Phone => Decimal::new(7, 1),
            Self::DeviceId => Decimal::new(6, 1),
            Self::ClickId => Decimal::new(5, 1),
        }
    }
}

/// Why a record was attributed as it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// The record is a click, or carried its click's id.
    ClickId,
    LastClickSameBrand,
    LastClickOtherBrand,
    /// No click of this customer in the window before it.
    NoClick,
}

/// The attribution record kept on every click, lead and conversion (last touch).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attribution {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub click_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub influencer_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub subs: BTreeMap<String, String>,
    pub model: Model,
    #[serde(with = "rust_decimal::serde::float")]
    pub confidence: Decimal,
    pub reason: Reason,
    /// The customer's clicks in the window before the record, oldest first (at most
    /// `MAX_TOUCHES`, the latest kept): what the multi-touch models share credit among.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub touches: Vec<Touchpoint>,
}

impl Attribution {
    /// Whether anyone gets the credit.
    pub fn is_attributed(&self) -> bool {
        self.reason != Reason::NoClick
    }

    /// A click is its own attribution.
    pub fn of_click(click: &Touchpoint) -> Self {
        Self::to(click, Decimal::ONE, Reason::ClickId, vec![click.clone()])
    }

    fn to(click: &Touchpoint, confidence: Decimal, reason: Reason, touches: Vec<Touchpoint>) -> Self {
        Self {
            click_id: Some(click.click_id.clone()),
            influencer_id: click.influencer_id.clone(),
            campaign_id: click.campaign_id.clone(),
            source: click.source.clone(),
            subs: click.subs.clone(),
            model: Model::LastTouch,
            confidence,
            reason,
            touches,
        }
    }
}

/// What is being attributed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversion<'a> {
    pub brand: &'a str,
    /// When it happened.
    pub at: OffsetDateTime,
    /// The record's own click id, when it carried one.
    pub click_id: Option<&'a str>,
    pub link: Link,
}

/// Last-touch attribution of a lead or conversion among the customer's clicks (any order,
/// any brand, any time: the rules pick).
pub fn attribute(conversion: &Conversion, clicks: &[Touchpoint], window: Duration) -> Attribution {
    let mut eligible: Vec<&Touchpoint> = clicks
        .iter()
        .filter(|c| c.at <= conversion.at && c.at >= conversion.at - window)
        .collect();
    eligible.sort_by(|a, b| (a.at, &a.click_id).cmp(&(b.at, &b.click_id)));
    eligible.dedup_by(|a, b| a.click_id == b.click_id);
    let touches: Vec<Touchpoint> = eligible
        .iter()
        .skip(eligible.len().saturating_sub(MAX_TOUCHES))
        .map(|c| (*c).clone())
        .collect();
    // The record's own click wins even when it is older than the window: it is evidence.
    if let Some(own) = conversion
        .click_id
        .and_then(|id| clicks.iter().find(|c| c.click_id == id))
    {
        return Attribution::to(own, Decimal::ONE, Reason::ClickId, touches);
    }
    let same_brand = eligible.iter().rev().find(|c| c.brand == conversion.brand);
    let link = conversion.link.confidence();
    match (same_brand, eligible.last()) {
        (Some(click), _) => Attribution::to(click, link, Reason::LastClickSameBrand, touches),
        (None, Some(click)) => Attribution::to(click, link / Decimal::TWO, Reason::LastClickOtherBrand, touches),
        (None, None) => Attribution {
            click_id: None,
            influencer_id: None,
            campaign_id: None,
            source: None,
            subs: BTreeMap::new(),
            model: Model::LastTouch,
            confidence: Decimal::ZERO,
            reason: Reason::NoClick,
            touches,
        },
    }
}

/// How a conversion's credit is shared among its touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Model {
    /// All to the last click (what the stats count).
    #[default]
    LastTouch,
    FirstTouch,
    /// Equal shares.
    Linear,
    /// Shares halving every `HALF_LIFE` back from the conversion.
    TimeDecay,
}

impl Model {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        match raw.trim().to_ascii_lowercase().replace('-', "_").as_str() {
            "last_touch" | "last" | "lasttouch" => Ok(Self::LastTouch),
            "first_touch" | "first" | "firsttouch" => Ok(Self::FirstTouch),
            "linear" => Ok(Self::Linear),
            "time_decay" | "timedecay" | "decay" => Ok(Self::TimeDecay),
            _ => Err(Invalid::new(
                "invalid_value",
                "must be one of last_touch, first_touch, linear, time_decay",
            )),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LastTouch => "last_touch",
            Self::FirstTouch => "first_touch",
            Self::Linear => "linear",
            Self::TimeDecay => "time_decay",
        }
    }
}

/// Each touch's share of one conversion (same order as `touches`, oldest first), summing to
/// exactly 1 when there is any touch. Last touch gives everything to the attributed click,
/// which is the last of the touches unless the record named its own, older click.
pub fn credit(model: Model, attribution: &Attribution, at: OffsetDateTime) -> Vec<Decimal> {
    let touches = &attribution.touches;
    let n = touches.len();
    if n == 0 {
        return Vec::new();
    }
    let one_at = |i: usize| {
        let mut shares = vec![Decimal::ZERO; n];
        shares[i] = Decimal::ONE;
        shares
    };
    match model {
        Model::LastTouch => match touches
            .iter()
            .position(|t| Some(&t.click_id) == attribution.click_id.as_ref())
        {
            Some(i) => one_at(i),
            None => vec![Decimal::ZERO; n],
        },
        Model::FirstTouch => one_at(0),
        Model::Linear => exact_shares(&vec![1.0; n]),
        Model::TimeDecay => {
            let weights: Vec<f64> = touches
                .iter()
                .map(|t| {
                    let age = (at - t.at).as_seconds_f64().max(0.0);
                    0.5f64.powf(age / HALF_LIFE.as_seconds_f64())
                })
                .collect();
            exact_shares(&weights)
        }
    }
}

/// Shares proportional to `weights`, to 6 decimal places, the last one taking the rounding
/// so they sum to exactly 1.
fn exact_shares(weights: &[f64]) -> Vec<Decimal> {
    let total: f64 = weights.iter().sum();
    let mut shares: Vec<Decimal> = weights
        .iter()
        .map(|w| Decimal::from_f64_retain(w / total).unwrap_or_default().round_dp(6))
        .collect();
    let rest: Decimal = shares[..shares.len() - 1].iter().sum();
    if let Some(last) = shares.last_mut() {
        *last = Decimal::ONE - rest;
    }
    shares
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use time::macros::datetime;

    const T0: OffsetDateTime = datetime!(2026-11-22 10:00 UTC);

    fn click(id: &str, brand: &str, at: OffsetDateTime, influencer: &str) -> Touchpoint {
        Touchpoint {
            click_id: id.into(),
            brand: brand.into(),
            at,
            influencer_id: Some(influencer.into()),
            campaign_id: None,
            source: None,
            subs: BTreeMap::new(),
        }
    }

    fn conversion(at: OffsetDateTime, click_id: Option<&str>, link: Link) -> Conversion<'_> {
        Conversion {
            brand: "rushbet",
            at,
            click_id,
            link,
        }
    }

    #[test]
    fn a_campaign_fills_in_what_its_click_did_not_name_and_nothing_else() {
        let campaign = Campaign::auto("Summer", "rushbet", Some("inf_c"), T0);
        let mut bare = click("a", Brand::UNBRANDED, T0, "x");
        bare.influencer_id = None;
        bare.campaign_id = Some("summer".into());
        bare.adopt(&campaign);
        assert_eq!(
            (
                bare.campaign_id.as_deref(),
                bare.influencer_id.as_deref(),
                bare.brand.as_str()
            ),
            (Some(campaign.campaign_id.as_str()), Some("inf_c"), "rushbet")
        );
        // What the click named wins over the campaign's.
        let mut named = click("b", "betano", T0, "inf_b");
        named.adopt(&campaign);
        assert_eq!(
            (named.influencer_id.as_deref(), named.brand.as_str()),
            (Some("inf_b"), "betano")
        );
        // A campaign without a brand (or itself unbranded) leaves the click unbranded.
        let mut unbranded = click("c", Brand::UNBRANDED, T0, "inf_b");
        unbranded.adopt(&Campaign::auto("Other", Brand::UNBRANDED, None, T0));
        assert_eq!(unbranded.brand, Brand::UNBRANDED);
    }

    #[test]
    fn own_recorded_click_wins_with_full_confidence() {
        let clicks = [
            click("a", "rushbet", T0 - Duration::days(2), "inf_a"),
            click("b", "rushbet", T0 - Duration::hours(1), "inf_b"),
        ];
        let a = attribute(&conversion(T0, Some("a"), Link::Email), &clicks, DEFAULT_WINDOW);
        assert_eq!(a.click_id.as_deref(), Some("a"));
        assert_eq!(a.influencer_id.as_deref(), Some("inf_a"));
        assert_eq!((a.confidence, a.reason), (Decimal::ONE, Reason::ClickId));
        assert_eq!(a.touches.len(), 2, "both clicks stay for the multi-touch models");
    }

    #[test]
    fn without_own_click_the_last_same_brand_click_in_the_window_wins() {
        let clicks = [
            click("old", "rushbet", T0 - Duration::days(31), "inf_old"),
            click("same", "rushbet", T0 - Duration::days(3), "inf_same"),
            click("other", "betano", T0 - Duration::days(1), "inf_other"),
            click("later", "rushbet", T0 + Duration::minutes(5), "inf_later"),
        ];
        let a = attribute(&conversion(T0, Some("unseen"), Link::UserId), &clicks, DEFAULT_WINDOW);
        assert_eq!(a.click_id.as_deref(), Some("same"));
        assert_eq!(a.reason, Reason::LastClickSameBrand);
        assert_eq!(a.confidence, Decimal::new(9, 1));
        let ids: Vec<&str> = a.touches.iter().map(|t| t.click_id.as_str()).collect();
        assert_eq!(ids, ["same", "other"], "outside the window or after it: not a touch");
    }

    #[test]
    fn a_late_conversion_is_attributed_to_the_click_before_it_happened() {
        let happened = T0 - Duration::days(1);
        let clicks = [
            click("before", "rushbet", happened - Duration::hours(2), "inf_before"),
            click("after", "rushbet", T0 - Duration::hours(1), "inf_after"),
        ];
        let a = attribute(&conversion(happened, None, Link::Email), &clicks, DEFAULT_WINDOW);
        assert_eq!(a.click_id.as_deref(), Some("before"));
    }

    #[test]
    fn another_brands_click_counts_at_half_confidence_and_no_click_is_unattributed() {
        let clicks = [click("other", "betano", T0 - Duration::days(1), "inf")];
        let a = attribute(&conversion(T0, None, Link::Phone), &clicks, DEFAULT_WINDOW);
        assert_eq!(a.reason, Reason::LastClickOtherBrand);
        assert_eq!(a.confidence, Decimal::new(35, 2));
        let none = attribute(&conversion(T0, None, Link::Email), &[], DEFAULT_WINDOW);
        assert!(!none.is_attributed());
        assert_eq!(none.confidence, Decimal::ZERO);
    }

    #[test]
    fn the_strongest_identifier_links() {
        assert_eq!(Link::strongest(["CLICK_ID", "EMAIL", "PHONE"]), Link::Email);
        assert_eq!(Link::strongest(["DEVICE_ID", "USER_ID"]), Link::UserId);
        assert_eq!(Link::strongest([]), Link::ClickId);
    }

    #[test]
    fn link_confidences_are_ordered_and_below_one() {
        let links = [Link::ClickId, Link::DeviceId, Link::Phone, Link::Email, Link::UserId];
        for pair in links.windows(2) {
            assert!(pair[0].confidence() < pair[1].confidence());
        }
        assert!(Link::UserId.confidence() < Decimal::ONE);
    }

    #[test]
    fn models_share_credit_as_named() {
        let clicks = [
            click("a", "rushbet", T0 - Duration::days(14), "x"),
            click("b", "rushbet", T0 - Duration::days(7), "y"),
            click("c", "rushbet", T0, "z"),
        ];
        let a = attribute(&conversion(T0, None, Link::Email), &clicks, DEFAULT_WINDOW);
        let d = |s: &str| s.parse::<Decimal>().unwrap();
        assert_eq!(credit(Model::LastTouch, &a, T0), [d("0"), d("0"), d("1")]);
        assert_eq!(credit(Model::FirstTouch, &a, T0), [d("1"), d("0"), d("0")]);
        assert_eq!(
            credit(Model::Linear, &a, T0),
            [d("0.333333"), d("0.333333"), d("0.333334")]
        );
        // Weights 1/4, 1/2, 1: shares 1/7, 2/7, 4/7.
        assert_eq!(
            credit(Model::TimeDecay, &a, T0),
            [d("0.142857"), d("0.285714"), d("0.571429")]
        );
    }

    proptest! {
        #[test]
        fn shares_always_sum_to_one(offsets in proptest::collection::vec(0i64..(40 * 86_400), 1..30), model in 0..4u8) {
            let clicks: Vec<Touchpoint> = offsets
                .iter()
                .enumerate()
                .map(|(i, s)| click(&format!("c{i}"), "rushbet", T0 - Duration::seconds(*s), "x"))
                .collect();
            let a = attribute(&conversion(T0, None, Link::Email), &clicks, DEFAULT_WINDOW);
            let model = [Model::LastTouch, Model::FirstTouch, Model::Linear, Model::TimeDecay][model as usize];
            let shares = credit(model, &a, T0);
            prop_assert_eq!(shares.len(), a.touches.len());
            prop_assert!(a.touches.len() <= MAX_TOUCHES);
            if !shares.is_empty() {
                prop_assert_eq!(shares.iter().sum::<Decimal>(), Decimal::ONE);
                prop_assert!(shares.iter().all(|s| *s >= Decimal::ZERO));
            }
        }
    }
}
