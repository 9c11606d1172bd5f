//! Influencers and campaigns: creating them (adopting what a click auto-created), and
//! their figures for a period. The admin API and the console both come here.

use crm_core::attribution::Model;
use crm_core::input::{FieldError, optional, required};
use crm_core::link::{Destination, GENERATED_LEN, Link, LinkCode};
use crm_core::partners::{Campaign, Influencer, parse_id, parse_text};
use crm_core::stats::{Dimension, GroupBy, Period, Totals};
use crm_core::values::{Brand, Currency};
use crm_store::{PutMode, Store, StoreError};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use crate::reports::{Request, figures, rates, totals};

#[derive(Debug, thiserror::Error)]
pub enum PartnerError {
    /// The id or the name is taken (409).
    #[error("{0}")]
    Taken(&'static str),
    /// The influencer named does not exist (a 400 on `influencerId`).
    #[error("no influencer has this id")]
    NoSuchInfluencer,
    /// The campaign named does not exist (a 400 on `campaignId`).
    #[error("no campaign has this id")]
    NoSuchCampaign,
    /// The entry changed does not exist (404).
    #[error("not found")]
    NotFound,
    /// No free link code was found (503: try again).
    #[error("no free link code was found; try again")]
    NoFreeCode,
    #[error(transparent)]
    Store(#[from] StoreError),
}

// What a person gives: the admin API's bodies and the console's forms, read alike.

/// An influencer as sent (`POST /api/influencers`, `PUT /api/influencers/{id}`, the
/// console's forms).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InfluencerBody {
    pub influencer_id: Option<String>,
    pub name: Option<String>,
    pub handle: Option<String>,
    pub channel: Option<String>,
    pub payout: Option<String>,
}

/// An influencer's fields, checked; `id` only when asked for on creation.
pub struct InfluencerFields {
    pub id: Option<String>,
    pub name: String,
    pub handle: Option<String>,
    pub channel: Option<String>,
    pub payout: Option<String>,
}

impl TryFrom<InfluencerBody> for InfluencerFields {
    type Error = FieldError;
    fn try_from(b: InfluencerBody) -> Result<Self, FieldError> {
        Ok(Self {
            id: optional("influencerId", b.influencer_id.as_deref(), parse_id)?,
            name: required("name", b.name.as_deref(), parse_text)?,
            handle: optional("handle", b.handle.as_deref(), parse_text)?,
            channel: optional("channel", b.channel.as_deref(), parse_text)?,
            payout: optional("payout", b.payout.as_deref(), parse_text)?,
        })
    }
}

impl InfluencerFields {
    pub fn influencer(self, id: String, now: OffsetDateTime) -> Influencer {
        Influencer {
            influencer_id: id,
            name: self.name,
            handle: self.handle,
            channel: self.channel,
            payout: self.payout,
            auto_created: false,
            created_at: now,
            updated_at: now,
            archived_at: None,
        }
    }
}

/// A campaign as sent (`POST /api/campaigns`, `PUT /api/campaigns/{id}`, the console's
/// forms).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CampaignBody {
    pub campaign_id: Option<String>,
    pub name: Option<String>,
    pub brand: Option<String>,
    pub influencer_id: Option<String>,
    pub source: Option<String>,
}

/// A campaign's fields, checked; `id` only when asked for on creation.
pub struct CampaignFields {
    pub id: Option<String>,
    pub name: String,
    pub brand: Option<Brand>,
    pub influencer_id: Option<String>,
    pub source: Option<String>,
}

impl TryFrom<CampaignBody> for CampaignFields {
    type Error = FieldError;
    fn try_from(b: CampaignBody) -> Result<Self, FieldError> {
        Ok(Self {
            id: optional("campaignId", b.campaign_id.as_deref(), parse_id)?,
            name: required("name", b.name.as_deref(), parse_text)?,
            brand: optional("brand", b.brand.as_deref(), Brand::parse)?,
            influencer_id: optional("influencerId", b.influencer_id.as_deref(), parse_id)?,
            source: optional("source", b.source.as_deref(), parse_text)?,
        })
    }
}

