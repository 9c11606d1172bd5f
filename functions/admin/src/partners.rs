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
    self, CampaignBody, CampaignFields, InfluencerBody, InfluencerFields, LinkBody, LinkFields, LinkFilter,
    PartnerError,
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
    let influencer = partners::create_influencer(&state.store, influencer)
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
        items: partners::influencers(&state.store).await?,
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
    let entry = partners::influencer(&state.store, &id).await.map_err(partner_error)?;
    let period = period(&state, q.from.as_deref(), q.to.as_deref(), q.tz.as_deref())?;
    let stats = stats_of(&state, Dimension::Influencer, &id, period).await?;
    Ok(Json(WithStats { entry, stats }))
}

pub async fn put_influencer(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<InfluencerBody>,
) -> Result<Json<Influencer>, ApiError> {
    let influencer = InfluencerFields::try_from(body)?.influencer(id, OffsetDateTime::now_utc());
    let influencer = partners::edit_influencer(&state.store, influencer)
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
    partners::delete_influencer(&state.store, &id)
        .await
        .map_err(partner_error)?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn create_campaign(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CampaignBody>,
) -> Result<Response, ApiError> {
    let fields = CampaignFields::try_from(body)?;
    let requested = fields.id.clone();
    let campaign = fields.campaign(String::new(), OffsetDateTime::now_utc());
    let campaign = partners::create_campaign(&state.store, campaign, requested)
        .await
        .map_err(partner_error)?;
    Ok((StatusCode::CREATED, Json(campaign)).into_response())
}

pub async fn list_campaigns(State(state): State<AppState>) -> Result<Json<Items<Campaign>>, ApiError> {
    Ok(Json(Items {
        items: partners::campaigns(&state.store).await?,
    }))
}

pub async fn get_campaign(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<PeriodQuery>,
) -> Result<Json<WithStats<Campaign>>, ApiError> {
    let entry = partners::campaign(&state.store, &id).await.map_err(partner_error)?;
    let period = period(&state, q.from.as_deref(), q.to.as_deref(), q.tz.as_deref())?;
    let stats = stats_of(&state, Dimension::Campaign, &id, period).await?;
    Ok(Json(WithStats { entry, stats }))
}

pub async fn put_campaign(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<CampaignBody>,
) -> Result<Json<Campaign>, ApiError> {
    let fields = CampaignFields::try_from(body)?;
    let campaign = fields.campaign(id, OffsetDateTime::now_utc());
    let campaign = partners::edit_campaign(&state.store, campaign)
        .await
        .map_err(partner_error)?;
    Ok(Json(campaign))
}

pub async fn delete_campaign(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    partners::delete_campaign(&state.store, &id)
        .await
        .map_err(partner_error)?;
    Ok(StatusCode::NO_CONTENT)
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
    let link = partners::create_link(&state.store, link, chosen.is_some())
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
    let filter = LinkFilter {
        influencer_id: q.influencer_id,
        campaign_id: q.campaign_id,
        archived: q.archived == Some(true),
    };
    let items = partners::links(&state.store, &filter)
        .await?
        .into_iter()
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
    let link = partners::link(&state.store, &code_of(&code)?)
        .await
        .map_err(partner_error)?;
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
    let code = code_of(&code)?;
    let fields = LinkFields::try_from(body)?;
    let link = partners::edit_link(&state.store, &code, fields, OffsetDateTime::now_utc())
        .await
        .map_err(partner_error)?;
    Ok(Json(link_view(link, &public_base(&state, &headers))))
}

/// `DELETE /api/links/{code}`: archives the link. It keeps redirecting (it is printed in
/// bios and videos); it leaves the list.
pub async fn delete_link(
    State(state): State<AppState>,
    ApiPath(code): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    partners::archive_link(&state.store, &code_of(&code)?, OffsetDateTime::now_utc())
        .await
        .map_err(partner_error)?;
    Ok(StatusCode::NO_CONTENT)
}
