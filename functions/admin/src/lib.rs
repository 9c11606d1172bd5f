//! The admin API (`Authorization: Bearer <user key or ADMIN_API_KEY>`): this file is its
//! router and what its resources share (limits, cursors, days); each resource is a module
//! (`customers`: profiles, lookups, timelines, erasure and the recent lists; `messaging`;
//! `suppressions`; `partners`; `reports`; `exports`; `sources`; `users`). Every read is a
//! GetItem or a Query on a key; nothing scans the table. The use cases live in the shared
//! crates (`crm_app`, `crm_messaging`); the modules parse requests and shape answers.

use std::sync::Arc;

use axum::routing::{delete, get, post, put};
use axum::{Extension, Router, middleware};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use crm_core::input::FieldError;
use crm_core::records::RecordKind;
use crm_core::values::Invalid;
use crm_http::{ApiError, AppState, HttpFunction};
use crm_providers::parked::ParkedQueues;
use serde::Serialize;
use time::Date;

/// The paths this function serves (each also an HttpApi route in `template.yaml`).
pub const ROUTES: &[&str] = &[
    "/api/customers",
    "/api/customers/{id}",
    "/api/customers/{id}/timeline",
    "/api/customers/{id}/contacts/primary",
    "/api/clicks",
    "/api/leads",
    "/api/events",
    "/api/brands/{brand}",
    "/api/brands/{brand}/journey",
    "/api/brands/{brand}/settings",
    "/api/templates",
    "/api/templates/preview",
    "/api/templates/{id}",
    "/api/customers/{id}/messages",
    "/api/messages",
    "/api/suppressions",
    "/api/suppressions/{channel}/{address}",
    "/api/influencers",
    "/api/influencers/{id}",
    "/api/links",
    "/api/links/{code}",
    "/api/campaigns",
    "/api/campaigns/{id}",
    "/api/reports",
    "/api/fx-rates",
    "/api/exports/{kind}",
    "/api/sources",
    "/api/sources/{id}",
    "/api/sources/{id}/keys",
    "/api/sources/{id}/keys/{last4}",
    "/api/sources/{id}/records",
    "/api/users",
    "/api/users/{id}",
    "/api/users/{id}/sessions",
    "/api/users/{id}/keys",
    "/api/users/{id}/keys/{last4}",
    "/api/sources/{id}/void",
];

pub const FUNCTION: HttpFunction = HttpFunction {
    logical_id: "AdminFunction",
    binary: "admin",
    needs: &[
        crm_app::config::Needs::UnsubscribeSecret,
        crm_app::config::Needs::SourceSecret,
    ],
    routes: ROUTES,
    router,
};

