//! Influencers (`/api/influencers`), campaigns (`/api/campaigns`) and their tracked links
//! (`/api/links`, visited at `/l/{code}`): create, list, read
//! with their stats for a period, replace, delete. An operator creating an entry that a
//! click already auto-created adopts it (same id, its stats kept); a click's campaign finds
//! its campaign by id or by name without case, so names are unique.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use crm_app::partners::PartnerError;
use crm_core::link::{Destination, GENERATED_LEN, Link, LinkCode};
use crm_core::partners::{Campaign, Influencer, parse_id, parse_text};
use crm_core::stats::Dimension;
use crm_core::values::{Brand, Invalid};
use crm_http::{ApiError, ApiPath, ApiQuery, AppState, JsonResult, public_base};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use crate::body::{self, parsed};
use crate::reports::{PeriodQuery, period, stats_of};

fn conflict(message: &str) -> ApiError {
    ApiError::Conflict(message.to_owned())
}

fn influencer_from(body: &Map<String, Value>, id: String, now: OffsetDateTime) -> Result<Influencer, ApiError> {
    Ok(Influencer {
        influencer_id: id,
        name: parsed(body, "name", parse_text)?
            .ok_or_else(|| crate::field_error("name", crm_core::values::Invalid::new("missing", "name is required")))?,
        handle: parsed(body, "handle", parse_text)?,
        channel: parsed(body, "channel", parse_text)?,
        payout: parsed(body, "payout", parse_text)?,
        auto_created: false,
        created_at: now,
        updated_at: now,
        archived_at: None,
    })
}

pub async fn create_influencer(State(state): State<AppState>, bytes: Bytes) -> Result<Response, ApiError> {
    let body = body::object(&bytes)?;
    let id = parsed(&body, "influencerId", parse_id)?.unwrap_or_default();
    let influencer = influencer_from(&body, id, OffsetDateTime::now_utc())?;
    let influencer = crm_app::partners::create_influencer(&state.store, influencer)
        .await
        .map_err(partner_error)?;
    Ok((StatusCode::CREATED, Json(json!(influencer))).into_response())
}

fn partner_error(e: PartnerError) -> ApiError {
    match e {
        PartnerError::Taken(message) => conflict(message),
        PartnerError::NoSuchInfluencer => {
            crate::field_error("influencerId", Invalid::new("not_found", "no influencer has this id"))
        }
        PartnerError::NotFound => ApiError::NotFound,
        PartnerError::NoFreeCode => ApiError::Unavailable(e.to_string()),
        PartnerError::Store(e) => e.into(),
    }
}

pub async fn list_influencers(State(state): State<AppState>) -> JsonResult {
    Ok(Json(json!({"items": state.store.influencers().await?})))
}

pub async fn get_influencer(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<PeriodQuery>,
) -> JsonResult {
    let influencer = state.store.influencer(&id).await?.ok_or(ApiError::NotFound)?;
    let period = period(&state, q.from.as_deref(), q.to.as_deref(), q.tz.as_deref())?;
    let mut out = json!(influencer);
    out["stats"] = stats_of(&state, Dimension::Influencer, &id, period).await?;
    Ok(Json(out))
}

