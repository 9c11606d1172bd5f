//! `/dashboard/clicks`, `/dashboard/leads`, `/dashboard/events`: what arrived, by UTC day,
//! newest first, filtered by brand, source, campaign, influencer or event type, each row
//! linking to its customer. One query per page (a day's next 100 records), whatever the
//! table holds; analysts see people masked.

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use axum::response::Response;
use crm_core::records::RecordKind;
use crm_core::values::parse_ts;
use crm_store::FeedPosition;
use maud::html;
use serde_json::Value;
use time::OffsetDateTime;

use crate::pages::{respond_page, text, url_encode};
use crate::{Console, Refusal, Viewer};

/// Records read per page.
const PAGE: i32 = 100;

/// A feed: its kind, title, path, the id attribute, its columns (attribute, heading) and
/// the filters it offers (query name, attribute).
struct Feed {
    kind: RecordKind,
    title: &'static str,
    path: &'static str,
    id: &'static str,
    columns: &'static [(&'static str, &'static str)],
    filters: &'static [(&'static str, &'static str, &'static str)],
}

const CLICKS: Feed = Feed {
    kind: RecordKind::Click,
    title: "Clicks",
    path: "/dashboard/clicks",
    id: "clickId",
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
    title: "Leads",
    path: "/dashboard/leads",
    id: "leadId",
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
    title: "Events",
    path: "/dashboard/events",
    id: "eventId",
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
    let page = console.app.store.feed_page(f.kind, day, after.as_ref(), PAGE).await?;
    let wanted: Vec<(&str, &str)> = f
        .filters
        .iter()
        .filter_map(|(name, attribute, _)| {
            let v = q.get(*name)?.trim();
            (!v.is_empty()).then_some((*attribute, v))
        })
        .collect();
    let mut rows: Vec<Value> = page
        .records
        .iter()
        .map(|r| serde_json::to_value(r).unwrap_or_default())
        .collect();
    let last = rows.last().map(|r| (text(&r["at"]), text(&r[f.id])));
    rows.retain(|r| wanted.iter().all(|(attribute, v)| matches(r, attribute, v)));
    if !viewer.role().sees_personal_data() {
        rows.iter_mut().for_each(crm_core::personal::mask_personal);
    }
    let filter_query: String = f
        .filters
        .iter()
        .filter_map(|(name, _, _)| q.get(*name).map(|v| format!("&{name}={}", url_encode(v))))
        .collect();
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
            tbody {
                @if rows.is_empty() { tr { td colspan=(f.columns.len() + 2) { "Nothing here." } } }
                @for r in &rows {
                    tr {
                        td { (text(&r["at"])) }
                        @for (attribute, _) in f.columns { td { (text(&r[*attribute])) } }
                        td { a href={ "/dashboard/customers/" (text(&r["customerId"])) } { "profile" } }
                    }
                }
            }
        }
        @if page.more {
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
