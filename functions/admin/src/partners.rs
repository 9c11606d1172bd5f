//! Influencers (`/api/influencers`) and campaigns (`/api/campaigns`): create, list, read
//! with their stats for a period, replace, delete. An operator creating an entry that a
//! click already auto-created adopts it (same id, its stats kept); a click's campaign finds
//! its campaign by id or by name without case, so names are unique.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use crm_core::partners::{Campaign, Influencer, parse_id, parse_text};
use crm_core::stats::Dimension;
use crm_core::values::Brand;
use crm_http::{ApiError, ApiPath, ApiQuery, AppState, JsonResult};
use crm_store::PutMode;
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
    })
}

pub async fn create_influencer(State(state): State<AppState>, bytes: Bytes) -> Result<Response, ApiError> {
    let body = body::object(&bytes)?;
    let now = OffsetDateTime::now_utc();
    let id =
        parsed(&body, "influencerId", parse_id)?.unwrap_or_else(|| format!("inf_{}", uuid::Uuid::now_v7().simple()));
    let mut influencer = influencer_from(&body, id, now)?;
    if let Some(existing) = state.store.influencer(&influencer.influencer_id).await? {
        influencer.created_at = existing.created_at;
    }
    if !state.store.put_influencer(&influencer, PutMode::Create).await? {
        return Err(conflict("an influencer with this influencerId exists"));
    }
    Ok((StatusCode::CREATED, Json(json!(influencer))).into_response())
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
    let existing = state.store.influencer(&id).await?.ok_or(ApiError::NotFound)?;
    let body = body::object(&bytes)?;
    let mut influencer = influencer_from(&body, id, OffsetDateTime::now_utc())?;
    influencer.created_at = existing.created_at;
    if !state.store.put_influencer(&influencer, PutMode::Replace).await? {
        return Err(ApiError::NotFound);
    }
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

async fn campaign_from(
    state: &AppState,
    body: &Map<String, Value>,
    id: String,
    now: OffsetDateTime,
) -> Result<Campaign, ApiError> {
    let influencer_id = parsed(body, "influencerId", parse_id)?;
    if let Some(i) = &influencer_id
        && state.store.influencer(i).await?.is_none()
    {
        return Err(crate::field_error(
            "influencerId",
            crm_core::values::Invalid::new("not_found", "no influencer has this id"),
        ));
    }
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
    })
}

pub async fn create_campaign(State(state): State<AppState>, bytes: Bytes) -> Result<Response, ApiError> {
    let body = body::object(&bytes)?;
    let now = OffsetDateTime::now_utc();
    let requested = parsed(&body, "campaignId", parse_id)?;
    let mut campaign = campaign_from(&state, &body, String::new(), now).await?;
    // A campaign a click created under this name is adopted, with its id and stats.
    let named = state.store.campaign_named(&campaign.name).await?;
    let adopted = named.filter(|c| c.auto_created && requested.as_ref().is_none_or(|r| *r == c.campaign_id));
    campaign.campaign_id = match (&adopted, requested) {
        (Some(c), _) => c.campaign_id.clone(),
        (None, Some(id)) => id,
        (None, None) => format!("cmp_{}", uuid::Uuid::now_v7().simple()),
    };
    if let Some(c) = &adopted {
        campaign.created_at = c.created_at;
    }
    if !state
        .store
        .put_campaign(&campaign, adopted.as_ref(), PutMode::Create)
        .await?
    {
        return Err(conflict("a campaign with this campaignId or name exists"));
    }
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
    let existing = state.store.campaign(&id).await?.ok_or(ApiError::NotFound)?;
    let body = body::object(&bytes)?;
    let mut campaign = campaign_from(&state, &body, id, OffsetDateTime::now_utc()).await?;
    campaign.created_at = existing.created_at;
    if !state
        .store
        .put_campaign(&campaign, Some(&existing), PutMode::Replace)
        .await?
    {
        return Err(conflict("another campaign has this name"));
    }
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
