//! `/dashboard/customers`: the newest customers, a search by any identifier, and a
//! customer's profile with one timeline of clicks, leads, events, messages and merges.
//! Analysts see every person masked; anyone else's read of a profile is in the audit log.

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use crm_core::identity::Identifier;
use crm_core::profile::Profile;
use crm_core::records::Activity;
use crm_core::values::{ClickId, CustomerId, DeviceId, Email, PhoneE164, format_ts};
use maud::{Markup, html};
use serde_json::Value;
use time::OffsetDateTime;

use crate::pages::{respond_page, text};
use crate::{Console, Refusal, Viewer};

/// Customers on the list page.
const LIST: i32 = 50;
/// Days the list walks back (one query each): the page's requests stay bounded whatever the
/// table holds.
const LIST_DAYS: i64 = 6;
/// Timeline entries on a profile page.
const TIMELINE: i32 = 100;

/// What a reader may see of a value: itself, or masked for an analyst.
fn shown(viewer: &Viewer, mut value: Value) -> Value {
    if !viewer.role().sees_personal_data() {
        crm_core::personal::mask_personal(&mut value);
    }
    value
}

/// The customers an identifier (as typed) may name: every kind it parses as.
fn candidates(q: &str, console: &Console) -> Vec<Identifier> {
    let mut found = Vec::new();
    if let Ok(e) = Email::parse(q) {
        found.push(Identifier::Email(e));
    }
    if let Ok(p) = PhoneE164::parse(q, console.app.config.defaults.phone_region) {
        found.push(Identifier::Phone(p));
    }
    if let Ok(c) = ClickId::parse(q) {
        found.push(Identifier::ClickId(c));
    }
    if let Ok(d) = DeviceId::parse(q) {
        found.push(Identifier::DeviceId(d));
    }
    found
}

