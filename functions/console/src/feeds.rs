//! `/dashboard/clicks`, `/dashboard/leads`, `/dashboard/events`: what arrived, by UTC day,
//! newest first, filtered by brand, source, campaign, influencer or event type, each row
//! linking to its customer. One query per page (a day's next 100 records), whatever the
//! table holds; analysts see people masked.

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use crm_app::customers;
use crm_core::records::{Activity, RecordKind};
use crm_core::values::{format_ts, parse_ts};
use crm_store::FeedPosition;
use maud::{Markup, html};
use serde_json::Value;
use time::OffsetDateTime;

use crate::pages::{respond_page, text, url_encode};
use crate::{Console, Refusal, Viewer};

/// Records read per page.
const PAGE: i32 = 100;

/// A feed: its kind, title, path, its columns (attribute, heading) and
/// the filters it offers (query name, attribute).
struct Feed {
    kind: RecordKind,
    /// Its rows show personal data (addresses, names): a page of them is an audited read.
    personal: bool,
    audited: &'static str,
    title: &'static str,
    path: &'static str,
    columns: &'static [(&'static str, &'static str)],
    filters: &'static [(&'static str, &'static str, &'static str)],
}

const CLICKS: Feed = Feed {
    kind: RecordKind::Click,
    personal: true,
    audited: "feed.clicks",
    title: "Clicks",
    path: "/dashboard/clicks",
    columns: &[
        ("clickId", "Click id"),
        ("brand", "Brand"),
        ("campaign", "Campaign"),
        ("source", "Source"),
        ("influencerId", "Influencer"),
        ("ip", "Address"),
    ],
    filters: &[
        ("brand", "brand", "Brand"),
        ("source", "source", "Source"),
        ("campaign", "campaign|attribution.campaignId", "Campaign"),
        ("influencer", "influencerId|attribution.influencerId", "Influencer"),
    ],
};

const LEADS: Feed = Feed {
    kind: RecordKind::Lead,
    personal: true,
    audited: "feed.leads",
    title: "Leads",
    path: "/dashboard/leads",
    columns: &[
        ("brand", "Brand"),
        ("email", "Email"),
        ("phone", "Phone"),
        ("firstName", "First name"),
        ("campaign", "Campaign"),
        ("clickId", "Click id"),
    ],
    filters: &[
        ("brand", "brand", "Brand"),
        ("campaign", "campaign|attribution.campaignId", "Campaign"),
        ("influencer", "attribution.influencerId", "Influencer"),
    ],
};

const EVENTS: Feed = Feed {
    kind: RecordKind::Event,
    personal: false,
    audited: "feed.events",
    title: "Events",
    path: "/dashboard/events",
    columns: &[
        ("brand", "Brand"),
        ("eventType", "Type"),
        ("amount", "Amount"),
        ("currency", "Currency"),
        ("transactionId", "Transaction"),
        ("clickId", "Click id"),
    ],
    filters: &[
        ("brand", "brand", "Brand"),
        ("type", "eventType", "Event type"),
        ("campaign", "attribution.campaignId", "Campaign"),
        ("influencer", "attribution.influencerId", "Influencer"),
    ],
};

/// A filter's attribute of a record: `a.b` reaches into an object, `x|y` matches either.
fn matches(record: &Value, attribute: &str, wanted: &str) -> bool {
    attribute.split('|').any(|path| {
        let pointer = format!("/{}", path.replace('.', "/"));
        record
            .pointer(&pointer)
            .is_some_and(|v| text(v).eq_ignore_ascii_case(wanted))
    })
}

/// How often a feed of today asks for what arrived since (with JavaScript; without it the
/// page is read as it was loaded, and reloaded by hand).
const POLL: &str = "every 5s";

/// The filters asked for: (record attribute, wanted value).
fn wanted<'a>(f: &Feed, q: &'a BTreeMap<String, String>) -> Vec<(&'static str, &'a str)> {
    f.filters
        .iter()
        .filter_map(|(name, attribute, _)| {
            let v = q.get(*name)?.trim();
            (!v.is_empty()).then_some((*attribute, v))
        })
        .collect()
}

/// The query string of the filters asked for (`&name=value…`).
fn filter_query(f: &Feed, q: &BTreeMap<String, String>) -> String {
    f.filters
        .iter()
        .filter_map(|(name, _, _)| q.get(*name).map(|v| format!("&{name}={}", url_encode(v))))
        .collect()
}

/// Records as rows: filtered, masked for analysts.
fn shown_rows(viewer: &Viewer, records: &[Activity], wanted: &[(&str, &str)]) -> Vec<Value> {
    let mut rows: Vec<Value> = records
        .iter()
        .map(|r| serde_json::to_value(r).unwrap_or_default())
        .filter(|r| wanted.iter().all(|(attribute, v)| matches(r, attribute, v)))
        .collect();
    if !viewer.role().sees_personal_data() {
        rows.iter_mut().for_each(crm_core::personal::mask_personal);
    }
    rows
}

fn row(f: &Feed, r: &Value) -> Markup {
    html! {
        tr {
            td { (text(&r["at"])) }
            @for (attribute, _) in f.columns { td { (text(&r[*attribute])) } }
            td { a href={ "/dashboard/customers/" (text(&r["customerId"])) } { "profile" } }
        }
    }
}

/// The part of a feed of today that asks, every few seconds, for the records after the
/// newest one seen (`at`, `id`), and takes their place with what came and itself again.
fn poller(f: &Feed, at: &str, id: &str, filters: &str) -> Markup {
    html! {
        tbody #live hx-get={ (f.path) "/live?at=" (url_encode(at)) "&id=" (url_encode(id)) (filters) }
            hx-trigger=(POLL) hx-swap="outerHTML" {}
    }
}

