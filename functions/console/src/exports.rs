//! `/dashboard/exports`: download customers, clicks, leads, events or messages of a period
//! as CSV, the same columns and rows as `GET /api/exports/{kind}` (one walk,
//! `crm_app::exports`). Personal data is masked unless an owner or manager ticks the box,
//! which is in the audit log; analysts never get it.

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use crm_app::exports::{self, Kind};
use crm_core::stats::Period;
use maud::html;
use time::OffsetDateTime;

use crate::pages::respond_status;
use crate::{Console, Refusal, Viewer};

const PATH: &str = "/dashboard/exports";
const KINDS: &[&str] = &["customers", "clicks", "leads", "events", "messages"];
/// Rows read per page of the walk.
const PAGE: i32 = 2_000;
/// Most rows one download holds (a Lambda answer is at most 6 MB): a longer period is
/// downloaded in shorter ones.
pub const MAX_ROWS: usize = 10_000;
/// Most days one download covers (a day is at least one query).
pub const MAX_DAYS: i64 = 31;

fn form(viewer: &Viewer, q: &BTreeMap<String, String>, error: Option<&str>) -> maud::Markup {
    let get = |k: &str| q.get(k).map(String::as_str).filter(|v| !v.is_empty());
    html! {
        @if let Some(e) = error { p.error role="alert" { (e) } }
        form.stacked method="get" action={ (PATH) "/download" } {
            label for="kind" { "What" }
            select #kind name="kind" {
                @for k in KINDS { option value=(k) selected[get("kind") == Some(*k)] { (k) } }
            }
            label for="from" { "From (reporting time zone)" }
            input #from type="date" name="from" value=[get("from")];
            label for="to" { "To (inclusive)" }
            input #to type="date" name="to" value=[get("to")];
            @if viewer.role().sees_personal_data() {
                div.checks {
                    label { input type="checkbox" name="pii" value="on"; " Include personal data (emails, phones, names, IPs: recorded in the audit log)" }
                }
            }
            button type="submit" { "Download CSV" }
        }
        p.hint { "Without dates: the last 30 days. At most " (MAX_DAYS) " days and " (MAX_ROWS) " rows per file: for more, download shorter periods, or page through GET /api/exports/{kind}." }
    }
}

pub async fn page(viewer: Viewer, Query(q): Query<BTreeMap<String, String>>) -> Response {
    respond_status(&viewer, StatusCode::OK, "Exports", PATH, form(&viewer, &q, None))
}

pub async fn download(
    State(console): State<Console>,
    viewer: Viewer,
    Query(q): Query<BTreeMap<String, String>>,
) -> Result<Response, Refusal> {
    let refuse = |message: String| {
        Ok(respond_status(
            &viewer,
            StatusCode::UNPROCESSABLE_ENTITY,
            "Exports",
            PATH,
            form(&viewer, &q, Some(&message)),
        ))
    };
    let Some(kind) = q.get("kind").and_then(|k| Kind::parse(k)) else {
        return refuse("kind: choose what to export.".into());
    };
    let get = |k: &str| q.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let zone = console.app.config.reporting.zone.clone();
    let period = match Period::parse(get("from"), get("to"), zone, OffsetDateTime::now_utc()) {
        Ok(p) => p,
        Err((field, e)) => return refuse(format!("{field}: {}", e.message)),
    };
    if (period.to - period.from).whole_days() >= MAX_DAYS {
        return refuse(format!(
            "to: at most {MAX_DAYS} days per download; download shorter periods"
        ));
    }
    let include_pii = get("pii") == Some("on") && viewer.role().sees_personal_data();
    let (mut rows, mut cursor) = (Vec::new(), None);
    let truncated = loop {
        let (page, next) = exports::page(&console.app.store, kind, &period, cursor, PAGE, include_pii).await?;
        rows.extend(page);
        match next {
            Some(_) if rows.len() >= MAX_ROWS => break true,
            Some(c) => cursor = Some(c),
            None => break false,
        }
    };
    rows.truncate(MAX_ROWS);
    if include_pii {
        let what = format!("{} {}..{} ({} rows)", kind.name(), period.from, period.to, rows.len());
        viewer.audit(&console, "export.pii", &what).await;
    }
    let mut response = exports::to_csv(kind.columns(), &rows).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    let part = if truncated { "-first-10000" } else { "" };
    let filename = format!("{}-{}-{}{part}.csv", kind.name(), period.from, period.to);
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(response)
}
