//! Customers: lookups by identifier, profiles, timelines, choosing a primary address,
//! erasure; and the recent clicks, leads and events. Every read is a GetItem or a Query on
//! a key; nothing scans the table.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use axum::{Extension, Json};
use crm_app::customers::ContactError;
use crm_core::access::Actor;
use crm_core::identity::Identifier;
use crm_core::input::required;
use crm_core::profile::Profile;
use crm_core::records::{Activity, RecordKind};
use crm_core::source::SourceKind;
use crm_core::values::{Brand, ClickId, CustomerId, DeviceId, Email, Invalid, PhoneE164, UserId, format_ts, ts};
use crm_http::{ApiError, ApiJson, ApiPath, ApiQuery, AppState, JsonResult};
use crm_providers::parked::ParkedQueues;
use crm_store::{FeedPosition, TimelinePosition};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::{FEED_LOOKBACK_DAYS, bad_cursor, decode_cursor, encode_cursor, field_error, limit, parse_day};

/// An identifier as the profile shows it; an address also says where it came from, when,
/// whether it was confirmed, and whether it is its channel's primary.
#[derive(Serialize)]
struct IdentifierView {
    #[serde(rename = "type")]
    kind: &'static str,
    value: String,
    #[serde(flatten)]
    address: Option<AddressView>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AddressView {
    source: Option<SourceKind>,
    #[serde(with = "ts::option")]
    added_at: Option<OffsetDateTime>,
    #[serde(with = "ts::option")]
    confirmed_at: Option<OffsetDateTime>,
    primary: bool,
}

impl IdentifierView {
    fn of(p: &Profile, i: &Identifier) -> Self {
        let address = crm_core::contact::channel_of(i).map(|channel| {
            let point = p.contacts.points.get(i);
            AddressView {
                source: point.and_then(|c| c.source),
                added_at: point.map(|c| c.at),
                confirmed_at: point.and_then(|c| c.confirmed_at),
                primary: p.primary(channel) == Some(i),
            }
        });
        Self {
            kind: i.kind().as_str(),
            value: i.value(),
            address,
        }
    }
}

/// A customer's profile as the API shows it: consents by brand and channel, revenue per
/// currency; `resolvedFrom` when the id asked for was merged into this one.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ProfileView<'a> {
    customer_id: &'a CustomerId,
    first_name: &'a Option<String>,
    last_name: &'a Option<String>,
    identifiers: Vec<IdentifierView>,
    journeys: Vec<crm_core::journey::Journey>,
    revenue: BTreeMap<String, String>,
    merged_from: &'a std::collections::BTreeSet<CustomerId>,
    consents: BTreeMap<&'a str, BTreeMap<&'a str, &'a crm_core::compliance::Consent>>,
    exclusions: &'a BTreeMap<Brand, crm_core::compliance::Exclusion>,
    timezone: &'a Option<crm_core::quiet::ZoneName>,
    test: bool,
    #[serde(with = "ts")]
    created_at: OffsetDateTime,
    #[serde(with = "ts")]
    updated_at: OffsetDateTime,
    #[serde(skip_serializing_if = "Option::is_none")]
    resolved_from: Option<&'a CustomerId>,
}

impl<'a> ProfileView<'a> {
    fn of(p: &'a Profile, requested: &'a CustomerId) -> Self {
        let mut consents: BTreeMap<&str, BTreeMap<&str, &crm_core::compliance::Consent>> = BTreeMap::new();
        for ((brand, channel), c) in &p.consents {
            consents.entry(brand.as_str()).or_default().insert(channel.as_str(), c);
        }
        Self {
            customer_id: &p.id,
            first_name: &p.first_name,
            last_name: &p.last_name,
            identifiers: p.identifiers.iter().map(|i| IdentifierView::of(p, i)).collect(),
            journeys: p.journeys(),
            revenue: p.revenue.iter().map(|(c, a)| (c.to_string(), a.to_string())).collect(),
            merged_from: &p.merged_from,
            consents,
            exclusions: &p.exclusions,
            timezone: &p.timezone,
            test: p.test,
            created_at: p.created_at,
            updated_at: p.updated_at,
            resolved_from: (*requested != p.id).then_some(requested),
        }
    }
}

/// The profile of `id` as it is now, as the API shows it.
async fn profile_view(state: &AppState, id: &CustomerId) -> Result<Json<Value>, ApiError> {
    let profile = current(state, id).await?;
    Ok(Json(json!(ProfileView::of(&profile, id))))
}

pub(crate) async fn current(state: &AppState, id: &CustomerId) -> Result<Profile, ApiError> {
    crm_app::customers::current(&state.store, id)
        .await?
        .ok_or(ApiError::NotFound)
}