fn name_of(p: &Profile) -> String {
    [p.first_name.as_deref(), p.last_name.as_deref()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ")
}

fn rows(viewer: &Viewer, profiles: &[Profile]) -> Markup {
    html! {
        table {
            caption { "Customers, newest first" }
            thead { tr { th scope="col" { "Customer" } th scope="col" { "Name" } th scope="col" { "Identifiers" } th scope="col" { "Journeys" } th scope="col" { "Created (UTC)" } } }
            tbody {
                @if profiles.is_empty() { tr { td colspan="5" { "No customers found." } } }
                @for p in profiles {
                    @let name = shown(viewer, serde_json::json!({"firstName": name_of(p)}));
                    tr {
                        td { a href={ "/dashboard/customers/" (p.id) } { (p.id) } }
                        td { (text(&name["firstName"])) }
                        td { (p.identifiers.len()) }
                        td { @for j in p.journeys() { span.tag { (j.brand.as_str()) " " (text(&serde_json::to_value(j.milestone).unwrap_or_default())) } " " } }
                        td { (format_ts(p.created_at)) }
                    }
                }
            }
        }
    }
}

pub async fn list(
    State(console): State<Console>,
    viewer: Viewer,
    Query(q): Query<BTreeMap<String, String>>,
) -> Result<Response, Refusal> {
    let store = &console.app.store;
    let search = q.get("q").map(|s| s.trim()).filter(|s| !s.is_empty());
    let mut profiles: Vec<Profile> = Vec::new();
    match search {
        Some(term) => {
            for identifier in candidates(term, &console) {
                if let Some(owner) = store.owner(&identifier).await?
                    && !profiles.iter().any(|p| p.id == owner)
                    && let Some(p) = store.current_profile(&owner).await?
                {
                    profiles.push(p);
                }
            }
        }
        None => {
            let today = OffsetDateTime::now_utc().date();
            for back in 0..LIST_DAYS {
                let day = today - time::Duration::days(back);
                let left = LIST - profiles.len() as i32;
                if left <= 0 {
                    break;
                }
                profiles.extend(store.customers_newest(day, left).await?);
            }
        }
    }
    if search.is_some() && !profiles.is_empty() && viewer.role().sees_personal_data() {
        // Who was found, never what was typed.
        let found: Vec<&str> = profiles.iter().map(|p| p.id.as_str()).collect();
        viewer.audit(&console, "customer.search", &found.join(",")).await;
    }
    let body = html! {
        form.filters method="get" action="/dashboard/customers" role="search" {
            label for="q" { "Email, phone, click id or device id" }
            input #q type="search" name="q" value=[search];
            button type="submit" { "Search" }
        }
        @if search.is_none() { p { "The last " (LIST_DAYS) " days' new customers (at most " (LIST) "); search to find anyone." } }
        (rows(&viewer, &profiles))
    };
    Ok(respond_page(&viewer, "Customers", "/dashboard/customers", body))
}

fn activity_summary(a: &Activity) -> (&'static str, Value, Vec<&'static str>) {
    let json = serde_json::to_value(a).unwrap_or_default();
    let (kind, fields): (&str, &[&str]) = match a {
        Activity::Click(_) => ("click", &["clickId", "campaign", "source", "influencerId", "ip"]),
        Activity::Lead(_) => ("lead", &["email", "phone", "firstName", "campaign"]),
        Activity::Event(_) => ("event", &["eventType", "amount", "currency", "userId"]),
        Activity::Message(_) => ("message", &["channel", "status", "reason", "subject"]),
        Activity::Merge(_) => ("merge", &["absorbed", "reason"]),
        Activity::Contact(_) => ("contact", &["channel", "address", "reason"]),
    };
    (kind, json, fields.to_vec())
}

pub async fn profile(
    State(console): State<Console>,
    viewer: Viewer,
    Path(id): Path<String>,
) -> Result<Response, Refusal> {
    let store = &console.app.store;
    let Ok(id) = CustomerId::parse(&id) else {
        return Ok(crate::pages::message(
            StatusCode::NOT_FOUND,
            "Not found",
            "There is no such customer.",
        ));
    };
    let Some(p) = store.current_profile(&id).await? else {
        return Ok(crate::pages::message(
            StatusCode::NOT_FOUND,
            "Not found",
            "There is no such customer.",
        ));
    };
    let timeline = store.timeline(&p.id, None, TIMELINE).await?;
    if viewer.role().sees_personal_data() {
        viewer.audit(&console, "customer.read", p.id.as_str()).await;
    }
    let identifiers: Vec<(String, Value, bool)> = p
        .identifiers
        .iter()
        .map(|i| {
            let channel = crm_core::contact::channel_of(i);
            let primary = channel.is_some_and(|c| p.primary(c) == Some(i));
            let v = shown(
                &viewer,
                serde_json::json!({"type": i.kind().as_str(), "value": i.value()}),
            );
            (i.kind().as_str().to_owned(), v["value"].clone(), primary)
        })
        .collect();
    let name = shown(&viewer, serde_json::json!({"firstName": name_of(&p)}));
    let title = format!("Customer {}", p.id);
    let body = html! {
        @if p.id != id { p { "Merged from " (id) "." } }
        dl.facts {
            dt { "Name" } dd { (text(&name["firstName"])) }
            dt { "Created (UTC)" } dd { (format_ts(p.created_at)) }
            dt { "Revenue" } dd { @if p.revenue.is_empty() { "none" } @for (c, m) in &p.revenue { (m.to_string()) " " (c.to_string()) " " } }
            @if p.test { dt { "Test traffic" } dd { "yes" } }
        }
        h2 { "Identifiers" }
        table {
            thead { tr { th scope="col" { "Type" } th scope="col" { "Value" } th scope="col" { "Primary" } } }
            tbody { @for (kind, value, primary) in &identifiers { tr { td { (kind) } td { (text(value)) } td { @if *primary { "yes" } } } } }
        }
        h2 { "Journeys" }
        table {
            thead { tr { th scope="col" { "Brand" } th scope="col" { "Type" } th scope="col" { "Stage" } th scope="col" { "Milestone" } th scope="col" { "Since (UTC)" } } }
            tbody {
                @for j in p.journeys() {
                    tr {
                        td { (j.brand.as_str()) }
                        td { (text(&serde_json::to_value(j.journey_type).unwrap_or_default())) }
                        td.num { (j.stage) }
                        td { (text(&serde_json::to_value(j.milestone).unwrap_or_default())) }
                        td { (format_ts(j.since)) }
                    }
                }
            }
        }
        h2 { "Timeline" }
        table {
            caption { "Newest first (the last " (TIMELINE) ")" }
            thead { tr { th scope="col" { "When (UTC)" } th scope="col" { "What" } th scope="col" { "Details" } } }
            tbody {
                @for (position, a) in &timeline {
                    @let (kind, json, fields) = activity_summary(a);
                    @let json = shown(&viewer, json);
                    tr {
                        td { (position.0.split('#').next().unwrap_or_default()) }
                        td { (kind) }
                        td {
                            @for f in fields {
                                @if !json[f].is_null() { span.field { b { (f) ": " } (text(&json[f])) } " " }
                            }
                        }
                    }
                }
            }
        }
        p { a href="/dashboard/customers" { "Back to customers" } }
    };
    Ok(respond_page(&viewer, &title, "/dashboard/customers", body))
}
