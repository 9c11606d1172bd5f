//! Ingest sources (`/api/sources`): create one (its key, and its signing secret when it
//! signs, are in the 201 answer and never again), list them with their keys' last four
//! characters and usage, add a key (rotation), revoke a key or the whole source.

use std::collections::BTreeSet;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use crm_app::sources::{self, SourceError};
use crm_core::input::{FieldError, optional, required};
use crm_core::source::{Cidr, KeyInfo, Origin, Route, Rules, SourceKind};
use crm_core::values::{Brand, Invalid, ts};
use crm_http::{ApiError, ApiJson, ApiPath, AppState, Items, JsonResult};
use crm_store::SourceEntry;
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::OffsetDateTime;

/// Longest source name.
const MAX_NAME: usize = 100;

fn api(e: SourceError) -> ApiError {
    match e {
        SourceError::Store(s) => s.into(),
        SourceError::NotFound => ApiError::NotFound,
        SourceError::Revoked => ApiError::Conflict("the source is revoked".into()),
        SourceError::NoSigningSecret => ApiError::Internal(e.to_string()),
    }
}

/// A source as sent (`POST /api/sources`): its name and rules.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceBody {
    name: Option<String>,
    kind: Option<String>,
    brand: Option<String>,
    decorate_param: Option<String>,
    routes: Option<Vec<String>>,
    allowed_ips: Option<Vec<String>>,
    allowed_origins: Option<Vec<String>>,
    decorate_domains: Option<Vec<String>>,
    conversions: Option<bool>,
    require_signature: Option<bool>,
    test: Option<bool>,
    wait_for_consent: Option<bool>,
}

/// A new source, checked: its name, and rules the core validated as a whole.
pub struct NewSource {
    name: String,
    rules: Rules,
}

fn source_name(raw: &str) -> Result<String, Invalid> {
    let name = crm_core::values::clean_text(raw);
    if name.chars().count() > MAX_NAME {
        return Err(Invalid::new(
            "too_long",
            format!("name is longer than {MAX_NAME} characters"),
        ));
    }
    Ok(name)
}

impl TryFrom<SourceBody> for NewSource {
    type Error = FieldError;
    fn try_from(b: SourceBody) -> Result<Self, FieldError> {
        let name = required("name", b.name.as_deref(), source_name)?;
        let text = |f: &'static str| match f {
            "kind" => b.kind.clone(),
            "brand" => b.brand.clone(),
            "decorateParam" => b.decorate_param.clone(),
            _ => None,
        };
        let list = |f: &'static str| match f {
            "routes" => b.routes.clone(),
            "allowedIps" => b.allowed_ips.clone(),
            "allowedOrigins" => b.allowed_origins.clone(),
            "decorateDomains" => b.decorate_domains.clone(),
            _ => None,
        };
        let flag = |f: &'static str| match f {
            "conversions" => b.conversions,
            "requireSignature" => b.require_signature,
            "test" => b.test,
            "waitForConsent" => b.wait_for_consent,
            _ => None,
        };
        let rules = crm_core::source::rules_from(text, list, |f| flag(f).unwrap_or(false))
            .map_err(|(field, e)| FieldError::new(field, e))?;
        Ok(Self { name, rules })
    }
}

/// A landing source's tag settings, shown for landing sources only.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TagView {
    decorate_domains: Vec<crm_core::source::Domain>,
    decorate_param: crm_core::source::ParamName,
    wait_for_consent: bool,
}

/// A source as the API shows it: rules, keys by their last four characters, usage. Never
/// a key, a hash or a signing secret (`key` and `signingSecret` only in the answer that
/// made them).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceView {
    id: String,
    name: String,
    kind: SourceKind,
    brand: Option<Brand>,
    routes: BTreeSet<Route>,
    allowed_ips: Vec<Cidr>,
    allowed_origins: Vec<Origin>,
    require_signature: bool,
    test: bool,
    conversions: bool,
    #[serde(with = "ts")]
    created_at: OffsetDateTime,
    #[serde(with = "ts::option")]
    revoked_at: Option<OffsetDateTime>,
    /// Its keys by their last four characters: never a key or its hash.
    keys: Vec<KeyInfo>,
    requests: u64,
    #[serde(with = "ts::option")]
    last_used_at: Option<OffsetDateTime>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    tag: Option<TagView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    signing_secret: Option<String>,
}

impl From<SourceEntry> for SourceView {
    fn from(entry: SourceEntry) -> Self {
        let keys: Vec<KeyInfo> = entry.keys.into_iter().map(|k| k.info).collect();
        let s = entry.source;
        let r = s.rules;
        Self {
            id: s.source_id,
            name: s.name,
            kind: r.kind,
            brand: r.brand,
            routes: r.routes,
            allowed_ips: r.allowed_ips,
            allowed_origins: r.allowed_origins,
            require_signature: r.require_signature,
            test: r.test,
            conversions: r.conversions,
            created_at: s.created_at,
            revoked_at: s.revoked_at,
            requests: keys.iter().map(|k| k.requests).sum(),
            last_used_at: keys.iter().filter_map(|k| k.last_used_at).max(),
            keys,
            tag: (r.kind == SourceKind::Landing).then_some(TagView {
                decorate_domains: r.tag.decorate_domains,
                decorate_param: r.tag.decorate_param,
                wait_for_consent: r.tag.wait_for_consent,
            }),
            key: None,
            signing_secret: None,
        }
    }
}