impl CampaignFields {
    /// The campaign (`create_campaign` and `edit_campaign` check its influencer exists).
    pub fn campaign(self, id: String, now: OffsetDateTime) -> Campaign {
        Campaign {
            campaign_id: id,
            name: self.name,
            brand: self.brand.map(|b| b.to_string()),
            influencer_id: self.influencer_id,
            source: self.source,
            auto_created: false,
            created_at: now,
            updated_at: now,
            archived_at: None,
        }
    }
}

/// A tracked link as sent (`POST /api/links`, `PUT /api/links/{code}`, the console's
/// forms).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LinkBody {
    pub code: Option<String>,
    pub influencer_id: Option<String>,
    pub campaign_id: Option<String>,
    pub brand: Option<String>,
    pub destination: Option<String>,
}

/// A link's fields, checked: who it credits, its brand, where it sends visitors; `code`
/// only when one is chosen on creation.
pub struct LinkFields {
    pub code: Option<LinkCode>,
    pub influencer_id: String,
    pub campaign_id: Option<String>,
    pub brand: Option<Brand>,
    pub destination: Destination,
}

impl TryFrom<LinkBody> for LinkFields {
    type Error = FieldError;
    fn try_from(b: LinkBody) -> Result<Self, FieldError> {
        Ok(Self {
            code: optional("code", b.code.as_deref(), LinkCode::parse)?,
            influencer_id: required("influencerId", b.influencer_id.as_deref(), parse_id)?,
            campaign_id: optional("campaignId", b.campaign_id.as_deref(), parse_id)?,
            brand: optional("brand", b.brand.as_deref(), Brand::parse)?,
            destination: required("destination", b.destination.as_deref(), Destination::parse)?,
        })
    }
}

impl LinkFields {
    /// The link, once the influencer and campaign it credits are known to exist; its brand
    /// is the campaign's when not given.
    pub async fn link(self, store: &Store, code: LinkCode, now: OffsetDateTime) -> Result<Link, PartnerError> {
        check_influencer(store, Some(&self.influencer_id)).await?;
        let campaign = match &self.campaign_id {
            Some(id) => Some(store.campaign(id).await?.ok_or(PartnerError::NoSuchCampaign)?),
            None => None,
        };
        let brand = self
            .brand
            .or_else(|| campaign.and_then(|c| c.brand).and_then(|b| Brand::parse(&b).ok()));
        Ok(Link {
            code,
            influencer_id: self.influencer_id,
            campaign_id: self.campaign_id,
            brand,
            destination: self.destination,
            created_at: now,
            updated_at: now,
            archived_at: None,
        })
    }
}

/// Creates an influencer; one a click auto-created under this id is adopted (its stats
/// kept). `influencer.influencer_id` empty: a new id.
pub async fn create_influencer(store: &Store, mut influencer: Influencer) -> Result<Influencer, PartnerError> {
    if influencer.influencer_id.is_empty() {
        influencer.influencer_id = format!("inf_{}", uuid::Uuid::now_v7().simple());
    }
    if let Some(existing) = store.influencer(&influencer.influencer_id).await? {
        influencer.created_at = existing.created_at;
    }
    if !store.put_influencer(&influencer, PutMode::Create).await? {
        return Err(PartnerError::Taken("an influencer with this influencerId exists"));
    }
    Ok(influencer)
}

/// Checks the campaign's influencer exists.
pub async fn check_influencer(store: &Store, influencer_id: Option<&str>) -> Result<(), PartnerError> {
    match influencer_id {
        Some(id) if store.influencer(id).await?.is_none() => Err(PartnerError::NoSuchInfluencer),
        _ => Ok(()),
    }
}

/// Creates a campaign (its influencer must exist); one a click auto-created under this name
/// is adopted, with its id and stats. `requested`: the id asked for, else a new one.
pub async fn create_campaign(
    store: &Store,
    mut campaign: Campaign,
    requested: Option<String>,
) -> Result<Campaign, PartnerError> {
    check_influencer(store, campaign.influencer_id.as_deref()).await?;
    let named = store.campaign_named(&campaign.name).await?;
    let adopted = named.filter(|c| c.auto_created && requested.as_ref().is_none_or(|r| *r == c.campaign_id));
    campaign.campaign_id = match (&adopted, requested) {
        (Some(c), _) => c.campaign_id.clone(),
        (None, Some(id)) => id,
        (None, None) => format!("cmp_{}", uuid::Uuid::now_v7().simple()),
    };
    if let Some(c) = &adopted {
        campaign.created_at = c.created_at;
    }
    if !store.put_campaign(&campaign, adopted.as_ref(), PutMode::Create).await? {
        return Err(PartnerError::Taken("a campaign with this campaignId or name exists"));
    }
    Ok(campaign)
}

