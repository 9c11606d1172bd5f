//! The suppression list: `GET /api/suppressions?channel=&address=&cursor=&limit=`,
//! `POST /api/suppressions {channel, address, scope, reason}`,
//! `DELETE /api/suppressions/{channel}/{address}?scope=`. Addresses are normalised as the
//! ingest endpoints do (lowercased email, E.164 phone) and found by their keyed hash;
//! entries whose plaintext is unknown (unsubscribe links) or was erased show only the hash.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use crm_app::compliance::{
    ManualSuppression, SuppressionQuery, lift_suppression, listed_address, suppress_manually, suppressions,
};
use crm_core::compliance::{Scope, Suppression};
use crm_core::definition::Channel;
use crm_core::input::required;
use crm_core::unsubscribe::Keys;
use crm_core::values::Invalid;
use crm_http::{ApiError, ApiJson, ApiPath, ApiQuery, AppState, JsonResult, Page};
use serde::Deserialize;
use serde_json::json;
use time::OffsetDateTime;

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

pub async fn list(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Page<Suppression>>, ApiError> {
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
    let after: Option<Suppression> = q.cursor.as_deref().map(decode_cursor).transpose()?;
    let query = match &q.address {
        Some(raw) => SuppressionQuery::Address {
            raw,
            region: state.config.defaults.phone_region,
        },
        None => SuppressionQuery::Page {
            limit: limit(q.limit)?,
            after: after.as_ref(),
        },
    };
    let (items, more) = suppressions(&state.store, keys(&state)?, channel, query).await?;
    // The cursor is where the page ended (time, hash, scope), never an address.
    let next = match (more, items.last()) {
        (true, Some(last)) => Some(encode_cursor(&Suppression {
            address: None,
            ..last.clone()
        })),
        _ => None,
    };
    Ok(Json(Page {
        items,
        next_cursor: next,
    }))
}

/// `POST /api/suppressions` as sent; the use case checks each value.
#[derive(Deserialize)]
pub struct SuppressionBody {
    channel: Option<String>,
    address: Option<String>,
    scope: Option<String>,
    reason: Option<String>,
}

pub async fn add(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<SuppressionBody>,
) -> Result<impl IntoResponse, ApiError> {
    let asked = ManualSuppression {
        channel: required("channel", body.channel.as_deref(), Ok)?,
        address: required("address", body.address.as_deref(), Ok)?,
        scope: body.scope.as_deref(),
        reason: body.reason.as_deref(),
    };
    let region = state.config.defaults.phone_region;
    let now = OffsetDateTime::now_utc();
    let entry = suppress_manually(&state.store, keys(&state)?, region, &asked, "admin", now).await?;
    Ok((StatusCode::CREATED, Json(entry)))
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
