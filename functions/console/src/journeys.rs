//! `/dashboard/journey-automation`: a brand's journey (its steps: when each message goes,
//! on which channel, with which template) and the messages of a day (scheduled, sent,
//! failed, skipped, with the reason: "why not sent"). Analysts see recipients masked.

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use axum::response::Response;
use crm_core::definition::JourneyDefinition;
use crm_core::values::{Brand, format_ts};
use maud::html;
use serde_json::Value;
use time::OffsetDateTime;

use crate::pages::{respond_page, text};
use crate::{Console, Refusal, Viewer};

/// Messages on one page.
const PAGE: i32 = 100;

pub async fn page(
    State(console): State<Console>,
    viewer: Viewer,
    Query(q): Query<BTreeMap<String, String>>,
) -> Result<Response, Refusal> {
    let store = &console.app.store;
    let today = OffsetDateTime::now_utc().date();
    let day = q
        .get("day")
        .and_then(|d| time::Date::parse(d, time::macros::format_description!("[year]-[month]-[day]")).ok())
        .unwrap_or(today);
    let brand = q.get("brand").and_then(|b| Brand::parse(b).ok());
    let status = q
        .get("status")
        .map(|s| s.trim().to_ascii_uppercase())
        .filter(|s| !s.is_empty());
    let definition = match &brand {
        Some(b) => Some(match store.journey_definition(b).await? {
            Some(d) => (d, "the brand's own"),
            None => (JourneyDefinition::default_definition(), "the default"),
        }),
        None => None,
    };
    let (messages, more) = store.messages_page(day, None, PAGE).await?;
    let mut rows: Vec<Value> = messages
        .iter()
        .filter(|m| brand.as_ref().is_none_or(|b| &m.brand == b))
        .map(|m| serde_json::to_value(m).unwrap_or_default())
        .filter(|m| status.as_ref().is_none_or(|s| text(&m["status"]) == *s))
        .collect();
    if !viewer.role().sees_personal_data() {
        rows.iter_mut().for_each(crm_core::personal::mask_personal);
    }
    let body = html! {
        form.filters method="get" action="/dashboard/journey-automation" {
            label for="brand" { "Brand" }
            input #brand type="search" name="brand" value=[brand.as_ref().map(|b| b.as_str())] placeholder="rushbet";
            label for="day" { "Day (UTC)" }
            input #day type="date" name="day" value=(day.to_string());
            label for="status" { "Status" }
            select #status name="status" {
                option value="" { "Any" }
                @for s in ["PENDING", "QUEUED", "SENDING", "SENT", "DELIVERED", "FAILED", "SKIPPED", "CANCELLED"] {
                    option value=(s) selected[status.as_deref() == Some(s)] { (s) }
                }
            }
            button type="submit" { "Show" }
        }
        @if let (Some(b), Some((d, source))) = (&brand, &definition) {
            h2 { "Journey of " (b.as_str()) }
            p { "Using " (source) " definition (change it with PUT /api/brands/" (b.as_str()) "/journey)." }
            table {
                caption { "Steps: what a customer gets at each stage" }
                thead { tr { th scope="col" { "Step" } th scope="col" { "Journey" } th scope="col" { "Stage" } th scope="col" { "Channel" } th scope="col" { "After" } th scope="col" { "Template" } } }
                tbody {
                    @for s in &d.steps {
                        tr {
                            td { (s.id) }
                            td { (text(&serde_json::to_value(s.journey_type).unwrap_or_default())) }
                            td.num { (s.stage) }
                            td { (s.channel.as_str()) }
                            td { (s.delay.to_string()) }
                            td { (s.template_id.as_deref().unwrap_or("built-in")) }
                        }
                    }
                }
            }
        }
        h2 { "Messages of " (day.to_string()) }
        table {
            caption { "Newest first; a message not sent says why" }
            thead { tr {
                th scope="col" { "Created (UTC)" } th scope="col" { "Brand" } th scope="col" { "Channel" }
                th scope="col" { "Step" } th scope="col" { "Due (UTC)" } th scope="col" { "Status" }
                th scope="col" { "Why" } th scope="col" { "To" } th scope="col" { "Subject" } th scope="col" { "Customer" }
            } }
            tbody {
                @if rows.is_empty() { tr { td colspan="10" { "No messages." } } }
                @for m in &rows {
                    tr {
                        td { (text(&m["createdAt"])) }
                        td { (text(&m["brand"])) }
                        td { (text(&m["channel"])) }
                        td { (text(&m["stepId"])) }
                        td { (text(&m["dueAt"])) }
                        td { (text(&m["status"])) }
                        td { (text(&m["reason"])) }
                        td { (text(&m["to"])) }
                        td { (text(&m["subject"])) }
                        td { a href={ "/dashboard/customers/" (text(&m["customerId"])) } { "profile" } }
                    }
                }
            }
        }
        @if more { p { "More messages this day than shown: narrow by brand or status, or use GET /api/messages." } }
        p { "Page read at " (format_ts(OffsetDateTime::now_utc())) "." }
    };
    Ok(respond_page(
        &viewer,
        "Journey automation",
        "/dashboard/journey-automation",
        body,
    ))
}
