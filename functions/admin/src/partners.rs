//! Influencers (`/api/influencers`), campaigns (`/api/campaigns`) and their tracked links
//! (`/api/links`, visited at `/l/{code}`): create, list, read
//! with their stats for a period, replace, delete. An operator creating an entry that a
//! click already auto-created adopts it (same id, its stats kept); a click's campaign finds
//! its campaign by id or by name without case, so names are unique.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use crm_app::partners::{
    CampaignBody, CampaignFields, InfluencerBody, InfluencerFields, LinkBody, LinkFields, PartnerError,
};
use crm_core::link::{GENERATED_LEN, Link, LinkCode};
use crm_core::partners::{Campaign, Influencer};
use crm_core::stats::Dimension;
use crm_core::values::Invalid;
use crm_http::{ApiError, ApiJson, ApiPath, ApiQuery, AppState, Items, public_base};
use serde::Serialize;
use time::OffsetDateTime;

use crate::reports::{PeriodQuery, period, stats_of};

fn conflict(message: &str) -> ApiError {
    ApiError::Conflict(message.to_owned())
}

pub async fn create_influencer(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<InfluencerBody>,
) -> Result<Response, ApiError> {
    let fields = InfluencerFields::try_from(body)?;
    let id = fields.id.clone().unwrap_or_default();
    let influencer = fields.influencer(id, OffsetDateTime::now_utc());
    let influencer = crm_app::partners::create_influencer(&state.store, influencer)
        .await
        .map_err(partner_error)?;
    Ok((StatusCode::CREATED, Json(influencer)).into_response())
}

fn partner_error(e: PartnerError) -> ApiError {
    match e {
        PartnerError::Taken(message) => conflict(message),
        PartnerError::NoSuchInfluencer => {
            ApiError::invalid("influencerId", Invalid::new("not_found", "no influencer has this id"))
        }
        PartnerError::NoSuchCampaign => {
            ApiError::invalid("campaignId", Invalid::new("not_found", "no campaign has this id"))
        }
        PartnerError::NotFound => ApiError::NotFound,
        PartnerError::NoFreeCode => ApiError::Unavailable(e.to_string()),
        PartnerError::Store(e) => e.into(),
    }
}

pub async fn list_influencers(State(state): State<AppState>) -> Result<Json<Items<Influencer>>, ApiError> {
    Ok(Json(Items {
        items: state.store.influencers().await?,
    }))
}

/// An influencer or campaign with its figures for a period.
#[derive(Serialize)]
pub struct WithStats<T> {
    #[serde(flatten)]
    entry: T,
    stats: serde_json::Value,
}

pub async fn get_influencer(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<PeriodQuery>,
) -> Result<Json<WithStats<Influencer>>, ApiError> {
    let entry = state.store.influencer(&id).await?.ok_or(ApiError::NotFound)?;
    let period = period(&state, q.from.as_deref(), q.to.as_deref(), q.tz.as_deref())?;
    let stats = stats_of(&state, Dimension::Influencer, &id, period).await?;
    Ok(Json(WithStats { entry, stats }))
}

pub async fn put_influencer(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<InfluencerBody>,
) -> Result<Json<Influencer>, ApiError> {
    state.store.influencer(&id).await?.ok_or(ApiError::NotFound)?;
    let influencer = InfluencerFields::try_from(body)?.influencer(id, OffsetDateTime::now_utc());
    let influencer = crm_app::partners::edit_influencer(&state.store, influencer)
        .await
        .map_err(partner_error)?;
    Ok(Json(influencer))
}

/// Deleting an entry keeps its stats (counters are by id): a click naming it again brings
/// it back, auto-created.
pub async fn delete_influencer(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    if state.store.delete_influencer(&id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound)
    }
}

pub async fn create_campaign(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CampaignBody>,
) -> Result<Response, ApiError> {
    let fields = CampaignFields::try_from(body)?;
    let requested = fields.id.clone();
    let campaign = fields.campaign(String::new(), OffsetDateTime::now_utc());
    let campaign = crm_app::partners::create_campaign(&state.store, campaign, requested)
        .await
        .map_err(partner_error)?;
    Ok((StatusCode::CREATED, Json(campaign)).into_response())
}

pub async fn list_campaigns(State(state): State<AppState>) -> Result<Json<Items<Campaign>>, ApiError> {
    Ok(Json(Items {
        items: state.store.campaigns().await?,
    }))
}

pub async fn get_campaign(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<PeriodQuery>,
) -> Result<Json<WithStats<Campaign>>, ApiError> {
    let entry = state.store.campaign(&id).await?.ok_or(ApiError::NotFound)?;
    let period = period(&state, q.from.as_deref(), q.to.as_deref(), q.tz.as_deref())?;
    let stats = stats_of(&state, Dimension::Campaign, &id, period).await?;
    Ok(Json(WithStats { entry, stats }))
}