pub fn router(state: AppState) -> Router {
    if state.config.admin_api_key.is_none() {
        tracing::error!("ADMIN_API_KEY is not set: every admin request will be refused");
    }
    let parked: Arc<ParkedQueues> = state.extension();
    let routes = Router::new()
        .route("/api/customers", get(customers::lookup))
        .route("/api/customers/{id}", get(customers::customer).delete(customers::erase))
        .route("/api/customers/{id}/timeline", get(customers::timeline))
        .route("/api/customers/{id}/contacts/primary", put(customers::choose_primary))
        .route("/api/clicks", get(|s, q| customers::feed(s, q, RecordKind::Click)))
        .route("/api/leads", get(|s, q| customers::feed(s, q, RecordKind::Lead)))
        .route("/api/events", get(|s, q| customers::feed(s, q, RecordKind::Event)))
        .route("/api/brands/{brand}", get(reports::brand))
        .route(
            "/api/brands/{brand}/journey",
            get(messaging::get_journey).put(messaging::put_journey),
        )
        .route(
            "/api/brands/{brand}/settings",
            get(messaging::get_settings).put(messaging::put_settings),
        )
        .route(
            "/api/templates",
            get(messaging::list_templates).post(messaging::create_template),
        )
        .route("/api/templates/preview", post(messaging::preview))
        .route(
            "/api/templates/{id}",
            get(messaging::get_template)
                .put(messaging::put_template)
                .delete(messaging::delete_template),
        )
        .route("/api/customers/{id}/messages", get(messaging::customer_messages))
        .route("/api/messages", get(messaging::messages))
        .route("/api/suppressions", get(suppressions::list).post(suppressions::add))
        .route("/api/suppressions/{channel}/{address}", delete(suppressions::remove))
        .route(
            "/api/influencers",
            get(partners::list_influencers).post(partners::create_influencer),
        )
        .route(
            "/api/influencers/{id}",
            get(partners::get_influencer)
                .put(partners::put_influencer)
                .delete(partners::delete_influencer),
        )
        .route("/api/links", get(partners::list_links).post(partners::create_link))
        .route(
            "/api/links/{code}",
            get(partners::get_link)
                .put(partners::put_link)
                .delete(partners::delete_link),
        )
        .route(
            "/api/campaigns",
            get(partners::list_campaigns).post(partners::create_campaign),
        )
        .route(
            "/api/campaigns/{id}",
            get(partners::get_campaign)
                .put(partners::put_campaign)
                .delete(partners::delete_campaign),
        )
        .route("/api/reports", get(reports::report))
        .route("/api/fx-rates", get(reports::get_fx_rates).put(reports::put_fx_rates))
        .route("/api/exports/{kind}", get(exports::export))
        .route("/api/sources", get(sources::list_sources).post(sources::create))
        .route("/api/sources/{id}", get(sources::get_source).delete(sources::revoke))
        .route("/api/sources/{id}/keys", post(sources::add_key))
        .route("/api/sources/{id}/keys/{last4}", delete(sources::revoke_key))
        .route("/api/sources/{id}/records", delete(sources::remove_test_records))
        .route("/api/sources/{id}/void", post(sources::void))
        .route("/api/users", get(users::list).post(users::create))
        .route(
            "/api/users/{id}",
            get(users::get).put(users::update).delete(users::delete),
        )
        .route("/api/users/{id}/sessions", delete(users::end_sessions))
        .route("/api/users/{id}/keys", post(users::add_key))
        .route("/api/users/{id}/keys/{last4}", delete(users::revoke_key))
        .route_layer(middleware::from_fn_with_state(state.clone(), crm_http::require_admin))
        .layer(Extension(parked))
        .with_state(state);
    crm_http::finish(routes)
}

mod customers;
mod exports;
mod messaging;
mod partners;
mod reports;
mod sources;
mod suppressions;
mod users;

const DEFAULT_LIMIT: i32 = 50;
const MAX_LIMIT: i32 = 200;
/// How many days a recent-list page walks back looking for records before it stops.
pub const FEED_LOOKBACK_DAYS: u32 = 31;

fn field_error(field: &'static str, e: Invalid) -> ApiError {
    ApiError::Field(FieldError {
        field,
        code: e.code,
        message: e.message,
    })
}

/// A value sent as text or as a JSON number (`"stage": 2`, `"EUR": 1.08`), read as text.
#[derive(serde::Deserialize)]
#[serde(untagged)]
pub enum TextOrNumber {
    Text(String),
    Number(serde_json::Number),
}

impl TextOrNumber {
    pub fn text(&self) -> String {
        match self {
            Self::Text(t) => t.clone(),
            Self::Number(n) => n.to_string(),
        }
    }
}

fn limit(raw: Option<i32>) -> Result<i32, ApiError> {
    match raw {
        None => Ok(DEFAULT_LIMIT),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(_) => Err(field_error(
            "limit",
            Invalid::new("out_of_range", format!("limit must be between 1 and {MAX_LIMIT}")),
        )),
    }
}

fn bad_cursor() -> ApiError {
    field_error("cursor", Invalid::new("invalid_format", "cursor is not one we issued"))
}

/// A cursor as clients see it: URL-safe base64 of the position's JSON.
fn encode_cursor<T: Serialize>(position: &T) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(position).expect("a cursor serialises"))
}

/// A cursor we issued, or a 400 naming `cursor`.
fn decode_cursor<T: serde::de::DeserializeOwned>(raw: &str) -> Result<T, ApiError> {
    let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| bad_cursor())?;
    serde_json::from_slice(&bytes).map_err(|_| bad_cursor())
}

/// A `day` query value (`YYYY-MM-DD`).
fn parse_day(raw: &str) -> Result<Date, ApiError> {
    Date::parse(raw, time::macros::format_description!("[year]-[month]-[day]"))
        .map_err(|_| field_error("day", Invalid::new("invalid_format", "day must be YYYY-MM-DD")))
}
