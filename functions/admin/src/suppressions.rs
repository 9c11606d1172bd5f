//! The suppression list: `GET /api/suppressions?channel=&address=&cursor=&limit=`,
//! `POST /api/suppressions {channel, address, scope, reason}`,
//! `DELETE /api/suppressions/{channel}/{address}?scope=`. Addresses are normalised as the
//! ingest endpoints do (lowercased email, E.164 phone) and found by their keyed hash;
//! entries whose plaintext is unknown (unsubscribe links) or was erased show only the hash.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use crm_app::compliance::{ManualSuppression, lift_suppression, listed_address, suppress_manually};
use crm_core::compliance::{Scope, Suppression};
use crm_core::definition::Channel;
use crm_core::unsubscribe::Keys;
use crm_core::values::Invalid;
use crm_http::{ApiError, ApiPath, ApiQuery, AppState, JsonResult};
use serde::Deserialize;
use serde_json::json;
use time::OffsetDateTime;

use crate::body::{self, required, text};
use crate::{decode_cursor, encode_cursor, field_error, limit};

fn keys(state: &AppState) -> Result<&Keys, ApiError> {
    state
        .config
        .unsubscribe
        .as_ref()
        .ok_or_else(|| ApiError::Internal("UNSUBSCRIBE_SECRET is not set".into()))
}

fn channel(raw: &str) -> Result<Channel, ApiError> {
    Channel::parse(raw).map_err(|e| field_error("channel", e))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    channel: Option<String>,
    address: Option<String>,
    cursor: Option<String>,
    limit: Option<i32>,
}

pub async fn list(State(state): State<AppState>, ApiQuery(q): ApiQuery<ListQuery>) -> JsonResult {
    let channel = match (&q.channel, &q.address) {
        (Some(c), _) => channel(c)?,
        // An address alone says its channel.
        (None, Some(a)) if a.contains('@') => Channel::Email,
        (None, Some(_)) => Channel::Sms,
        (None, None) => {
            return Err(field_error(
                "channel",
                Invalid::new("missing", "channel (email or sms) or address is required"),
            ));
        }
    };
    if let Some(raw) = &q.address {
        let region = state.config.defaults.phone_region;
        let (_, hash) = listed_address(keys(&state)?, channel, raw, region)?;
        let items = state.store.suppressions(channel, &hash).await?;
        return Ok(Json(json!({"items": items})));
    }
    let after: Option<Suppression> = q.cursor.as_deref().map(decode_cursor).transpose()?;
    let (items, more) = state
        .store
        .suppression_page(channel, limit(q.limit)?, after.as_ref())
        .await?;
    // The cursor is where the page ended (time, hash, scope), never an address.
    let next = match (more, items.last()) {
        (true, Some(last)) => Some(encode_cursor(&Suppression {
            address: None,
            ..last.clone()
        })),
        _ => None,
    };
    Ok(Json(json!({"items": items, "nextCursor": next})))
}

pub async fn add(State(state): State<AppState>, body: axum::body::Bytes) -> Result<impl IntoResponse, ApiError> {
    let body = body::object(&body)?;
    let (channel, address) = (required(&body, "channel")?, required(&body, "address")?);
    let (scope, reason) = (text(&body, "scope")?, text(&body, "reason")?);
    let asked = ManualSuppression {
        channel: &channel,
        address: &address,
        scope: scope.as_deref(),
        reason: reason.as_deref(),
    };
    let region = state.config.defaults.phone_region;
    let now = OffsetDateTime::now_utc();
    let entry = suppress_manually(&state.store, keys(&state)?, region, &asked, "admin", now).await?;
    Ok((StatusCode::CREATED, Json(json!(entry))))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoveQuery {
    scope: Option<String>,
}

pub async fn remove(
    State(state): State<AppState>,
    ApiPath((channel_raw, address)): ApiPath<(String, String)>,
    ApiQuery(q): ApiQuery<RemoveQuery>,
) -> JsonResult {
    let channel = channel(&channel_raw)?;
    let region = state.config.defaults.phone_region;
    let (_, hash) = listed_address(keys(&state)?, channel, &address, region)?;
    let scope = match q.scope.as_deref() {
        None => Scope::All,
        Some(raw) => Scope::parse(raw).map_err(|e| field_error("scope", e))?,
    };
    lift_suppression(&state.store, channel, &hash, &scope).await?;
    Ok(Json(
        json!({"deleted": true, "channel": channel.as_str(), "scope": scope}),
    ))
}