/// Replaces an influencer's fields; when it was created and whether it is archived stay.
pub async fn edit_influencer(store: &Store, mut influencer: Influencer) -> Result<Influencer, PartnerError> {
    let existing = store
        .influencer(&influencer.influencer_id)
        .await?
        .ok_or(PartnerError::NotFound)?;
    influencer.created_at = existing.created_at;
    influencer.archived_at = existing.archived_at;
    if !store.put_influencer(&influencer, PutMode::Replace).await? {
        return Err(PartnerError::NotFound);
    }
    Ok(influencer)
}

/// Replaces a campaign's fields (its influencer must exist, its name stay unique); when it
/// was created and whether it is archived stay.
pub async fn edit_campaign(store: &Store, mut campaign: Campaign) -> Result<Campaign, PartnerError> {
    let existing = store
        .campaign(&campaign.campaign_id)
        .await?
        .ok_or(PartnerError::NotFound)?;
    check_influencer(store, campaign.influencer_id.as_deref()).await?;
    campaign.created_at = existing.created_at;
    campaign.archived_at = existing.archived_at;
    if !store.put_campaign(&campaign, Some(&existing), PutMode::Replace).await? {
        return Err(PartnerError::Taken("another campaign has this name"));
    }
    Ok(campaign)
}

/// Archives (or brings back) an influencer: off the lists, still credited.
pub async fn archive_influencer(
    store: &Store,
    id: &str,
    archived: bool,
    now: OffsetDateTime,
) -> Result<Influencer, PartnerError> {
    let mut influencer = store.influencer(id).await?.ok_or(PartnerError::NotFound)?;
    influencer.archived_at = archived.then_some(influencer.archived_at.unwrap_or(now));
    influencer.updated_at = now;
    if !store.put_influencer(&influencer, PutMode::Replace).await? {
        return Err(PartnerError::NotFound);
    }
    Ok(influencer)
}

/// Archives (or brings back) a campaign: off the lists, still credited.
pub async fn archive_campaign(
    store: &Store,
    id: &str,
    archived: bool,
    now: OffsetDateTime,
) -> Result<Campaign, PartnerError> {
    let existing = store.campaign(id).await?.ok_or(PartnerError::NotFound)?;
    let mut campaign = existing.clone();
    campaign.archived_at = archived.then_some(existing.archived_at.unwrap_or(now));
    campaign.updated_at = now;
    if !store.put_campaign(&campaign, Some(&existing), PutMode::Replace).await? {
        return Err(PartnerError::NotFound);
    }
    Ok(campaign)
}

/// Stores a new tracked link. With a `chosen` code, that code or `Taken`; else a random
/// one, drawn again (up to five times) while taken.
pub async fn create_link(store: &Store, mut link: Link, chosen: bool) -> Result<Link, PartnerError> {
    let generate = || {
        let random = uuid::Uuid::new_v4();
        let bytes: [u8; GENERATED_LEN] = random.as_bytes()[..GENERATED_LEN]
            .try_into()
            .expect("a uuid has 16 bytes");
        LinkCode::generate(bytes)
    };
    if !chosen {
        link.code = generate();
    }
    for _ in 0..5 {
        if store.put_link(&link, true).await? {
            return Ok(link);
        }
        if chosen {
            return Err(PartnerError::Taken("a link with this code exists"));
        }
        link.code = generate();
    }
    Err(PartnerError::NoFreeCode)
}

// Reading them.

/// Every influencer, archived ones too (`archived_at` says which).
pub async fn influencers(store: &Store) -> Result<Vec<Influencer>, StoreError> {
    store.influencers().await
}

/// Every campaign, archived ones too.
pub async fn campaigns(store: &Store) -> Result<Vec<Campaign>, StoreError> {
    store.campaigns().await
}

pub async fn influencer(store: &Store, id: &str) -> Result<Influencer, PartnerError> {
    store.influencer(id).await?.ok_or(PartnerError::NotFound)
}

pub async fn campaign(store: &Store, id: &str) -> Result<Campaign, PartnerError> {
    store.campaign(id).await?.ok_or(PartnerError::NotFound)
}

