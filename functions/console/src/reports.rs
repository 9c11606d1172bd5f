//! `/dashboard/reports`: the tracker-style grid. Group by brand, influencer, campaign,
//! source, medium, a sub-id or day; a period (with presets) in the reporting time zone or
//! another; an attribution model; a row per group and the totals; CSV of exactly what is
//! shown (`&format=csv`). The figures are the admin API's (`crm_app::reports::table`).

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use crm_core::attribution::Model;
use crm_core::quiet::ZoneName;
use crm_core::stats::{GroupBy, Period};
use crm_core::values::Brand;
use maud::{Markup, html};
use serde_json::{Map, Value};
use time::OffsetDateTime;

use crate::pages::{field, respond_status, url_encode};
use crate::{Console, Refusal, Viewer};

/// What a report may be grouped by, as offered.
const GROUPS: &[(&str, &str)] = &[
    ("day", "Day"),
    ("brand", "Brand"),
    ("influencer", "Influencer"),
    ("campaign", "Campaign"),
    ("source", "Source"),
    ("medium", "Medium"),
    ("sub1", "Sub 1"),
    ("sub2", "Sub 2"),
    ("sub3", "Sub 3"),
    ("sub4", "Sub 4"),
    ("sub5", "Sub 5"),
];

/// The columns shown: (figure, heading).
const COLUMNS: &[(&str, &str)] = &[
    ("clicks", "Clicks"),
    ("customers", "Customers"),
    ("leads", "Leads"),
    ("registrations", "Registrations"),
    ("ftds", "FTDs"),
    ("deposits", "Deposits"),
    ("revenueConverted", "Revenue"),
    ("leadRate", "Lead rate"),
    ("ftdRate", "FTD rate"),
    ("epc", "EPC"),
];

/// Under a figure compared with the period before: what it was, and the change.
fn was(row: &Map<String, Value>, column: &str) -> Markup {
    let Some(Value::Object(previous)) = row.get("previous") else {
        return html! {};
    };
    let before = field(previous, column);
    let number = |v: &str| v.parse::<f64>().ok();
    let change = match (number(&field(row, column)), number(&before)) {
        (Some(now), Some(then)) if then != 0.0 => Some((now - then) / then * 100.0),
        _ => None,
    };
    html! {
        br;
        span.hint {
            "was " @if before.is_empty() { "0" } @else { (before) }
            @if let Some(c) = change {
                " " span class=(if c >= 0.0 { "up" } else { "down" }) { (format!("{c:+.0}%")) }
            }
        }
    }
}

/// The report the query asks for, or the message saying which field is wrong.
fn request(console: &Console, q: &BTreeMap<String, String>) -> Result<crm_app::reports::Request, String> {
    let get = |name: &str| q.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
    let by = GroupBy::parse(get("groupBy").unwrap_or("day")).map_err(|e| format!("Group by: {}", e.message))?;
    let model = get("model")
        .map(Model::parse)
        .transpose()
        .map_err(|e| format!("Model: {}", e.message))?
        .unwrap_or_default();
    let zone = match get("tz") {
        Some(tz) => ZoneName::parse(tz).map_err(|e| format!("Time zone: {}", e.message))?,
        None => console.app.config.reporting.zone.clone(),
    };
    let period = Period::parse(get("from"), get("to"), zone, OffsetDateTime::now_utc())
        .map_err(|(field, e)| format!("{field}: {}", e.message))?;
    let brand = get("brand")
        .map(|b| Brand::parse(b).map(|b| b.to_string()))
        .transpose()
        .map_err(|e| format!("Brand: {}", e.message))?;
    Ok(crm_app::reports::Request {
        by,
        period,
        brand,
        model,
    })
}

