//! Reports: `GET /api/reports?groupBy=&from=&to=&brand=&model=&tz=` as JSON rows with
//! totals, or as CSV (`format=csv` or `Accept: text/csv`); the stats of one influencer,
//! campaign or brand; and the exchange rates revenue is converted with
//! (`GET|PUT /api/fx-rates`).
//!
//! Last-touch figures come from the counters the attribution function keeps (a query per
//! day). The multi-touch models share each lead's and conversion's counts among the clicks
//! before it, reading those records for the period; clicks and customers do not depend on
//! the model.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use crm_core::attribution::Model;
use crm_core::input::optional;
use crm_core::quiet::ZoneName;
use crm_core::stats::{Dimension, FxRates, GroupBy, Period};
use crm_core::values::{Brand, Currency, Invalid, Money};
use crm_http::{ApiError, ApiJson, ApiQuery, AppState, JsonResult};
use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;

pub use crm_app::reports::{Request, rates, table, to_csv};

use crate::{TextOrNumber, field_error};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ReportQuery {
    group_by: Option<String>,
    from: Option<String>,
    to: Option<String>,
    brand: Option<String>,
    model: Option<String>,
    tz: Option<String>,
    format: Option<String>,
}

/// A period in the reporting zone (or `tz`), defaulting to the last 30 days.
pub fn period(state: &AppState, from: Option<&str>, to: Option<&str>, tz: Option<&str>) -> Result<Period, ApiError> {
    let zone = match tz {
        Some(raw) => ZoneName::parse(raw).map_err(|e| field_error("tz", e))?,
        None => state.config.reporting.zone.clone(),
    };
    Period::parse(from, to, zone, OffsetDateTime::now_utc()).map_err(|(field, e)| field_error(field, e))
}

/// The report a query asks for.
fn request(state: &AppState, q: &ReportQuery) -> Result<Request, ApiError> {
    {
        let by = GroupBy::parse(q.group_by.as_deref().unwrap_or("day")).map_err(|e| field_error("groupBy", e))?;
        let model = q
            .model
            .as_deref()
            .map(Model::parse)
            .transpose()
            .map_err(|e| field_error("model", e))?
            .unwrap_or_default();
        let brand = q
            .brand
            .as_deref()
            .map(|b| Brand::parse(b).map(|b| b.to_string()))
            .transpose()
            .map_err(|e| field_error("brand", e))?;
        if model != Model::LastTouch && matches!(by, GroupBy::Dimension(Dimension::Step | Dimension::Template)) {
            return Err(field_error(
                "model",
                Invalid::new(
                    "invalid_value",
                    "message influence is last message only: use model=last_touch",
                ),
            ));
        }
        Ok(Request {
            by,
            period: period(state, q.from.as_deref(), q.to.as_deref(), q.tz.as_deref())?,
            brand,
            model,
        })
    }
}

pub async fn report(
    State(state): State<AppState>,
    axum::Extension(actor): axum::Extension<crm_core::access::Actor>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<ReportQuery>,
) -> Result<Response, ApiError> {
    let csv = match q.format.as_deref() {
        None => headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("text/csv")),
        Some("csv") => true,
        Some("json") => false,
        Some(_) => {
            return Err(field_error(
                "format",
                Invalid::new("invalid_value", "must be json or csv"),
            ));
        }
    };
    let r = request(&state, &q)?;
    let t = table(&state.store, &r, &state.config.reporting.currency).await?;
    let t = if actor.role.sees_personal_data() { t } else { t.masked() };
    if csv {
        let mut response = to_csv(&t).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/csv; charset=utf-8"),
        );
        return Ok(response);
    }
    Ok(Json(json!({
        "groupBy": t.field,
        "model": r.model.as_str(),
        "from": r.period.from.to_string(),
        "to": r.period.to.to_string(),
        "timezone": r.period.zone,
        "brand": r.brand,
        "items": t.items,
        "totals": t.totals,
    }))
    .into_response())
}

/// Display names of influencers and campaigns, for their reports.
/// The figures of one group value for a period (an influencer's, a campaign's, a brand's).
pub async fn stats_of(state: &AppState, by: Dimension, value: &str, period: Period) -> Result<Value, ApiError> {
    let stats = crm_app::partners::stats(&state.store, &state.config.reporting.currency, by, value, period).await?;
    Ok(Value::Object(stats))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeriodQuery {
    pub from: Option<String>,
    pub to: Option<String>,
    pub tz: Option<String>,
}

/// `GET /api/brands/{brand}`: the brand's figures for a period.
pub async fn brand(
    State(state): State<AppState>,
    crm_http::ApiPath(brand): crm_http::ApiPath<String>,
    ApiQuery(q): ApiQuery<PeriodQuery>,
) -> JsonResult {
    let brand = Brand::parse(&brand).map_err(|_| ApiError::NotFound)?;
    let period = period(&state, q.from.as_deref(), q.to.as_deref(), q.tz.as_deref())?;
    let mut stats = stats_of(&state, Dimension::Brand, brand.as_str(), period).await?;
    stats["brand"] = json!(brand);
    Ok(Json(stats))
}

pub async fn get_fx_rates(State(state): State<AppState>) -> JsonResult {
    Ok(Json(json!(
        rates(&state.store, &state.config.reporting.currency).await?
    )))
}

/// `PUT /api/fx-rates` as sent.
#[derive(Deserialize)]
pub struct FxBody {
    base: Option<String>,
    rates: Option<BTreeMap<String, TextOrNumber>>,
}

/// `PUT /api/fx-rates {base, rates: {EUR: "1.08", …}}`: units of `base` per unit of each.
pub async fn put_fx_rates(State(state): State<AppState>, ApiJson(body): ApiJson<FxBody>) -> JsonResult {
    let base = optional("base", body.base.as_deref(), Currency::parse)?
        .unwrap_or_else(|| state.config.reporting.currency.clone());
    let raw = body.rates.ok_or_else(|| {
        field_error(
            "rates",
            Invalid::new("missing", "rates is required: an object of currency → rate"),
        )
    })?;
    let mut rates = BTreeMap::new();
    for (code, value) in raw {
        let currency = Currency::parse(&code).map_err(|e| field_error("rates", e))?;
        let rate = Money::parse(&value.text()).map_err(|e| field_error("rates", e))?;
        if rate.is_zero() {
            return Err(field_error(
                "rates",
                Invalid::new("invalid_value", format!("the rate of {code} must be above 0")),
            ));
        }
        rates.insert(currency, rate);
    }
    let fx = FxRates {
        base: Some(base),
        rates,
    };
    crm_app::reports::set_rates(&state.store, &fx).await?;
    Ok(Json(json!(fx)))
}