pub async fn create(State(state): State<AppState>, ApiJson(body): ApiJson<SourceBody>) -> Result<Response, ApiError> {
    let NewSource { name, rules } = body.try_into()?;
    let now = OffsetDateTime::now_utc();
    let issued = sources::create(&state.store, state.config.source_secret.as_ref(), name, rules, now)
        .await
        .map_err(api)?;
    tracing::info!(source_id = %issued.entry.source.source_id, kind = issued.entry.source.rules.kind.as_str(), "source created");
    // The answer is what was written (the list index may not show it yet).
    let view = SourceView {
        key: Some(issued.key),
        signing_secret: issued.signing_secret,
        ..issued.entry.into()
    };
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

pub async fn list_sources(State(state): State<AppState>) -> Result<Json<Items<SourceView>>, ApiError> {
    let items = sources::list(&state.store)
        .await?
        .into_iter()
        .map(SourceView::from)
        .collect();
    Ok(Json(Items { items }))
}

pub async fn get_source(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<SourceView>, ApiError> {
    let entry = sources::get(&state.store, &id).await.map_err(api)?;
    Ok(Json(entry.into()))
}

/// `DELETE /api/sources/{id}`: revokes the source and every key of it.
pub async fn revoke(State(state): State<AppState>, ApiPath(id): ApiPath<String>) -> Result<Json<SourceView>, ApiError> {
    let entry = sources::revoke(&state.store, &state.sources, &id, OffsetDateTime::now_utc())
        .await
        .map_err(api)?;
    tracing::info!(source_id = %id, "source revoked");
    Ok(Json(entry.into()))
}

/// `POST /api/sources/{id}/keys`: a new key beside the others (shown once).
pub async fn add_key(State(state): State<AppState>, ApiPath(id): ApiPath<String>) -> Result<Response, ApiError> {
    let issued = sources::add_key(&state.store, &id, OffsetDateTime::now_utc())
        .await
        .map_err(api)?;
    tracing::info!(source_id = %id, "source key added");
    let view = SourceView {
        key: Some(issued.key),
        ..issued.entry.into()
    };
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

#[derive(serde::Deserialize)]
pub struct RemoveQuery {
    test: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

/// Most days one removal or voiding walks.
const MAX_REMOVE_DAYS: i64 = 92;

fn parse_day(field: &str, raw: &str) -> Result<time::Date, Invalid> {
    time::Date::parse(raw, time::macros::format_description!("[year]-[month]-[day]"))
        .map_err(|_| Invalid::new("invalid_format", format!("{field} must be YYYY-MM-DD")))
}

fn day(raw: Option<&str>, field: &'static str, default: time::Date) -> Result<time::Date, ApiError> {
    Ok(optional(field, raw, |raw| parse_day(field, raw))?.unwrap_or(default))
}

/// `POST /api/sources/{id}/void` as sent: UTC days.
#[derive(Deserialize)]
pub struct DaysBody {
    from: Option<String>,
    to: Option<String>,
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
        return Err(ApiError::invalid("test", Invalid::new("invalid_value", message)));
    }
    let today = OffsetDateTime::now_utc().date();
    let to = day(q.to.as_deref(), "to", today)?;
    let (from, to) = days(day(q.from.as_deref(), "from", to - time::Duration::days(29))?, to)?;
    let removed = sources::remove_test_records(&state.store, &id, from, to)
        .await
        .map_err(api)?;
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
        return Err(ApiError::invalid("from", Invalid::new("out_of_range", message)));
    }
    Ok((from, to))
}

/// `POST /api/sources/{id}/void` `{"from", "to"}` (UTC days): voids the source's live
/// records of those days (see `crm_app::sources::void`). Voiding twice changes nothing.
pub async fn void(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<DaysBody>,
) -> JsonResult {
    let from = required("from", body.from.as_deref(), |raw| parse_day("from", raw))?;
    let to = required("to", body.to.as_deref(), |raw| parse_day("to", raw))?;
    let (from, to) = days(from, to)?;
    let voided = sources::void(&state.store, &id, from, to, OffsetDateTime::now_utc())
        .await
        .map_err(api)?;
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
pub async fn revoke_key(
    State(state): State<AppState>,
    ApiPath((id, last4)): ApiPath<(String, String)>,
) -> Result<Json<SourceView>, ApiError> {
    let entry = sources::revoke_key(&state.store, &state.sources, &id, &last4, OffsetDateTime::now_utc())
        .await
        .map_err(api)?;
    tracing::info!(source_id = %id, "source key revoked");
    Ok(Json(entry.into()))
}
