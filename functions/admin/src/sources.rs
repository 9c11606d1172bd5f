//! Ingest sources (`/api/sources`): create one (its key, and its signing secret when it
//! signs, are in the 201 answer and never again), list them with their keys' last four
//! characters and usage, add a key (rotation), revoke a key or the whole source.

use std::collections::BTreeMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use crm_app::sources::{self, SourceError};
use crm_core::source::{KeyInfo, Rules, SourceKind};
use crm_core::values::{Invalid, format_ts};
use crm_http::{ApiError, ApiPath, AppState, JsonResult};
use crm_store::SourceEntry;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use crate::body::{self, required};
use crate::field_error;

/// Longest source name.
const MAX_NAME: usize = 100;
/// Most networks or origins one source may list.
const MAX_LIST: usize = 50;

fn api(e: SourceError) -> ApiError {
    match e {
        SourceError::Store(s) => s.into(),
        SourceError::NotFound => ApiError::NotFound,
        SourceError::Revoked => ApiError::Conflict("the source is revoked".into()),
        SourceError::NoSigningSecret => ApiError::Internal(e.to_string()),
    }
}

fn flag(body: &Map<String, Value>, field: &'static str) -> Result<bool, ApiError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(field_error(
            field,
            Invalid::new("invalid_type", format!("{field} must be true or false")),
        )),
    }
}

/// An optional array of strings, each read by `parse`.
fn list<T>(
    body: &Map<String, Value>,
    field: &'static str,
    parse: impl Fn(&str) -> Result<T, Invalid>,
) -> Result<Option<Vec<T>>, ApiError> {
    let items = match body.get(field) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Array(items)) if items.len() <= MAX_LIST => items,
        Some(Value::Array(_)) => {
            let message = format!("{field} may list at most {MAX_LIST} entries");
            return Err(field_error(field, Invalid::new("too_long", message)));
        }
        Some(_) => {
            let message = format!("{field} must be an array of strings");
            return Err(field_error(field, Invalid::new("invalid_type", message)));
        }
    };
    items
        .iter()
        .map(|item| match item {
            Value::String(s) => parse(s).map_err(|e| field_error(field, e)),
            _ => Err(field_error(
                field,
                Invalid::new("invalid_type", format!("{field} must be an array of strings")),
            )),
        })
        .collect::<Result<Vec<T>, ApiError>>()
        .map(Some)
}

/// The rules a body names: each field's JSON type checked here, its value by the core.
fn rules_from(body: &Map<String, Value>) -> Result<Rules, ApiError> {
    let mut lists = BTreeMap::new();
    for field in ["routes", "allowedIps", "allowedOrigins", "decorateDomains"] {
        if let Some(items) = list(body, field, |s| Ok(s.to_owned()))? {
            lists.insert(field, items);
        }
    }
    let mut flags = BTreeMap::new();
    for field in ["conversions", "requireSignature", "test", "waitForConsent"] {
        flags.insert(field, flag(body, field)?);
    }
    let mut texts = BTreeMap::new();
    for field in ["kind", "brand", "decorateParam"] {
        if let Some(v) = body::text(body, field)? {
            texts.insert(field, v);
        }
    }
    crm_core::source::rules_from(
        |f| texts.get(f).cloned(),
        |f| lists.get(f).cloned(),
        |f| flags.get(f).copied().unwrap_or(false),
    )
    .map_err(|(field, e)| field_error(field, e))
}

fn key_json(k: &KeyInfo) -> Value {
    json!({
        "last4": k.last4,
        "createdAt": format_ts(k.created_at),
        "revokedAt": k.revoked_at.map(format_ts),
        "lastUsedAt": k.last_used_at.map(format_ts),
        "requests": k.requests,
    })
}

/// A source as the API shows it: rules, keys by their last four characters, usage. Never
/// a key, a hash or a signing secret.
fn source_json(entry: &SourceEntry) -> Value {
    let s = &entry.source;
    let mut v = json!({
        "id": s.source_id,
        "name": s.name,
        "kind": s.rules.kind,
        "brand": s.rules.brand,
        "routes": s.rules.routes,
        "allowedIps": s.rules.allowed_ips,
        "allowedOrigins": s.rules.allowed_origins,
        "requireSignature": s.rules.require_signature,
        "test": s.rules.test,
        "conversions": s.rules.conversions,
        "createdAt": format_ts(s.created_at),
        "revokedAt": s.revoked_at.map(format_ts),
        "keys": entry.keys.iter().map(|k| key_json(&k.info)).collect::<Vec<_>>(),
        "requests": entry.keys.iter().map(|k| k.info.requests).sum::<u64>(),
        "lastUsedAt": entry.keys.iter().filter_map(|k| k.info.last_used_at).max().map(format_ts),
    });
    if s.rules.kind == SourceKind::Landing {
        v["decorateDomains"] = json!(s.rules.tag.decorate_domains);
        v["decorateParam"] = json!(s.rules.tag.decorate_param);
        v["waitForConsent"] = json!(s.rules.tag.wait_for_consent);
    }
    v
}

pub async fn create(State(state): State<AppState>, bytes: Bytes) -> Result<Response, ApiError> {
    let body = body::object(&bytes)?;
    let name = crm_core::values::clean_text(&required(&body, "name")?);
    if name.chars().count() > MAX_NAME {
        let message = format!("name is longer than {MAX_NAME} characters");
        return Err(field_error("name", Invalid::new("too_long", message)));
    }
    let rules = rules_from(&body)?;
    let now = OffsetDateTime::now_utc();
    let issued = sources::create(&state.store, state.config.source_secret.as_ref(), name, rules, now)
        .await
        .map_err(api)?;
    tracing::info!(source_id = %issued.entry.source.source_id, kind = issued.entry.source.rules.kind.as_str(), "source created");
    // The answer is what was written (the list index may not show it yet).
    let mut out = source_json(&issued.entry);
    out["key"] = json!(issued.key);
    if let Some(secret) = issued.signing_secret {
        out["signingSecret"] = json!(secret);
    }
    Ok((StatusCode::CREATED, Json(out)).into_response())
}

