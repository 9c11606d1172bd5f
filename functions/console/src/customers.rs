//! `/dashboard/customers`: the newest customers, a search by any identifier or a name, and a
//! customer's profile with one timeline of clicks, leads, events, messages and merges.
//! Analysts see every person masked; anyone else's read of a profile is in the audit log.

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use crm_app::customers;
use crm_core::access::{Actor, Role};
use crm_core::compliance::{Scope, Suppression};
use crm_core::definition::Channel;
use crm_core::identity::Identifier;
use crm_core::journey::Milestone;
use crm_core::profile::Profile;
use crm_core::records::Activity;
use crm_core::values::{Brand, ClickId, CustomerId, DeviceId, Email, PhoneE164, UserId, format_ts};
use maud::{Markup, html};
use serde_json::Value;
use time::OffsetDateTime;

use crate::pages::{respond_page, respond_status, text};
use crate::{Console, Refusal, Submitted, Viewer};

/// Customers on the list page.
const LIST: i32 = 50;
/// Days the list walks back (one query each): the page's requests stay bounded whatever the
/// table holds (with the session's reads and the audit line, at most 8).
const LIST_DAYS: i64 = 4;
/// Timeline entries on a profile page.
const TIMELINE: i32 = 100;
/// Customers merged into this one whose records the profile's timeline shows (a query
/// each, within the page's request budget; the admin API's timeline shows them all).
const MERGED_SHOWN: usize = 3;

/// What a reader may see of a value: itself, or masked for an analyst.
fn shown(viewer: &Viewer, mut value: Value) -> Value {
    if !viewer.role().sees_personal_data() {
        crm_core::personal::mask_personal(&mut value);
    }
    value
}