pub(crate) fn customer_id(raw: &str) -> Result<CustomerId, ApiError> {
    CustomerId::parse(raw).map_err(|_| ApiError::NotFound)
}

pub(crate) async fn customer(State(state): State<AppState>, ApiPath(id): ApiPath<String>) -> JsonResult {
    let id = customer_id(&id)?;
    profile_view(&state, &id).await
}

/// `PUT /api/customers/{id}/contacts/primary` as sent.
#[derive(serde::Deserialize)]
pub struct PrimaryBody {
    channel: Option<String>,
    address: Option<String>,
}

/// `PUT /api/customers/{id}/contacts/primary` `{"channel": "email"|"sms", "address"}`: makes
/// one of the customer's addresses the primary on its channel (where messages go), recorded
/// on the timeline.
pub(crate) async fn choose_primary(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<PrimaryBody>,
) -> JsonResult {
    let channel = required("channel", body.channel.as_deref(), crm_core::definition::Channel::parse)?;
    let raw = required("address", body.address.as_deref(), crm_core::input::text)?;
    let identifier = match channel {
        crm_core::definition::Channel::Email => {
            Identifier::Email(Email::parse(&raw).map_err(|e| field_error("address", e))?)
        }
        crm_core::definition::Channel::Sms => Identifier::Phone(
            PhoneE164::parse(&raw, state.config.defaults.phone_region).map_err(|e| field_error("address", e))?,
        ),
    };
    let id = customer_id(&id)?;
    let now = OffsetDateTime::now_utc();
    let profile = match crm_app::customers::choose_primary(&state.store, &id, identifier, &actor.name, now).await {
        Ok(p) => p,
        Err(ContactError::NoSuchCustomer) => return Err(ApiError::NotFound),
        Err(ContactError::NotListed) => {
            return Err(field_error(
                "address",
                Invalid::new("not_listed", "not an address of this customer"),
            ));
        }
        Err(ContactError::Store(e)) => return Err(e.into()),
    };
    Ok(Json(json!(ProfileView::of(&profile, &profile.id))))
}