async fn feed(console: &Console, viewer: &Viewer, f: &Feed, q: &BTreeMap<String, String>) -> Result<Response, Refusal> {
    let today = OffsetDateTime::now_utc().date();
    let day = q
        .get("day")
        .and_then(|d| time::Date::parse(d, time::macros::format_description!("[year]-[month]-[day]")).ok())
        .unwrap_or(today);
    let after = match (q.get("at").and_then(|a| parse_ts(a).ok()), q.get("id")) {
        (Some(at), Some(id)) => Some(FeedPosition { at, id: id.clone() }),
        _ => None,
    };
    let first_page = after.is_none();
    // That day only: a page reads one day partition.
    let (records, more) = customers::feed(&console.app.store, f.kind, day, after, PAGE as usize, 1).await?;
    let position = |r: &Activity| (format_ts(r.at()), r.id().to_owned());
    let last = records.last().map(position);
    // Today's first page keeps itself up to date from its newest record on.
    let live = (day == today && first_page).then(|| {
        records
            .first()
            .map(position)
            .unwrap_or_else(|| (format_ts(OffsetDateTime::now_utc()), "0".into()))
    });
    let rows = shown_rows(viewer, &records, &wanted(f, q));
    let filter_query = filter_query(f, q);
    if f.personal && !rows.is_empty() && viewer.role().sees_personal_data() {
        viewer.audit(console, f.audited, &day.to_string()).await;
    }
    let body = html! {
        form.filters method="get" action=(f.path) {
            label for="day" { "Day (UTC)" }
            input #day type="date" name="day" value=(day.to_string());
            @for (name, _, label) in f.filters {
                label for=(name) { (label) }
                input id=(name) type="search" name=(name) value=[q.get(*name)];
            }
            button type="submit" { "Show" }
        }
        table {
            caption { (f.title) " of " (day.to_string()) ", newest first" }
            thead { tr {
                th scope="col" { "When (UTC)" }
                @for (_, heading) in f.columns { th scope="col" { (heading) } }
                th scope="col" { "Customer" }
            } }
            @if let Some((at, id)) = &live { (poller(f, at, id, &filter_query)) }
            tbody {
                @if rows.is_empty() { tr { td colspan=(f.columns.len() + 2) { "Nothing here." } } }
                @for r in &rows { (row(f, r)) }
            }
        }
        @if more {
            @if let Some((at, id)) = &last {
                p { a href={ (f.path) "?day=" (day.to_string()) "&at=" (url_encode(at)) "&id=" (url_encode(id)) (filter_query) } { "Older" } }
            }
        }
        @if let Some(prev) = day.previous_day() {
            p { a href={ (f.path) "?day=" (prev.to_string()) (filter_query) } { "The day before" } }
        }
    };
    Ok(respond_page(viewer, f.title, f.path, body))
}

/// `…/live?at=&id=`: the rows of records that arrived after (`at`, `id`), newest first, and
/// the poller again from the newest one read (a fragment for the page's script).
async fn live(console: &Console, viewer: &Viewer, f: &Feed, q: &BTreeMap<String, String>) -> Result<Response, Refusal> {
    let Some(at) = q.get("at").and_then(|a| parse_ts(a).ok()) else {
        return Ok(StatusCode::BAD_REQUEST.into_response());
    };
    let id = q.get("id").map_or("0", |i| i.as_str());
    if id.len() > crm_core::values::MAX_ID_LEN {
        return Ok(StatusCode::BAD_REQUEST.into_response());
    }
    let since = FeedPosition { at, id: id.to_owned() };
    let today = OffsetDateTime::now_utc().date();
    let records = customers::arrived_since(&console.app.store, f.kind, &since, today, PAGE).await?;
    let (at, id) = records.last().map_or_else(
        || (format_ts(since.at), since.id.clone()),
        |r| (format_ts(r.at()), r.id().to_owned()),
    );
    let mut rows = shown_rows(viewer, &records, &wanted(f, q));
    rows.reverse();
    let fragment = html! {
        (poller(f, &at, &id, &filter_query(f, q)))
        @if !rows.is_empty() { tbody.arrived { @for r in &rows { (row(f, r)) } } }
    };
    Ok(fragment.into_response())
}

pub async fn clicks(
    State(c): State<Console>,
    v: Viewer,
    Query(q): Query<BTreeMap<String, String>>,
) -> Result<Response, Refusal> {
    feed(&c, &v, &CLICKS, &q).await
}

pub async fn leads(
    State(c): State<Console>,
    v: Viewer,
    Query(q): Query<BTreeMap<String, String>>,
) -> Result<Response, Refusal> {
    feed(&c, &v, &LEADS, &q).await
}

pub async fn events(
    State(c): State<Console>,
    v: Viewer,
    Query(q): Query<BTreeMap<String, String>>,
) -> Result<Response, Refusal> {
    feed(&c, &v, &EVENTS, &q).await
}

pub async fn clicks_live(
    State(c): State<Console>,
    v: Viewer,
    Query(q): Query<BTreeMap<String, String>>,
) -> Result<Response, Refusal> {
    live(&c, &v, &CLICKS, &q).await
}

pub async fn leads_live(
    State(c): State<Console>,
    v: Viewer,
    Query(q): Query<BTreeMap<String, String>>,
) -> Result<Response, Refusal> {
    live(&c, &v, &LEADS, &q).await
}

pub async fn events_live(
    State(c): State<Console>,
    v: Viewer,
    Query(q): Query<BTreeMap<String, String>>,
) -> Result<Response, Refusal> {
    live(&c, &v, &EVENTS, &q).await
}