/// The customers an identifier (as typed) may name: every kind it parses as; with a brand,
/// also that operator's user id.
fn candidates(q: &str, console: &Console, brand: Option<&str>) -> Vec<Identifier> {
    let mut found = Vec::new();
    if let (Some(operator), Ok(user)) = (brand.and_then(|b| Brand::parse(b).ok()), UserId::parse(q)) {
        found.push(Identifier::UserId { operator, user });
    }
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
    let brand = q.get("brand").map(|s| s.trim()).filter(|s| !s.is_empty());
    let milestone = q.get("milestone").map(|s| s.trim()).filter(|s| !s.is_empty());
    let mut profiles: Vec<Profile> = match search {
        Some(term) => customers::search(store, &candidates(term, &console, brand), term, LIST).await?,
        None => customers::newest(store, OffsetDateTime::now_utc().date(), LIST_DAYS, LIST).await?,
    };
    // Brand and stage narrow what was read (the page's reads stay bounded).
    profiles.retain(|p| {
        brand.is_none_or(|b| p.journeys().iter().any(|j| j.brand.as_str() == b))
            && milestone.is_none_or(|m| {
                p.journeys()
                    .iter()
                    .any(|j| brand.is_none_or(|b| j.brand.as_str() == b) && j.milestone.as_str() == m)
            })
    });
    // Who was found (never what was typed), whoever looked: an analyst's search also says
    // whether someone is a customer. The list itself shows names to who may see them.
    let found: Vec<&str> = profiles.iter().map(|p| p.id.as_str()).collect();
    if search.is_some() && !found.is_empty() {
        viewer.audit(&console, "customer.search", &found.join(",")).await;
    } else if search.is_none() && !found.is_empty() && viewer.role().sees_personal_data() {
        viewer
            .audit(&console, "customer.list", &format!("{} customers", found.len()))
            .await;
    }
    let body = html! {
        form.filters method="get" action="/dashboard/customers" role="search" {
            label for="q" { "Name, email, phone, click id, device id (or user id, with its brand)" }
            input #q type="search" name="q" value=[search];
            label for="brand" { "Brand" }
            input #brand type="text" name="brand" value=[brand] size="10";
            label for="milestone" { "Stage" }
            select #milestone name="milestone" {
                option value="" { "any" }
                @for m in Milestone::ALL { option value=(m.as_str()) selected[milestone == Some(m.as_str())] { (m.as_str()) } }
            }
            button type="submit" { "Search" }
        }
        @if search.is_none() { p { "The last " (LIST_DAYS) " days' new customers (at most " (LIST) "), narrowed by brand and stage; search to find anyone." } }
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

/// A timeline entry as shown: when, what kind, its fields (masked for analysts), which to show.
type Entry = (String, &'static str, Value, Vec<&'static str>);

/// The kinds of timeline entry a profile can show alone.
const KINDS: &[&str] = &["click", "lead", "event", "message", "merge", "contact"];

fn not_found() -> Response {
    crate::pages::message(StatusCode::NOT_FOUND, "Not found", "There is no such customer.")
}

/// Suppression entries of the addresses messages to this customer go to (the primary email
/// and phone), for every brand and for the brands of its journeys: one batch read.
async fn suppressions_of(console: &Console, p: &Profile) -> Result<Vec<(Channel, Suppression)>, Refusal> {
    let Some(keys) = console.app.config.unsubscribe.as_ref() else {
        return Ok(Vec::new());
    };
    let found = crm_app::compliance::suppressions_of(&console.app.store, keys, p).await?;
    Ok(found.into_iter().map(|e| (e.channel, e)).collect())
}

pub async fn profile(
    State(console): State<Console>,
    viewer: Viewer,
    Path(id): Path<String>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Result<Response, Refusal> {
    let store = &console.app.store;
    let Ok(id) = CustomerId::parse(&id) else {
        return Ok(not_found());
    };
    let Some(p) = customers::current(store, &id).await? else {
        return Ok(not_found());
    };
    let kind = q.get("kind").map(String::as_str).filter(|k| KINDS.contains(k));
    let (timeline, _) = customers::timeline(store, &p, None, TIMELINE, MERGED_SHOWN).await?;
    let suppressions = suppressions_of(&console, &p).await?;
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
    // The timeline, newest first, grouped by day (UTC).
    let mut days: Vec<(String, Vec<Entry>)> = Vec::new();
    for (position, a) in &timeline {
        let (what, json, fields) = activity_summary(a);
        if kind.is_some_and(|k| k != what) {
            continue;
        }
        let at = position.0.split('#').next().unwrap_or_default().to_owned();
        let day = at.get(..10).unwrap_or_default().to_owned();
        let entry = (at, what, shown(&viewer, json), fields);
        match days.last_mut() {
            Some((d, entries)) if *d == day => entries.push(entry),
            _ => days.push((day, vec![entry])),
        }
    }
    let name = shown(&viewer, serde_json::json!({"firstName": name_of(&p)}));
    let title = format!("Customer {}", p.id);
    let here = format!("/dashboard/customers/{}", p.id);
    let body = html! {
        @if p.id != id { p { "Merged from " (id) "." } }
        @if p.erased { p.notice { "This person's data was erased: what remains is anonymous." } }
        dl.facts {
            dt { "Name" } dd { (text(&name["firstName"])) }
            dt { "Created (UTC)" } dd { (format_ts(p.created_at)) }
            dt { "Revenue" } dd { @if p.revenue.is_empty() { "none" } @for (c, m) in &p.revenue { (m.to_string()) " " (c.to_string()) " " } }
            @if let Some(zone) = &p.timezone { dt { "Time zone" } dd { (zone.as_str()) } }
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
                        td { (j.milestone.as_str()) }
                        td { (format_ts(j.since)) }
                    }
                }
            }
        }
        h2 { "Consent, suppressions and exclusions" }
        table {
            caption { "Marketing consent per brand and channel (the latest statement)" }
            thead { tr { th scope="col" { "Brand" } th scope="col" { "Channel" } th scope="col" { "Consent" } th scope="col" { "Since (UTC)" } th scope="col" { "Said by" } } }
            tbody {
                @if p.consents.is_empty() { tr { td colspan="5" { "No statement recorded: the brand's default applies." } } }
                @for ((brand, channel), c) in &p.consents {
                    tr {
                        td { (brand.as_str()) }
                        td { (channel.as_str()) }
                        td { @if c.granted { "granted" } @else { "withdrawn" } }
                        td { (format_ts(c.at)) }
                        td { (c.source) }
                    }
                }
            }
        }
        table {
            caption { "Suppressions of the addresses messages go to (for every brand, and for this customer's brands)" }
            thead { tr { th scope="col" { "Channel" } th scope="col" { "Brands" } th scope="col" { "Reason" } th scope="col" { "Since (UTC)" } th scope="col" { "Source" } } }
            tbody {
                @if suppressions.is_empty() { tr { td colspan="5" { "Not suppressed." } } }
                @for (channel, e) in &suppressions {
                    tr {
                        td { (channel.as_str()) }
                        td { @if e.scope == Scope::All { "all" } @else { (e.scope.as_str()) } }
                        td { (e.reason.as_str()) }
                        td { (format_ts(e.at)) }
                        td { (e.source) }
                    }
                }
            }
        }
        table {
            caption { "Responsible-gambling exclusions, by the brand that reported them" }
            thead { tr { th scope="col" { "Brand" } th scope="col" { "Kind" } th scope="col" { "Since (UTC)" } th scope="col" { "Reactivated (UTC)" } } }
            tbody {
                @if p.exclusions.is_empty() { tr { td colspan="4" { "None." } } }
                @for (brand, x) in &p.exclusions {
                    tr {
                        td { (brand.as_str()) }
                        td { (x.kind.as_str()) }
                        td { (format_ts(x.at)) }
                        td { @if let Some(r) = x.reactivated_at { (format_ts(r)) } }
                    }
                }
            }
        }
        h2 #timeline { "Timeline" }
        nav.tabs aria-label="Timeline entries" {
            a href={ (here) "#timeline" } aria-current=[kind.is_none().then_some("page")] { "All" }
            @for k in KINDS {
                " " a href={ (here) "?kind=" (k) "#timeline" } aria-current=[(kind == Some(*k)).then_some("page")] { (k) "s" }
            }
        }
        table {
            caption { "Newest first (of the last " (TIMELINE) "), by day (UTC)" }
            thead { tr { th scope="col" { "When (UTC)" } th scope="col" { "What" } th scope="col" { "Details" } } }
            @if days.is_empty() { tbody { tr { td colspan="3" { "Nothing here." } } } }
            @for (day, entries) in &days {
                tbody {
                    tr.day { th colspan="3" scope="rowgroup" { (day) } }
                    @for (at, what, json, fields) in entries {
                        tr {
                            td { (at.get(11..19).unwrap_or(at)) }
                            td { (what) }
                            td {
                                @for f in fields {
                                    @if !json[*f].is_null() { span.field { b { (f) ": " } (text(&json[*f])) } " " }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if viewer.role().may_change() && !p.erased {
            h2 { "Erase this person" }
            form.danger method="post" action={ (here) "/erase" } {
                input type="hidden" name="csrf" value=(viewer.session.csrf);
                p {
                    "Erasure removes their names, emails, phones, click, device and user ids from every record, "
                    "cancels their pending messages and suppresses their addresses for good (as keyed hashes). "
                    "Journeys, revenue totals and statistics stay, anonymous. It cannot be undone."
                }
                label for="confirm" { "Type the customer id " code { (p.id) } " to confirm" }
                input #confirm type="text" name="confirm" autocomplete="off" required;
                button.danger type="submit" { "Erase this person" }
            }
        }
        p { a href="/dashboard/customers" { "Back to customers" } }
    };
    Ok(respond_page(&viewer, &title, "/dashboard/customers", body))
}

/// Erases a person after the id was typed back (owners and managers); the erasure record
/// and the audit log say who did it.
pub async fn erase(
    State(console): State<Console>,
    Path(id): Path<String>,
    submitted: Submitted,
) -> Result<Response, Refusal> {
    let viewer = &submitted.viewer;
    viewer.require(Role::may_change)?;
    let Ok(id) = CustomerId::parse(&id) else {
        return Ok(not_found());
    };
    if submitted.field("confirm") != id.as_str() {
        return Ok(respond_status(
            viewer,
            StatusCode::UNPROCESSABLE_ENTITY,
            "Not erased",
            "/dashboard/customers",
            html! {
                p.error role="alert" { "The id typed did not match " code { (id) } ": nothing was erased." }
                p { a href={ "/dashboard/customers/" (id) } { "Back to the customer" } }
            },
        ));
    }
    let Some(keys) = console.app.config.unsubscribe.as_ref() else {
        tracing::error!("UNSUBSCRIBE_SECRET is not set: erasure cannot suppress addresses");
        return Err(Refusal::Unavailable);
    };
    let parked = console.deps.parked.clone();
    let purge = |needles: Vec<String>| async move { parked.purge(&needles).await.map_err(|e| e.to_string()) };
    let now = OffsetDateTime::now_utc();
    let actor = Actor::from(&viewer.session);
    let record = match crm_app::compliance::erase(&console.app.store, keys, &id, &actor.name, now, purge).await {
        Ok(Some(record)) => record,
        Ok(None) => return Ok(not_found()),
        Err(e) => {
            tracing::error!(error = %e, "console: erasure failed");
            return Err(Refusal::Unavailable);
        }
    };
    viewer
        .audit(&console, "customer.erase", record.customer_id.as_str())
        .await;
    let body = html! {
        p role="status" { "Erased by " (record.erased_by) " at " (format_ts(record.erased_at)) " (UTC)." }
        table {
            caption { "What was erased" }
            thead { tr { th scope="col" { "Kind" } th scope="col" { "Count" } } }
            tbody { @for (what, n) in &record.erased { tr { td { (what) } td.num { (n) } } } }
        }
        p { "Customers of this person: " @for c in &record.customers { a href={ "/dashboard/customers/" (c) } { (c) } " " } }
        p { a href="/dashboard/customers" { "Back to customers" } }
    };
    Ok(respond_page(viewer, "Customer erased", "/dashboard/customers", body))
}
