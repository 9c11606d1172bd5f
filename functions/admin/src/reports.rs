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
use crm_core::records::{Activity, RecordKind};
use crm_core::stats::{Credited, Dimension, FxRates, GroupBy, Metric, Period, Totals, group, group_credited, ratio};
use crm_core::values::{Brand, Currency, Invalid, Money};
use crm_http::{ApiError, ApiQuery, AppState, JsonResult};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

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

/// What a report covers.
pub struct Request {
    pub by: GroupBy,
    pub period: Period,
    pub brand: Option<String>,
    pub model: Model,
}

/// A period in the reporting zone (or `tz`), defaulting to the last 30 days.
pub fn period(state: &AppState, from: Option<&str>, to: Option<&str>, tz: Option<&str>) -> Result<Period, ApiError> {
    let zone = match tz {
        Some(raw) => ZoneName::parse(raw).map_err(|e| field_error("tz", e))?,
        None => state.config.reporting.zone.clone(),
    };
    Period::parse(from, to, zone, OffsetDateTime::now_utc()).map_err(|(field, e)| field_error(field, e))
}

impl Request {
    fn parse(state: &AppState, q: &ReportQuery) -> Result<Self, ApiError> {
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
        Ok(Self {
            by,
            period: period(state, q.from.as_deref(), q.to.as_deref(), q.tz.as_deref())?,
            brand,
            model,
        })
    }
}

/// Report rows by group, with the model's credit.
pub async fn totals(state: &AppState, r: &Request) -> Result<BTreeMap<String, Totals>, ApiError> {
    let days = r.period.utc_days();
    let counters = state
        .store
        .counters(r.by.dimension(), &days, r.brand.as_deref())
        .await?;
    let mut rows = group(&counters, r.by, &r.period, r.brand.as_deref());
    if r.model == Model::LastTouch {
        return Ok(rows);
    }
    if matches!(r.by, GroupBy::Dimension(Dimension::Step | Dimension::Template)) {
        return Err(field_error(
            "model",
            Invalid::new(
                "invalid_value",
                "message influence is last message only: use model=last_touch",
            ),
        ));
    }
    // Keep the model-free counts, replace the conversion counts by the model's credit.
    for totals in rows.values_mut() {
        totals.0.retain(|m, _| matches!(m, Metric::Clicks | Metric::Customers));
    }
    let mut records = Vec::new();
    for day in &days {
        for kind in [RecordKind::Lead, RecordKind::Event] {
            records.extend(state.store.records_of_day(kind, *day).await?);
        }
    }
    let counted: Vec<(String, OffsetDateTime, _, BTreeMap<Metric, Decimal>)> = records
        .iter()
        .filter_map(|record| {
            let (brand, at, attribution, counted) = match record {
                Activity::Lead(l) => (&l.brand, l.at, l.attribution.as_ref()?, l.counted.as_ref()?),
                Activity::Event(e) => (
                    &e.brand,
                    e.occurred_at.unwrap_or(e.at),
                    e.attribution.as_ref()?,
                    e.counted.as_ref()?,
                ),
                _ => return None,
            };
            let metrics = counted
                .iter()
                .filter_map(|(name, v)| Some((Metric::from_name(name)?, *v)))
                .collect();
            Some((brand.clone(), at, attribution, metrics))
        })
        .collect();
    let credited: Vec<Credited> = counted
        .iter()
        .map(|(brand, at, attribution, metrics)| Credited {
            brand,
            at: *at,
            attribution,
            metrics,
        })
        .collect();
    for (key, t) in group_credited(&credited, r.model, r.by, &r.period, r.brand.as_deref()) {
        rows.entry(key).or_default().add(&t.0, Decimal::ONE);
    }
    Ok(rows)
}

/// A count as JSON: whole numbers as integers, shared credit to 4 decimal places.
fn count(d: Decimal) -> Value {
    let d = d.round_dp(4).normalize();
    match i64::try_from(d) {
        Ok(n) if d.fract().is_zero() => json!(n),
        _ => serde_json::Number::from_f64(d.try_into().unwrap_or(0.0)).map_or(Value::Null, Value::Number),
    }
}

/// A report row's figures, with the rates and the converted revenue.
pub fn figures(t: &Totals, fx: &FxRates) -> Map<String, Value> {
    let mut out = Map::new();
    for m in Metric::COUNTS {
        out.insert(m.name(), count(t.get(&m)));
    }
    let revenue = t.revenue();
    out.insert(
        "revenue".into(),
        json!(
            revenue
                .iter()
                .map(|(c, v)| (c.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>()
        ),
    );
    let converted = fx.convert(&revenue);
    let currency = fx.base.clone();
    out.insert("currency".into(), json!(currency));
    match &converted {
        Ok(total) => out.insert("revenueConverted".into(), json!(format!("{:.2}", total.round_dp(2)))),
        Err(missing) => {
            out.insert("missingRates".into(), json!(missing));
            out.insert("revenueConverted".into(), Value::Null)
        }
    };
    let clicks = t.get(&Metric::Clicks);
    let leads = t.get(&Metric::Leads);
    let rate = |r: Option<Decimal>| r.map_or(Value::Null, |r| json!(r.to_string()));
    out.insert("leadRate".into(), rate(ratio(leads, clicks)));
    out.insert("ftdRate".into(), rate(ratio(t.get(&Metric::Ftds), leads)));
    out.insert(
        "attributionRate".into(),
        rate(ratio(t.get(&Metric::Attributed), leads + t.get(&Metric::Conversions))),
    );
    out.insert(
        "epc".into(),
        rate(converted.ok().and_then(|total| ratio(total, clicks))),
    );
    out
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

/// The exchange rates, with the reporting currency as base when none was set.
pub async fn rates(state: &AppState) -> Result<FxRates, ApiError> {
    let mut fx = state.store.fx_rates().await?;
    fx.base.get_or_insert_with(|| state.config.reporting.currency.clone());
    Ok(fx)
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
    let r = Request::parse(&state, &q)?;
    let rows = totals(&state, &r).await?;
    let fx = rates(&state).await?;
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
    let brand = (by == Dimension::Brand).then(|| value.to_owned());
    let r = Request {
        by: GroupBy::Dimension(by),
        period,
        brand,
        model: Model::LastTouch,
    };
    let rows = totals(state, &r).await?;
    let t = rows.get(value).cloned().unwrap_or_default();
    let mut out = Map::new();
    out.insert("from".into(), json!(r.period.from.to_string()));
    out.insert("to".into(), json!(r.period.to.to_string()));
    out.insert("timezone".into(), json!(r.period.zone));
    out.extend(figures(&t, &rates(state).await?));
    Ok(Value::Object(out))
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
    Ok(Json(json!(rates(&state).await?)))
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
