//! The suppression list: `GET /api/suppressions?channel=&address=&cursor=&limit=`,
//! `POST /api/suppressions {channel, address, scope, reason}`,
//! `DELETE /api/suppressions/{channel}/{address}?scope=`. Addresses are normalised as the
//! ingest endpoints do (lowercased email, E.164 phone) and found by their keyed hash;
//! entries whose plaintext is unknown (unsubscribe links) or was erased show only the hash.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use crm_core::compliance::{Scope, Suppression, SuppressionReason};
use crm_core::definition::Channel;
use crm_core::unsubscribe::Keys;
use crm_core::values::{Email, Invalid, PhoneE164};
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

/// The address in its normalised form, as the list stores it.
fn normalise(state: &AppState, channel: Channel, raw: &str) -> Result<String, ApiError> {
    let parsed = match channel {
        Channel::Email => Email::parse(raw).map(|e| e.to_string()),
        Channel::Sms => PhoneE164::parse(raw, state.config.defaults.phone_region).map(|p| p.to_string()),
    };
    parsed.map_err(|e| field_error("address", e))
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
        let address = normalise(&state, channel, raw)?;
        let hash = keys(&state)?.address_hash(channel, &address);
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
    let channel = channel(&required(&body, "channel")?)?;
    let address = normalise(&state, channel, &required(&body, "address")?)?;
    let scope = match text(&body, "scope")?.as_deref() {
        None => Scope::All,
        Some(raw) => Scope::parse(raw).map_err(|e| field_error("scope", e))?,
    };
    let reason = match text(&body, "reason")?.as_deref() {
        None => SuppressionReason::Manual,
        Some(raw) => SuppressionReason::parse(raw).map_err(|e| field_error("reason", e))?,
    };
    let entry = Suppression {
        channel,
        address_hash: keys(&state)?.address_hash(channel, &address),
        address: Some(address),
        scope,
        reason,
        at: OffsetDateTime::now_utc(),
        source: "admin".into(),
    };
    if !state.store.suppress(&entry).await? {
        return Err(ApiError::bad_request(
            "erased",
            "this address belongs to an erased person and stays suppressed as erased",
        ));
    }
    tracing::info!(
        channel = channel.as_str(),
        scope = entry.scope.as_str(),
        reason = reason.as_str(),
        "suppression added"
    );
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
    let address = normalise(&state, channel, &address)?;
    let scope = match q.scope.as_deref() {
        None => Scope::All,
        Some(raw) => Scope::parse(raw).map_err(|e| field_error("scope", e))?,
    };
    let hash = keys(&state)?.address_hash(channel, &address);
    // An erased person's entry is the only trace that keeps them from being marketed to.
    let entries = state.store.suppressions(channel, &hash).await?;
    match entries.iter().find(|e| e.scope == scope) {
        None => Err(ApiError::NotFound),
        Some(e) if e.reason == SuppressionReason::Erased => Err(ApiError::bad_request(
            "erased",
            "an erased person's suppression cannot be removed",
        )),
        Some(e) => {
            state.store.unsuppress(channel, &hash, &scope, Some(e.reason)).await?;
            tracing::info!(
                channel = channel.as_str(),
                scope = scope.as_str(),
                "suppression removed"
            );
            Ok(Json(
                json!({"deleted": true, "channel": channel.as_str(), "scope": scope}),
            ))
        }
    }
}
