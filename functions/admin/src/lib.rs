//! The authenticated read API (`Authorization: Bearer <ADMIN_API_KEY>`): customer profiles,
//! lookups by identifier, timelines, and paginated recent clicks, leads and events.
//! Every read is a GetItem or a Query on a key; nothing scans the table.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::AttributeValue;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router, middleware};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use crm_core::identity::Identifier;
use crm_core::profile::Profile;
use crm_core::values::{Brand, ClickId, CustomerId, DeviceId, Email, PhoneE164, UserId, format_ts};
use crm_platform::AppState;
use crm_platform::http::{self, ApiError, ApiPath, ApiQuery};
use crm_platform::keys::{self, Activity};
use crm_platform::store::{Item, item_to_json};
use serde::Deserialize;
use serde_json::{Value, json};
use time::{Date, OffsetDateTime};

/// The paths this function serves (each also an HttpApi route in `template.yaml`).
pub const ROUTES: &[&str] = &[
    "/api/customers",
    "/api/customers/{id}",
    "/api/customers/{id}/timeline",
    "/api/clicks",
    "/api/leads",
    "/api/events",
    "/api/brands/{brand}",
];

pub fn router(state: AppState) -> Router {
    if state.config.admin_api_key.is_none() {
        tracing::error!("ADMIN_API_KEY is not set: every admin request will be refused");
    }
    let routes = Router::new()
        .route("/api/customers", get(lookup))
        .route("/api/customers/{id}", get(customer))
        .route("/api/customers/{id}/timeline", get(timeline))
        .route("/api/clicks", get(|s, q| feed(s, q, Activity::Click)))
        .route("/api/leads", get(|s, q| feed(s, q, Activity::Lead)))
        .route("/api/events", get(|s, q| feed(s, q, Activity::Event)))
        .route("/api/brands/{brand}", get(brand_stats))
        .route_layer(middleware::from_fn_with_state(state.clone(), http::require_admin))
        .with_state(state);
    http::finish(routes)
}

const DEFAULT_LIMIT: i32 = 50;
const MAX_LIMIT: i32 = 200;
/// How many empty days a recent-list page walks back before it stops.
pub const FEED_LOOKBACK_DAYS: u32 = 31;

fn limit(raw: Option<i32>) -> Result<i32, ApiError> {
    match raw {
        None => Ok(DEFAULT_LIMIT),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(_) => Err(ApiError::Field(crm_core::input::FieldError {
            field: "limit",
            code: "out_of_range",
            message: format!("limit must be between 1 and {MAX_LIMIT}"),
        })),
    }
}

fn field_error(field: &'static str, e: crm_core::values::Invalid) -> ApiError {
    ApiError::Field(crm_core::input::FieldError {
        field,
        code: e.code,
        message: e.message,
    })
}

fn profile_json(p: &Profile, requested: &CustomerId) -> Value {
    let mut body = json!({
        "customerId": p.id,
        "firstName": p.first_name,
        "lastName": p.last_name,
        "identifiers": p.identifiers.iter().map(|i| json!({"type": i.kind().as_str(), "value": i.value()})).collect::<Vec<_>>(),
        "journeys": p.journeys(),
        "revenue": p.revenue.iter().map(|(c, a)| (c.to_string(), a.to_string())).collect::<BTreeMap<_, _>>(),
        "mergedFrom": p.merged_from,
        "createdAt": format_ts(p.created_at),
        "updatedAt": format_ts(p.updated_at),
    });
    if *requested != p.id {
        body["resolvedFrom"] = json!(requested);
    }
    body
}

async fn current(state: &AppState, id: &CustomerId) -> Result<Profile, ApiError> {
    state.store.current_profile(id).await?.ok_or(ApiError::NotFound)
}

fn customer_id(raw: &str) -> Result<CustomerId, ApiError> {
    CustomerId::parse(raw).map_err(|_| ApiError::NotFound)
}

async fn customer(State(state): State<AppState>, ApiPath(id): ApiPath<String>) -> Result<Json<Value>, ApiError> {
    let id = customer_id(&id)?;
    Ok(Json(profile_json(&current(&state, &id).await?, &id)))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LookupQuery {
    email: Option<String>,
    phone: Option<String>,
    click_id: Option<String>,
    device_id: Option<String>,
    user_id: Option<String>,
    operator_id: Option<String>,
}

async fn lookup(State(state): State<AppState>, ApiQuery(q): ApiQuery<LookupQuery>) -> Result<Json<Value>, ApiError> {
    let identifier = if let Some(v) = &q.email {
        Identifier::Email(Email::parse(v).map_err(|e| field_error("email", e))?)
    } else if let Some(v) = &q.phone {
        Identifier::Phone(PhoneE164::parse(v, state.config.defaults.phone_region).map_err(|e| field_error("phone", e))?)
    } else if let Some(v) = &q.click_id {
        Identifier::ClickId(ClickId::parse(v).map_err(|e| field_error("clickId", e))?)
    } else if let Some(v) = &q.device_id {
        Identifier::DeviceId(DeviceId::parse(v).map_err(|e| field_error("deviceId", e))?)
    } else if let Some(v) = &q.user_id {
        let operator = q.operator_id.as_deref().ok_or_else(|| {
            field_error(
                "operatorId",
                crm_core::values::Invalid::new("missing", "userId lookups need operatorId"),
            )
        })?;
        Identifier::UserId {
            operator: Brand::parse(operator).map_err(|e| field_error("operatorId", e))?,
            user: UserId::parse(v).map_err(|e| field_error("userId", e))?,
        }
    } else {
        return Err(field_error(
            "email",
            crm_core::values::Invalid::new("missing", "one of email, phone, clickId, deviceId, userId is required"),
        ));
    };
    let owner = state.store.owner(&identifier).await?.ok_or(ApiError::NotFound)?;
    Ok(Json(profile_json(&current(&state, &owner).await?, &owner)))
}

#[derive(Deserialize)]
struct PageQuery {
    limit: Option<i32>,
    cursor: Option<String>,
    /// Recent lists only: start from this day (`YYYY-MM-DD`, UTC) instead of today.
    day: Option<String>,
}

fn bad_cursor() -> ApiError {
    ApiError::Field(crm_core::input::FieldError {
        field: "cursor",
        code: "invalid_format",
        message: "cursor is not one we issued".into(),
    })
}

fn decode_cursor<T: for<'de> Deserialize<'de>>(raw: &str) -> Result<T, ApiError> {
    let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| bad_cursor())?;
    serde_json::from_slice(&bytes).map_err(|_| bad_cursor())
}