pub async fn page(
    State(console): State<Console>,
    viewer: Viewer,
    Query(q): Query<BTreeMap<String, String>>,
) -> Result<Response, Refusal> {
    let request = request(&console, &q);
    let compared = q.get("compare").is_some_and(|c| c == "previous");
    let (store, currency) = (&console.app.store, &console.app.config.reporting.currency);
    let table = match &request {
        Ok(r) if compared => Some(crm_app::reports::table_compared(store, r, currency).await?),
        Ok(r) => Some(crm_app::reports::table(store, r, currency).await?),
        Err(_) => None,
    };
    let table = table.map(|t| {
        if viewer.role().sees_personal_data() {
            t
        } else {
            t.masked()
        }
    });
    if q.get("format").map(String::as_str) == Some("csv")
        && let Some(t) = &table
    {
        let mut response = crm_app::reports::to_csv(t).into_response();
        let h = response.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/csv; charset=utf-8"),
        );
        h.insert(
            header::CONTENT_DISPOSITION,
            HeaderValue::from_static("attachment; filename=\"report.csv\""),
        );
        return Ok(response);
    }
    let today = OffsetDateTime::now_utc().date();
    let group = q.get("groupBy").map_or("day", String::as_str);
    let kept: String = ["groupBy", "model", "brand", "tz", "compare"]
        .iter()
        .filter_map(|k| q.get(*k).map(|v| format!("&{k}={}", url_encode(v))))
        .collect();
    let presets = crate::pages::presets(today);
    let status = if request.is_ok() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    let body = html! {
        form.filters method="get" action="/dashboard/reports" {
            label for="groupBy" { "Group by" }
            select #groupBy name="groupBy" {
                @for (v, label) in GROUPS { option value=(*v) selected[group == *v] { (label) } }
            }
            label for="from" { "From" }
            input #from type="date" name="from" value=[request.as_ref().ok().map(|r| r.period.from.to_string())];
            label for="to" { "To" }
            input #to type="date" name="to" value=[request.as_ref().ok().map(|r| r.period.to.to_string())];
            label for="tz" { "Time zone" }
            input #tz name="tz" value=[request.as_ref().ok().map(|r| r.period.zone.as_str().to_owned())];
            label for="model" { "Attribution" }
            select #model name="model" {
                @for (v, label) in [("last_touch", "Last touch"), ("first_touch", "First touch"), ("linear", "Linear"), ("time_decay", "Time decay")] {
                    option value=(v) selected[q.get("model").map(String::as_str) == Some(v)] { (label) }
                }
            }
            label for="brand" { "Brand" }
            input #brand type="search" name="brand" value=[q.get("brand")];
            label { input type="checkbox" name="compare" value="previous" checked[compared]; " Compare with the period before" }
            button type="submit" { "Show" }
        }
        p.presets { "Period: " @for (label, from, to) in &presets {
            a href={ "/dashboard/reports?from=" (from.to_string()) "&to=" (to.to_string()) (kept) } { (label) } " "
        } }
        @match (&request, &table) {
            (Err(message), _) => { p.error role="alert" { (message) } }
            (Ok(r), Some(t)) => {
                table {
                    caption {
                        "From " (r.period.from.to_string()) " to " (r.period.to.to_string()) " (" (r.period.zone.as_str()) "), " (r.model.as_str())
                        @if compared {
                            @let before = r.period.previous();
                            "; under each figure, the period before (" (before.from.to_string()) " to " (before.to.to_string()) ") and the change"
                        }
                    }
                    thead { tr {
                        th scope="col" { (t.field) }
                        @if t.items.iter().any(|i| i.contains_key("name")) { th scope="col" { "Name" } }
                        @for (_, h) in COLUMNS { th scope="col" { (h) } }
                    } }
                    @let named = t.items.iter().any(|i| i.contains_key("name"));
                    tbody {
                        @if t.items.is_empty() { tr { td colspan=(COLUMNS.len() + 2) { "Nothing in this period." } } }
                        @for row in &t.items {
                            tr {
                                th scope="row" { @let v = field(row, &t.field); @if v.is_empty() { "(none)" } @else { (v) } }
                                @if named { td { (field(row, "name")) } }
                                @for (c, _) in COLUMNS { td.num { (field(row, c)) (was(row, c)) } }
                            }
                        }
                    }
                    tfoot { tr {
                        th scope="row" { "Total" }
                        @if named { td {} }
                        @for (c, _) in COLUMNS { td.num { (field(&t.totals, c)) (was(&t.totals, c)) } }
                    } }
                }
                p { a href={ "/dashboard/reports?format=csv&from=" (r.period.from.to_string()) "&to=" (r.period.to.to_string()) (kept) } { "Download this report as CSV" } }
            }
            _ => {}
        }
    };
    Ok(respond_status(&viewer, status, "Reports", "/dashboard/reports", body))
}