/// `DELETE /api/customers/{id}`: erases the person (see `crm_app::compliance::erase`) and
/// answers what was erased, recording who asked (the authenticated actor).
pub(crate) async fn erase(
    State(state): State<AppState>,
    Extension(parked): Extension<Arc<ParkedQueues>>,
    Extension(actor): Extension<Actor>,
    ApiPath(id): ApiPath<String>,
) -> JsonResult {
    let id = customer_id(&id)?;
    let keys = state
        .config
        .unsubscribe
        .as_ref()
        .ok_or_else(|| ApiError::Internal("UNSUBSCRIBE_SECRET is not set".into()))?;
    let now = OffsetDateTime::now_utc();
    let purge = |needles: Vec<String>| async move { parked.purge(&needles).await.map_err(|e| e.to_string()) };
    let record = crm_app::compliance::erase(&state.store, keys, &id, &actor.name, now, purge)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(json!({
        "status": "erased",
        "customerId": record.customer_id,
        "customers": record.customers,
        "erasedAt": format_ts(record.erased_at),
        "erasedBy": record.erased_by,
        "erased": record.erased,
        "kept": ["journeys", "revenue totals", "brand statistics", "event types, amounts and times", "suppression entries as keyed hashes"],
    })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LookupQuery {
    email: Option<String>,
    phone: Option<String>,
    click_id: Option<String>,
    device_id: Option<String>,
    user_id: Option<String>,
    operator_id: Option<String>,
}

fn lookup_identifier(q: &LookupQuery, state: &AppState) -> Result<Identifier, ApiError> {
    if let Some(v) = &q.email {
        return Ok(Identifier::Email(Email::parse(v).map_err(|e| field_error("email", e))?));
    }
    if let Some(v) = &q.phone {
        let region = state.config.defaults.phone_region;
        return Ok(Identifier::Phone(
            PhoneE164::parse(v, region).map_err(|e| field_error("phone", e))?,
        ));
    }
    if let Some(v) = &q.click_id {
        return Ok(Identifier::ClickId(
            ClickId::parse(v).map_err(|e| field_error("clickId", e))?,
        ));
    }
    if let Some(v) = &q.device_id {
        return Ok(Identifier::DeviceId(
            DeviceId::parse(v).map_err(|e| field_error("deviceId", e))?,
        ));
    }
    if let Some(v) = &q.user_id {
        let operator = q
            .operator_id
            .as_deref()
            .ok_or_else(|| field_error("operatorId", Invalid::new("missing", "userId lookups need operatorId")))?;
        return Ok(Identifier::UserId {
            operator: Brand::parse(operator).map_err(|e| field_error("operatorId", e))?,
            user: UserId::parse(v).map_err(|e| field_error("userId", e))?,
        });
    }
    Err(field_error(
        "email",
        Invalid::new("missing", "one of email, phone, clickId, deviceId, userId is required"),
    ))
}

pub(crate) async fn lookup(State(state): State<AppState>, ApiQuery(q): ApiQuery<LookupQuery>) -> JsonResult {
    let identifier = lookup_identifier(&q, &state)?;
    let owner = crm_app::customers::owner(&state.store, &identifier)
        .await?
        .ok_or(ApiError::NotFound)?;
    profile_view(&state, &owner).await
}

#[derive(Deserialize)]
pub(crate) struct PageQuery {
    limit: Option<i32>,
    cursor: Option<String>,
    /// Recent lists only: start from this day (`YYYY-MM-DD`, UTC) instead of today.
    day: Option<String>,
}

/// What a cursor carries: where the previous page ended.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum Cursor {
    Timeline {
        before: String,
    },
    Feed {
        #[serde(with = "crm_core::values::ts")]
        at: OffsetDateTime,
        id: String,
    },
}

/// `items` and a `nextCursor` that is `null` exactly when there is nothing more.
fn page<T: Serialize>(items: &[T], next: Option<Cursor>) -> Value {
    json!({"items": items, "nextCursor": next.map(|c| encode_cursor(&c))})
}

/// Clicks, leads, events and merges of a customer and of every customer merged into it,
/// newest first. Each id is read one past the limit, so the last page says so.
pub(crate) async fn timeline(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> JsonResult {
    let id = customer_id(&id)?;
    let limit = limit(q.limit)?;
    let before = match q.cursor.as_deref().map(decode_cursor::<Cursor>).transpose()? {
        Some(Cursor::Timeline { before }) => Some(TimelinePosition(before)),
        Some(Cursor::Feed { .. }) => return Err(bad_cursor()),
        None => None,
    };
    let profile = current(&state, &id).await?;
    let (entries, more) =
        crm_app::customers::timeline(&state.store, &profile, before.as_ref(), limit, usize::MAX).await?;
    let next = more.then(|| Cursor::Timeline {
        before: entries.last().map(|e| e.0.0.clone()).unwrap_or_default(),
    });
    let mut items: Vec<Value> = entries.iter().map(|e| json!(e.1)).collect();
    name_sources(&state, &mut items).await?;
    let mut body = page(&items, next);
    body["customerId"] = json!(profile.id);
    Ok(Json(body))
}

/// Recent records of one kind, newest first, a day partition at a time, walking back at
/// most `FEED_LOOKBACK_DAYS` days. One record past the limit is read, so `nextCursor` is
/// `null` exactly at the end.
pub(crate) async fn feed(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<PageQuery>,
    kind: RecordKind,
) -> JsonResult {
    let limit = limit(q.limit)?;
    let (day, after) = match (q.cursor.as_deref().map(decode_cursor::<Cursor>).transpose()?, &q.day) {
        (Some(Cursor::Feed { at, id }), _) => (at.date(), Some(FeedPosition { at, id })),
        (Some(Cursor::Timeline { .. }), _) => return Err(bad_cursor()),
        (None, Some(d)) => (parse_day(d)?, None),
        (None, None) => (OffsetDateTime::now_utc().date(), None),
    };
    let (records, more) = crm_app::customers::feed(
        &state.store,
        kind,
        day,
        after,
        limit as usize,
        FEED_LOOKBACK_DAYS as usize,
    )
    .await?;
    let next = records.last().filter(|_| more).map(|last| Cursor::Feed {
        at: last.at(),
        id: last.id().to_owned(),
    });
    // Every item of a list has the list's kind, so the `type` tag is left out.
    let mut items: Vec<Value> = records.iter().map(untagged).collect();
    name_sources(&state, &mut items).await?;
    Ok(Json(page(&items, next)))
}

/// Adds `sourceName` beside each record's `sourceId` (one read of the source list, only
/// when a record has a source).
async fn name_sources(state: &AppState, items: &mut [Value]) -> Result<(), ApiError> {
    if !items.iter().any(|i| i["sourceId"].is_string()) {
        return Ok(());
    }
    let names: BTreeMap<String, String> = crm_app::sources::list(&state.store)
        .await?
        .into_iter()
        .map(|e| (e.source.source_id, e.source.name))
        .collect();
    for item in items {
        let name = item["sourceId"].as_str().and_then(|id| names.get(id)).cloned();
        if let (Some(name), Some(o)) = (name, item.as_object_mut()) {
            o.insert("sourceName".into(), json!(name));
        }
    }
    Ok(())
}

fn untagged(record: &Activity) -> Value {
    let mut v = serde_json::to_value(record).unwrap_or(Value::Null);
    if let Some(o) = v.as_object_mut() {
        o.remove("type");
    }
    v
}