fn encode_cursor(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

fn entry(item: Item) -> (String, Value) {
    let sort = match item.get(keys::GSI1SK) {
        Some(AttributeValue::S(s)) => s.clone(),
        _ => String::new(),
    };
    let kind = match item.get(keys::ENTITY) {
        Some(AttributeValue::S(s)) => s.to_ascii_lowercase(),
        _ => "unknown".into(),
    };
    let mut body = item_to_json(item);
    body["type"] = kind.into();
    (sort, body)
}

/// Clicks, leads, events and merges of a customer and of every customer merged into it,
/// newest first.
async fn timeline(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<Value>, ApiError> {
    let id = customer_id(&id)?;
    let limit = limit(q.limit)?;
    let before: Option<String> = q.cursor.as_deref().map(decode_cursor).transpose()?;
    let profile = current(&state, &id).await?;
    let mut entries = Vec::new();
    for customer in std::iter::once(&profile.id).chain(&profile.merged_from) {
        entries.extend(
            state
                .store
                .timeline(customer, before.as_deref(), limit)
                .await?
                .into_iter()
                .map(entry),
        );
    }
    entries.sort_by(|a, b| b.0.cmp(&a.0));
    entries.truncate(limit as usize);
    let next = (entries.len() == limit as usize).then(|| encode_cursor(&json!(entries.last().map(|e| &e.0))));
    Ok(Json(json!({
        "customerId": profile.id,
        "items": entries.into_iter().map(|e| e.1).collect::<Vec<_>>(),
        "nextCursor": next,
    })))
}

fn strings(item: &Item) -> HashMap<String, String> {
    item.iter()
        .filter_map(|(k, v)| match v {
            AttributeValue::S(s) => Some((k.clone(), s.clone())),
            _ => None,
        })
        .collect()
}

fn parse_day(raw: &str) -> Result<Date, ApiError> {
    Date::parse(raw, time::macros::format_description!("[year]-[month]-[day]")).map_err(|_| {
        ApiError::Field(crm_core::input::FieldError {
            field: "day",
            code: "invalid_format",
            message: "day must be YYYY-MM-DD".into(),
        })
    })
}

/// Recent activity of one kind, newest first, a day partition at a time.
async fn feed(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<PageQuery>,
    kind: Activity,
) -> Result<Json<Value>, ApiError> {
    let limit = limit(q.limit)?;
    #[derive(Deserialize)]
    struct Cursor {
        day: String,
        key: Option<HashMap<String, String>>,
    }
    let (mut day, mut start) = match (&q.cursor, &q.day) {
        (Some(c), _) => {
            let c: Cursor = decode_cursor(c)?;
            (
                parse_day(&c.day)?,
                c.key
                    .map(|k| k.into_iter().map(|(k, v)| (k, AttributeValue::S(v))).collect::<Item>()),
            )
        }
        (None, Some(d)) => (parse_day(d)?, None),
        (None, None) => (OffsetDateTime::now_utc().date(), None),
    };
    let mut items = Vec::new();
    let mut next = None;
    for _ in 0..FEED_LOOKBACK_DAYS {
        let day_str = day.to_string();
        let (page, last_key) = state
            .store
            .feed_page(kind, &day_str, start.take(), limit - items.len() as i32)
            .await?;
        items.extend(page.into_iter().map(item_to_json));
        let Some(previous) = day.previous_day() else { break };
        if items.len() as i32 >= limit {
            next = Some(match last_key {
                Some(k) => json!({"day": day_str, "key": strings(&k)}),
                None => json!({"day": previous.to_string(), "key": null}),
            });
            break;
        }
        match last_key {
            Some(k) => start = Some(k),
            None => day = previous,
        }
    }
    Ok(Json(
        json!({"items": items, "nextCursor": next.map(|c| encode_cursor(&c))}),
    ))
}

/// Conversion counts and revenue per currency of one brand.
async fn brand_stats(State(state): State<AppState>, ApiPath(brand): ApiPath<String>) -> Result<Json<Value>, ApiError> {
    let brand = Brand::parse(&brand).map_err(|_| ApiError::NotFound)?;
    let item = state
        .store
        .get(&keys::brand_pk(&brand), keys::STATS_SK)
        .await?
        .ok_or(ApiError::NotFound)?;
    let (mut events, mut revenue) = (BTreeMap::new(), BTreeMap::new());
    for (attr, value) in &item {
        let AttributeValue::N(n) = value else { continue };
        if let Some(kind) = attr.strip_prefix(&keys::brand_count_attr("")) {
            events.insert(kind.to_owned(), json!(n.parse::<u64>().unwrap_or(0)));
        } else if let Some(currency) = attr.strip_prefix(&keys::brand_revenue_attr("")) {
            revenue.insert(currency.to_owned(), json!(n));
        }
    }
    Ok(Json(json!({"brand": brand, "events": events, "revenue": revenue})))
}