pub async fn list_sources(State(state): State<AppState>) -> JsonResult {
    let items: Vec<Value> = state.store.sources().await?.iter().map(source_json).collect();
    Ok(Json(json!({ "items": items })))
}

pub async fn get_source(State(state): State<AppState>, ApiPath(id): ApiPath<String>) -> JsonResult {
    let entry = state.store.source(&id).await?.ok_or(ApiError::NotFound)?;
    Ok(Json(source_json(&entry)))
}

/// `DELETE /api/sources/{id}`: revokes the source and every key of it.
pub async fn revoke(State(state): State<AppState>, ApiPath(id): ApiPath<String>) -> JsonResult {
    let entry = sources::revoke(&state.store, &state.sources, &id, OffsetDateTime::now_utc())
        .await
        .map_err(api)?;
    tracing::info!(source_id = %id, "source revoked");
    Ok(Json(source_json(&entry)))
}

/// `POST /api/sources/{id}/keys`: a new key beside the others (shown once).
pub async fn add_key(State(state): State<AppState>, ApiPath(id): ApiPath<String>) -> Result<Response, ApiError> {
    let issued = sources::add_key(&state.store, &id, OffsetDateTime::now_utc())
        .await
        .map_err(api)?;
    tracing::info!(source_id = %id, "source key added");
    let mut out = source_json(&issued.entry);
    out["key"] = json!(issued.key);
    Ok((StatusCode::CREATED, Json(out)).into_response())
}

#[derive(serde::Deserialize)]
pub struct RemoveQuery {
    test: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

/// Most days one removal or voiding walks.
const MAX_REMOVE_DAYS: i64 = 92;

fn day(raw: Option<&str>, field: &'static str, default: time::Date) -> Result<time::Date, ApiError> {
    match raw {
        None => Ok(default),
        Some(raw) => time::Date::parse(raw, time::macros::format_description!("[year]-[month]-[day]")).map_err(|_| {
            field_error(
                field,
                Invalid::new("invalid_format", format!("{field} must be YYYY-MM-DD")),
            )
        }),
    }
}

/// `DELETE /api/sources/{id}/records?test=true&from=&to=`: removes the source's test
/// records of those UTC days (default: the last 30) and the test customers they made.
/// Only test records: real ones are voided, never deleted.
pub async fn remove_test_records(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    crm_http::ApiQuery(q): crm_http::ApiQuery<RemoveQuery>,
) -> JsonResult {
    if q.test.as_deref() != Some("true") {
        let message = "only test records can be removed: pass test=true";
        return Err(field_error("test", Invalid::new("invalid_value", message)));
    }
    let today = OffsetDateTime::now_utc().date();
    let to = day(q.to.as_deref(), "to", today)?;
    let (from, to) = days(day(q.from.as_deref(), "from", to - time::Duration::days(29))?, to)?;
    state.store.source(&id).await?.ok_or(ApiError::NotFound)?;
    let removed = sources::remove_test_records(&state.store, &id, from, to).await?;
    tracing::info!(source_id = %id, customers = removed.customers, "test records removed");
    Ok(Json(json!({
        "sourceId": id,
        "from": from.to_string(),
        "to": to.to_string(),
        "records": removed.records,
        "customers": removed.customers,
    })))
}

/// `from` and `to` as UTC days, `from` on or before `to`, at most `MAX_REMOVE_DAYS` apart.
fn days(from: time::Date, to: time::Date) -> Result<(time::Date, time::Date), ApiError> {
    if from > to || (to - from).whole_days() >= MAX_REMOVE_DAYS {
        let message = format!("from must be on or before to, at most {MAX_REMOVE_DAYS} days apart");
        return Err(field_error("from", Invalid::new("out_of_range", message)));
    }
    Ok((from, to))
}

/// `POST /api/sources/{id}/void` `{"from", "to"}` (UTC days): voids the source's live
/// records of those days (see `crm_app::sources::void`). Voiding twice changes nothing.
pub async fn void(State(state): State<AppState>, ApiPath(id): ApiPath<String>, bytes: Bytes) -> JsonResult {
    let body = body::object(&bytes)?;
    let from = day(
        Some(&required(&body, "from")?),
        "from",
        OffsetDateTime::now_utc().date(),
    )?;
    let to = day(Some(&required(&body, "to")?), "to", from)?;
    let (from, to) = days(from, to)?;
    state.store.source(&id).await?.ok_or(ApiError::NotFound)?;
    let voided = sources::void(&state.store, &id, from, to, OffsetDateTime::now_utc()).await?;
    tracing::info!(source_id = %id, uncounted = voided.uncounted, "source's records voided");
    Ok(Json(json!({
        "sourceId": id,
        "from": from.to_string(),
        "to": to.to_string(),
        "voided": voided.records,
        "uncounted": voided.uncounted,
        "messagesCancelled": voided.messages_cancelled,
    })))
}

/// `DELETE /api/sources/{id}/keys/{last4}`: revokes one key; the others keep working.
pub async fn revoke_key(State(state): State<AppState>, ApiPath((id, last4)): ApiPath<(String, String)>) -> JsonResult {
    let entry = sources::revoke_key(&state.store, &state.sources, &id, &last4, OffsetDateTime::now_utc())
        .await
        .map_err(api)?;
    tracing::info!(source_id = %id, "source key revoked");
    Ok(Json(source_json(&entry)))
}
