//! Reports: `GET /api/reports?groupBy=&from=&to=&brand=&model=&tz=` as JSON rows with
//! totals, or as CSV (`format=csv` or `Accept: text/csv`); the stats of one influencer,
//! campaign or brand; and the exchange rates revenue is converted with
//! (`GET|PUT /api/fx-rates`).
//!
//! Last-touch figures come from the counters the attribution function keeps (a query per
//! day). The multi-touch models share each lead's and conversion's counts among the clicks
//! before it, reading those records for the period; clicks and customers do not depend on
//! the model.

use std::collections::{BTreeMap, BTreeSet};

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use crm_core::attribution::Model;
use crm_core::quiet::ZoneName;
use crm_core::stats::{Dimension, FxRates, GroupBy, Metric, Period, Totals};
use crm_core::values::{Brand, Currency, Invalid, Money};
use crm_http::{ApiError, ApiQuery, AppState, JsonResult};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

pub use crm_app::reports::{Request, figures, rates, totals};

use crate::body;
use crate::field_error;

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

/// The field a group's value is shown under.
fn group_field(by: GroupBy) -> String {
    match by {
        GroupBy::Day => "day".into(),
        GroupBy::Dimension(Dimension::Influencer) => "influencerId".into(),
        GroupBy::Dimension(Dimension::Campaign) => "campaignId".into(),
        GroupBy::Dimension(Dimension::Template) => "templateId".into(),
        GroupBy::Dimension(d) => d.as_str(),
    }
}

pub async fn report(
    State(state): State<AppState>,
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
    let rows = totals(&state.store, &r).await?;
    let fx = rates(&state.store, &state.config.reporting.currency).await?;
    let names = names(&state, r.by).await?;
    let field = group_field(r.by);
    let mut all = Totals::default();
    let items: Vec<Map<String, Value>> = rows
        .iter()
        .map(|(key, t)| {
            all.add(&t.0, Decimal::ONE);
            let mut row = Map::new();
            row.insert(field.clone(), if key.is_empty() { Value::Null } else { json!(key) });
            if let Some(name) = names.get(key) {
                row.insert("name".into(), json!(name));
            }
            row.extend(figures(t, &fx));
            row
        })
        .collect();
    let totals = figures(&all, &fx);
    if csv {
        let body = to_csv(&field, &items, &totals);
        let mut response = body.into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/csv; charset=utf-8"),
        );
        return Ok(response);
    }
    Ok(Json(json!({
        "groupBy": field,
        "model": r.model.as_str(),
        "from": r.period.from.to_string(),
        "to": r.period.to.to_string(),
        "timezone": r.period.zone,
        "brand": r.brand,
        "items": items,
        "totals": totals,
    }))
    .into_response())
}

/// Display names of influencers and campaigns, for their reports.
async fn names(state: &AppState, by: GroupBy) -> Result<BTreeMap<String, String>, ApiError> {
    Ok(match by {
        GroupBy::Dimension(Dimension::Influencer) => state
            .store
            .influencers()
            .await?
            .into_iter()
            .map(|i| (i.influencer_id, i.name))
            .collect(),
        GroupBy::Dimension(Dimension::Campaign) => state
            .store
            .campaigns()
            .await?
            .into_iter()
            .map(|c| (c.campaign_id, c.name))
            .collect(),
        _ => BTreeMap::new(),
    })
}

/// RFC 4180: a header row, CRLF line ends, fields quoted when they hold a comma, quote or
/// line break. A text cell that a spreadsheet would run as a formula gets a leading `'`.
fn to_csv(field: &str, items: &[Map<String, Value>], totals: &Map<String, Value>) -> String {
    let currencies: BTreeSet<String> = items
        .iter()
        .chain([totals])
        .filter_map(|r| r.get("revenue").and_then(Value::as_object))
        .flat_map(|m| m.keys().cloned())
        .collect();
    let mut columns: Vec<String> = vec![field.to_owned(), "name".into()];
    columns.extend(Metric::COUNTS.iter().map(Metric::name));
    columns.extend(currencies.iter().map(|c| format!("revenue.{c}")));
    columns.extend(
        [
            "currency",
            "revenueConverted",
            "leadRate",
            "ftdRate",
            "attributionRate",
            "epc",
        ]
        .map(String::from),
    );
    let cell = |row: &Map<String, Value>, column: &str| -> String {
        let value = match column.strip_prefix("revenue.") {
            Some(c) => row.get("revenue").and_then(|r| r.get(c)).cloned(),
            None => row.get(column).cloned(),
        };
        match value {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s,
            Some(v) => v.to_string(),
        }
    };
    let mut out = csv_line(columns.iter().cloned());
    for row in items {
        out.push_str(&csv_line(columns.iter().map(|c| cell(row, c))));
    }
    let mut total = totals.clone();
    total.insert(field.to_owned(), json!("TOTAL"));
    out.push_str(&csv_line(columns.iter().map(|c| cell(&total, c))));
    out
}

/// One RFC 4180 record, CRLF-terminated.
pub fn csv_line(cells: impl Iterator<Item = String>) -> String {
    let mut line = cells.map(|c| escape(&c)).collect::<Vec<_>>().join(",");
    line.push_str("\r\n");
    line
}

fn escape(cell: &str) -> String {
    let numeric = cell.parse::<Decimal>().is_ok();
    let cell = if !numeric && cell.starts_with(['=', '+', '-', '@']) {
        format!("'{cell}")
    } else {
        cell.to_owned()
    };
    if cell.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", cell.replace('"', "\"\""))
    } else {
        cell
    }
}

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

/// `PUT /api/fx-rates {base, rates: {EUR: "1.08", …}}`: units of `base` per unit of each.
pub async fn put_fx_rates(State(state): State<AppState>, bytes: Bytes) -> JsonResult {
    let body = body::object(&bytes)?;
    let base = body::parsed(&body, "base", Currency::parse)?.unwrap_or_else(|| state.config.reporting.currency.clone());
    let raw = match body.get("rates") {
        Some(Value::Object(m)) => m,
        _ => {
            return Err(field_error(
                "rates",
                Invalid::new("missing", "rates is required: an object of currency → rate"),
            ));
        }
    };
    let mut rates = BTreeMap::new();
    for (code, value) in raw {
        let currency = Currency::parse(code).map_err(|e| field_error("rates", e))?;
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => {
                return Err(field_error(
                    "rates",
                    Invalid::new("invalid_type", format!("the rate of {code} must be a number")),
                ));
            }
        };
        let rate = Money::parse(&text).map_err(|e| field_error("rates", e))?;
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
    state.store.put_fx_rates(&fx).await?;
    Ok(Json(json!(fx)))
}