pub async fn put_influencer(State(state): State<AppState>, ApiPath(id): ApiPath<String>, bytes: Bytes) -> JsonResult {
    state.store.influencer(&id).await?.ok_or(ApiError::NotFound)?;
    let body = body::object(&bytes)?;
    let influencer = influencer_from(&body, id, OffsetDateTime::now_utc())?;
    let influencer = crm_app::partners::edit_influencer(&state.store, influencer)
        .await
        .map_err(partner_error)?;
    Ok(Json(json!(influencer)))
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

/// The body's `influencerId`, which must name an influencer that exists.
async fn influencer_named(state: &AppState, body: &Map<String, Value>) -> Result<Option<String>, ApiError> {
    let id = parsed(body, "influencerId", parse_id)?;
    crm_app::partners::check_influencer(&state.store, id.as_deref())
        .await
        .map_err(partner_error)?;
    Ok(id)
}

async fn campaign_from(
    state: &AppState,
    body: &Map<String, Value>,
    id: String,
    now: OffsetDateTime,
) -> Result<Campaign, ApiError> {
    let influencer_id = influencer_named(state, body).await?;
    Ok(Campaign {
        campaign_id: id,
        name: parsed(body, "name", parse_text)?
            .ok_or_else(|| crate::field_error("name", crm_core::values::Invalid::new("missing", "name is required")))?,
        brand: parsed(body, "brand", |b| Brand::parse(b).map(|b| b.to_string()))?,
        influencer_id,
        source: parsed(body, "source", parse_text)?,
        auto_created: false,
        created_at: now,
        updated_at: now,
        archived_at: None,
    })
}

pub async fn create_campaign(State(state): State<AppState>, bytes: Bytes) -> Result<Response, ApiError> {
    let body = body::object(&bytes)?;
    let requested = parsed(&body, "campaignId", parse_id)?;
    let campaign = campaign_from(&state, &body, String::new(), OffsetDateTime::now_utc()).await?;
    let campaign = crm_app::partners::create_campaign(&state.store, campaign, requested)
        .await
        .map_err(partner_error)?;
    Ok((StatusCode::CREATED, Json(json!(campaign))).into_response())
}

pub async fn list_campaigns(State(state): State<AppState>) -> JsonResult {
    Ok(Json(json!({"items": state.store.campaigns().await?})))
}

pub async fn get_campaign(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<PeriodQuery>,
) -> JsonResult {
    let campaign = state.store.campaign(&id).await?.ok_or(ApiError::NotFound)?;
    let period = period(&state, q.from.as_deref(), q.to.as_deref(), q.tz.as_deref())?;
    let mut out = json!(campaign);
    out["stats"] = stats_of(&state, Dimension::Campaign, &id, period).await?;
    Ok(Json(out))
}

pub async fn put_campaign(State(state): State<AppState>, ApiPath(id): ApiPath<String>, bytes: Bytes) -> JsonResult {
    state.store.campaign(&id).await?.ok_or(ApiError::NotFound)?;
    let body = body::object(&bytes)?;
    let campaign = campaign_from(&state, &body, id, OffsetDateTime::now_utc()).await?;
    let campaign = crm_app::partners::edit_campaign(&state.store, campaign)
        .await
        .map_err(partner_error)?;
    Ok(Json(json!(campaign)))
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

/// A link's fields from a body: who it credits (an existing influencer, and campaign if
/// named), its brand (else the campaign's), where it sends visitors.
async fn link_from(
    state: &AppState,
    body: &Map<String, Value>,
    code: LinkCode,
    now: OffsetDateTime,
) -> Result<Link, ApiError> {
    let missing =
        |field: &'static str| crate::field_error(field, Invalid::new("missing", format!("{field} is required")));
    let not_found = |field: &'static str, what: &str| {
        crate::field_error(field, Invalid::new("not_found", format!("no {what} has this id")))
    };
    let influencer_id = influencer_named(state, body)
        .await?
        .ok_or_else(|| missing("influencerId"))?;
    let campaign_id = parsed(body, "campaignId", parse_id)?;
    let campaign = match &campaign_id {
        Some(id) => Some(
            state
                .store
                .campaign(id)
                .await?
                .ok_or_else(|| not_found("campaignId", "campaign"))?,
        ),
        None => None,
    };
    let brand = match parsed(body, "brand", Brand::parse)? {
        Some(b) => Some(b),
        None => campaign.and_then(|c| c.brand).and_then(|b| Brand::parse(&b).ok()),
    };
    Ok(Link {
        code,
        influencer_id,
        campaign_id,
        brand,
        destination: parsed(body, "destination", Destination::parse)?.ok_or_else(|| missing("destination"))?,
        created_at: now,
        updated_at: now,
        archived_at: None,
    })
}

fn link_json(link: &Link, base: &str) -> Value {
    let mut out = json!(link);
    out["url"] = json!(format!("{base}/l/{}", link.code));
    out
}

/// `POST /api/links`: a new link (201 with its `code` and `url`); `code` may be chosen
/// (409 if taken), else one is generated.
pub async fn create_link(
    State(state): State<AppState>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let body = body::object(&bytes)?;
    let now = OffsetDateTime::now_utc();
    let chosen = parsed(&body, "code", LinkCode::parse)?;
    let placeholder = LinkCode::generate([0; GENERATED_LEN]);
    let link = link_from(&state, &body, chosen.clone().unwrap_or(placeholder), now).await?;
    let link = crm_app::partners::create_link(&state.store, link, chosen.is_some())
        .await
        .map_err(partner_error)?;
    Ok((
        StatusCode::CREATED,
        Json(link_json(&link, &public_base(&state, &headers))),
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
) -> JsonResult {
    let base = public_base(&state, &headers);
    let items: Vec<Value> = state
        .store
        .links()
        .await?
        .iter()
        .filter(|l| q.archived == Some(true) || l.archived_at.is_none())
        .filter(|l| q.influencer_id.as_ref().is_none_or(|i| *i == l.influencer_id))
        .filter(|l| q.campaign_id.as_ref().is_none_or(|c| l.campaign_id.as_ref() == Some(c)))
        .map(|l| link_json(l, &base))
        .collect();
    Ok(Json(json!({"items": items})))
}

fn code_of(raw: &str) -> Result<LinkCode, ApiError> {
    LinkCode::parse(raw).map_err(|_| ApiError::NotFound)
}

pub async fn get_link(State(state): State<AppState>, headers: HeaderMap, ApiPath(code): ApiPath<String>) -> JsonResult {
    let link = state.store.link(&code_of(&code)?).await?.ok_or(ApiError::NotFound)?;
    Ok(Json(link_json(&link, &public_base(&state, &headers))))
}

/// `PUT /api/links/{code}`: replaces what the link credits and where it goes (its visits
/// so far keep what they were recorded with).
pub async fn put_link(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiPath(code): ApiPath<String>,
    bytes: Bytes,
) -> JsonResult {
    let existing = state.store.link(&code_of(&code)?).await?.ok_or(ApiError::NotFound)?;
    let body = body::object(&bytes)?;
    let mut link = link_from(&state, &body, existing.code.clone(), OffsetDateTime::now_utc()).await?;
    link.created_at = existing.created_at;
    link.archived_at = existing.archived_at;
    if !state.store.put_link(&link, false).await? {
        return Err(ApiError::NotFound);
    }
    Ok(Json(link_json(&link, &public_base(&state, &headers))))
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
