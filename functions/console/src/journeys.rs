//! `/dashboard/journey-automation`: a brand's journey (its steps: when each message goes,
//! on which channel, with which template) and the messages of a day (scheduled, sent,
//! failed, skipped, with the reason: "why not sent"). Analysts see recipients masked.

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use crm_core::access::Role;
use crm_core::definition::{DefinitionError, JourneyDefinition};
use crm_core::message::Status;
use crm_core::values::{Brand, format_ts};
use crm_messaging::content::{self, ContentError, MessageFilter};
use maud::html;
use serde_json::Value;
use time::OffsetDateTime;

use crate::pages::{respond_status, text};
use crate::{Console, Refusal, Submitted, Viewer};

/// Messages on one page.
const PAGE: usize = 100;

/// A definition typed in the editor: what was sent back, and why it was refused.
struct Draft {
    json: String,
    error: Option<DefinitionError>,
}

pub async fn page(
    State(console): State<Console>,
    viewer: Viewer,
    Query(q): Query<BTreeMap<String, String>>,
) -> Result<Response, Refusal> {
    render(&console, &viewer, &q, None).await
}

/// Saves a brand's journey (owners and managers): parsed and checked as the admin API
/// does (every step's template must resolve); a refused step is named beside it.
pub async fn save(State(console): State<Console>, submitted: Submitted) -> Result<Response, Refusal> {
    let viewer = &submitted.viewer;
    viewer.require(Role::may_change)?;
    let q: BTreeMap<String, String> = [("brand".to_owned(), submitted.field("brand").to_owned())].into();
    let Ok(brand) = Brand::parse(submitted.field("brand")) else {
        return render(&console, viewer, &q, None).await;
    };
    let raw = submitted.field("definition").to_owned();
    let parsed = match serde_json::from_str::<serde_json::Map<String, Value>>(&raw) {
        Ok(body) => JourneyDefinition::from_json(&body),
        Err(e) => Err(DefinitionError {
            step: "definition".into(),
            code: "invalid_json",
            message: e.to_string(),
        }),
    };
    let saved = match parsed {
        Ok(definition) => content::save_journey(&console.app.store, &brand, &definition).await,
        Err(e) => Err(ContentError::Definition(e)),
    };
    match saved {
        Ok(()) => {
            viewer.audit(&console, "journey.put", brand.as_str()).await;
            render(&console, viewer, &q, None).await
        }
        Err(ContentError::Definition(error)) => {
            let draft = Draft {
                json: raw,
                error: Some(error),
            };
            render(&console, viewer, &q, Some(draft)).await
        }
        Err(e) => {
            tracing::error!(error = %e, "console: saving a journey failed");
            Err(Refusal::Unavailable)
        }
    }
}

async fn render(
    console: &Console,
    viewer: &Viewer,
    q: &BTreeMap<String, String>,
    draft: Option<Draft>,
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
        Some(b) => {
            let (d, own) = content::journey(store, b).await?;
            Some((d, if own { "the brand's own" } else { "the default" }))
        }
        None => None,
    };
    let stages = match &brand {
        Some(b) => Some(content::stages(store, b).await?),
        None => None,
    };
    let refused = draft.as_ref().and_then(|d| d.error.as_ref());
    let editing = match (&draft, &definition) {
        (Some(d), _) => d.json.clone(),
        (None, Some((d, _))) => {
            serde_json::to_string_pretty(&serde_json::json!({"steps": d.steps, "advances": d.advances}))
                .unwrap_or_default()
        }
        (None, None) => String::new(),
    };
    let filter = MessageFilter {
        brand: brand.clone(),
        status: status.as_deref().and_then(|s| Status::parse(s).ok()),
        reason: None,
    };
    // One read of the day's messages: the page's request budget.
    let (messages, next) = content::messages_of_day(store, day, None, &filter, PAGE, 1).await?;
    let more = next.is_some();
    let mut rows: Vec<Value> = messages
        .iter()
        .map(|m| serde_json::to_value(m).unwrap_or_default())
        .collect();
    if !viewer.role().sees_personal_data() {
        rows.iter_mut().for_each(crm_core::personal::mask_personal);
    } else if !rows.is_empty() {
        // The messages' recipients are personal data.
        viewer.audit(console, "message.list", &day.to_string()).await;
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
                @for s in Status::ALL.map(Status::as_str) {
                    option value=(s) selected[status.as_deref() == Some(s)] { (s) }
                }
            }
            button type="submit" { "Show" }
        }
        @if let (Some(b), Some((d, source))) = (&brand, &definition) {
            h2 { "Journey of " (b.as_str()) }
            p { "Using " (source) " definition." }
            @if let Some(counts) = &stages {
                table {
                    caption { "Customers at each stage with " (b.as_str()) " now" }
                    thead { tr { @for (m, _) in counts { th scope="col" { (m.as_str()) } } } }
                    tbody { tr { @for (m, n) in counts {
                        td.num { a href={ "/dashboard/customers?brand=" (b.as_str()) "&milestone=" (m.as_str()) } { (n) } }
                    } } }
                }
            }
            @if let Some(e) = refused {
                p.error #journey-error role="alert" { "Not saved: " code { (e.step) } ": " (e.message) }
            }
            table {
                caption { "Steps: what a customer gets at each stage" }
                thead { tr { th scope="col" { "Step" } th scope="col" { "Journey" } th scope="col" { "Stage" } th scope="col" { "Channel" } th scope="col" { "After" } th scope="col" { "Template" } @if refused.is_some() { th scope="col" { "Problem" } } } }
                tbody {
                    @for s in &d.steps {
                        tr {
                            td { (s.id) }
                            td { (text(&serde_json::to_value(s.journey_type).unwrap_or_default())) }
                            td.num { (s.stage) }
                            td { (s.channel.as_str()) }
                            td { (s.delay.to_string()) }
                            td { (s.template_id.as_deref().unwrap_or("built-in")) }
                            @if let Some(e) = refused { td.error { @if e.step == s.id { (e.message) } } }
                        }
                    }
                }
            }
            details open[refused.is_some()] {
                summary { "Edit the journey (JSON)" }
                form.stacked.wide method="post" action="/dashboard/journey-automation" {
                    input type="hidden" name="csrf" value=(viewer.session.csrf);
                    input type="hidden" name="brand" value=(b.as_str());
                    label for="definition" { "Definition of " (b.as_str()) }
                    textarea #definition name="definition" rows="20" spellcheck="false"
                        aria-describedby=[refused.map(|_| "journey-error")] readonly[!viewer.role().may_change()] { (editing) }
                    p.hint { "Each step: id, journeyType (acquisition or retention), stage, channel (email or sms), delay (e.g. \"2h\"), templateId (optional: the built-in one otherwise). Saving checks every step's template." }
                    @if viewer.role().may_change() { button type="submit" { "Save journey" } }
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
    let status = if refused.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    Ok(respond_status(
        viewer,
        status,
        "Journey automation",
        "/dashboard/journey-automation",
        body,
    ))
}