pub async fn put_campaign(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<CampaignBody>,
) -> Result<Json<Campaign>, ApiError> {
    state.store.campaign(&id).await?.ok_or(ApiError::NotFound)?;
    let fields = CampaignFields::try_from(body)?;
    let campaign = fields.campaign(id, OffsetDateTime::now_utc());
    let campaign = crm_app::partners::edit_campaign(&state.store, campaign)
        .await
        .map_err(partner_error)?;
    Ok(Json(campaign))
}

pub async fn delete_campaign(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let existing = state.store.campaign(&id).await?.ok_or(ApiError::NotFound)?;
    if state.store.delete_campaign(&existing).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound)
    }
}

/// A link as the API shows it: with the URL to hand out.
#[derive(Serialize)]
pub struct LinkView {
    #[serde(flatten)]
    link: Link,
    url: String,
}

fn link_view(link: Link, base: &str) -> LinkView {
    let url = format!("{base}/l/{}", link.code);
    LinkView { link, url }
}

/// `POST /api/links`: a new link (201 with its `code` and `url`); `code` may be chosen
/// (409 if taken), else one is generated.
pub async fn create_link(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<LinkBody>,
) -> Result<Response, ApiError> {
    let fields = LinkFields::try_from(body)?;
    let chosen = fields.code.clone();
    let placeholder = LinkCode::generate([0; GENERATED_LEN]);
    let link = fields
        .link(
            &state.store,
            chosen.clone().unwrap_or(placeholder),
            OffsetDateTime::now_utc(),
        )
        .await
        .map_err(partner_error)?;
    let link = crm_app::partners::create_link(&state.store, link, chosen.is_some())
        .await
        .map_err(partner_error)?;
    Ok((
        StatusCode::CREATED,
        Json(link_view(link, &public_base(&state, &headers))),
    )
        .into_response())
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LinksQuery {
    influencer_id: Option<String>,
    campaign_id: Option<String>,
    /// `true`: archived links too.
    archived: Option<bool>,
}

/// `GET /api/links`: live links by code, optionally of one influencer or campaign.
pub async fn list_links(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<LinksQuery>,
) -> Result<Json<Items<LinkView>>, ApiError> {
    let base = public_base(&state, &headers);
    let items = state
        .store
        .links()
        .await?
        .into_iter()
        .filter(|l| q.archived == Some(true) || l.archived_at.is_none())
        .filter(|l| q.influencer_id.as_ref().is_none_or(|i| *i == l.influencer_id))
        .filter(|l| q.campaign_id.as_ref().is_none_or(|c| l.campaign_id.as_ref() == Some(c)))
        .map(|l| link_view(l, &base))
        .collect();
    Ok(Json(Items { items }))
}

fn code_of(raw: &str) -> Result<LinkCode, ApiError> {
    LinkCode::parse(raw).map_err(|_| ApiError::NotFound)
}

pub async fn get_link(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiPath(code): ApiPath<String>,
) -> Result<Json<LinkView>, ApiError> {
    let link = state.store.link(&code_of(&code)?).await?.ok_or(ApiError::NotFound)?;
    Ok(Json(link_view(link, &public_base(&state, &headers))))
}

/// `PUT /api/links/{code}`: replaces what the link credits and where it goes (its visits
/// so far keep what they were recorded with).
pub async fn put_link(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiPath(code): ApiPath<String>,
    ApiJson(body): ApiJson<LinkBody>,
) -> Result<Json<LinkView>, ApiError> {
    let existing = state.store.link(&code_of(&code)?).await?.ok_or(ApiError::NotFound)?;
    let fields = LinkFields::try_from(body)?;
    let mut link = fields
        .link(&state.store, existing.code.clone(), OffsetDateTime::now_utc())
        .await
        .map_err(partner_error)?;
    link.created_at = existing.created_at;
    link.archived_at = existing.archived_at;
    if !state.store.put_link(&link, false).await? {
        return Err(ApiError::NotFound);
    }
    Ok(Json(link_view(link, &public_base(&state, &headers))))
}

/// `DELETE /api/links/{code}`: archives the link. It keeps redirecting (it is printed in
/// bios and videos); it leaves the list.
pub async fn delete_link(
    State(state): State<AppState>,
    ApiPath(code): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let mut link = state.store.link(&code_of(&code)?).await?.ok_or(ApiError::NotFound)?;
    if link.archived_at.is_none() {
        let now = OffsetDateTime::now_utc();
        link.archived_at = Some(now);
        link.updated_at = now;
        if !state.store.put_link(&link, false).await? {
            return Err(ApiError::NotFound);
        }
    }
    Ok(StatusCode::NO_CONTENT)
}