pub async fn link(store: &Store, code: &LinkCode) -> Result<Link, PartnerError> {
    store.link(code).await?.ok_or(PartnerError::NotFound)
}

/// Which links a list shows: those crediting an influencer or a campaign, archived or not.
#[derive(Debug, Default, Clone)]
pub struct LinkFilter {
    pub influencer_id: Option<String>,
    pub campaign_id: Option<String>,
    pub archived: bool,
}

/// Links by code (one query: there are hundreds, not millions).
pub async fn links(store: &Store, filter: &LinkFilter) -> Result<Vec<Link>, StoreError> {
    Ok(store
        .links()
        .await?
        .into_iter()
        .filter(|l| filter.archived || l.archived_at.is_none())
        .filter(|l| filter.influencer_id.as_ref().is_none_or(|i| *i == l.influencer_id))
        .filter(|l| {
            filter
                .campaign_id
                .as_ref()
                .is_none_or(|c| l.campaign_id.as_ref() == Some(c))
        })
        .collect())
}

/// Deletes an influencer. Its stats stay (counters are by id): a click naming it again
/// brings it back, auto-created.
pub async fn delete_influencer(store: &Store, id: &str) -> Result<(), PartnerError> {
    match store.delete_influencer(id).await? {
        true => Ok(()),
        false => Err(PartnerError::NotFound),
    }
}

/// Deletes a campaign (and its name's claim); its stats stay.
pub async fn delete_campaign(store: &Store, id: &str) -> Result<(), PartnerError> {
    let existing = campaign(store, id).await?;
    match store.delete_campaign(&existing).await? {
        true => Ok(()),
        false => Err(PartnerError::NotFound),
    }
}

/// Replaces what a link credits and where it goes; its visits so far keep what they were
/// recorded with, and its code, creation and archiving stay.
pub async fn edit_link(
    store: &Store,
    code: &LinkCode,
    fields: LinkFields,
    now: OffsetDateTime,
) -> Result<Link, PartnerError> {
    let existing = store.link(code).await?.ok_or(PartnerError::NotFound)?;
    let mut link = fields.link(store, existing.code.clone(), now).await?;
    link.created_at = existing.created_at;
    link.archived_at = existing.archived_at;
    if !store.put_link(&link, false).await? {
        return Err(PartnerError::NotFound);
    }
    Ok(link)
}

/// Archives a link: it keeps redirecting (it is printed in bios and videos), off the lists.
/// Archiving it again changes nothing.
pub async fn archive_link(store: &Store, code: &LinkCode, now: OffsetDateTime) -> Result<Link, PartnerError> {
    let mut link = store.link(code).await?.ok_or(PartnerError::NotFound)?;
    if link.archived_at.is_none() {
        link.archived_at = Some(now);
        link.updated_at = now;
        if !store.put_link(&link, false).await? {
            return Err(PartnerError::NotFound);
        }
    }
    Ok(link)
}

/// The figures of one influencer, campaign or brand (`by`'s `value`) for a period, as the
/// admin API answers them.
pub async fn stats(
    store: &Store,
    currency: &Currency,
    by: Dimension,
    value: &str,
    period: Period,
) -> Result<Map<String, Value>, StoreError> {
    let brand = (by == Dimension::Brand).then(|| value.to_owned());
    let rows = stats_by(store, by, period.clone(), brand).await?;
    let t = rows
        .into_iter()
        .find(|(v, _)| v == value)
        .map(|(_, t)| t)
        .unwrap_or_default();
    let mut out = Map::new();
    out.insert("from".into(), json!(period.from.to_string()));
    out.insert("to".into(), json!(period.to.to_string()));
    out.insert("timezone".into(), json!(period.zone));
    out.extend(figures(&t, &rates(store, currency).await?));
    Ok(out)
}

/// Every value of a dimension (of one brand, or all) with its last-touch totals over a
/// period.
pub async fn stats_by(
    store: &Store,
    by: Dimension,
    period: Period,
    brand: Option<String>,
) -> Result<Vec<(String, Totals)>, StoreError> {
    let r = Request {
        by: GroupBy::Dimension(by),
        period,
        brand,
        model: Model::LastTouch,
    };
    Ok(totals(store, &r).await?.into_iter().collect())
}
