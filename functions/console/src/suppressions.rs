//! `/dashboard/suppressions`: who is never messaged, per channel, newest first; look an
//! address up, add one (by hand: every brand or one), lift an entry. An erased person's
//! entry stays. Analysts read the list with addresses masked and change nothing.

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use crm_app::compliance::{self, ManualSuppression, SuppressionError, SuppressionQuery};
use crm_core::access::Role;
use crm_core::compliance::{Scope, Suppression, SuppressionReason};
use crm_core::definition::Channel;
use crm_core::values::{format_ts, mask};
use maud::html;
use time::OffsetDateTime;

use crate::pages::respond_status;
use crate::{Console, Refusal, Submitted, Viewer};

/// Entries on the page.
const PAGE: i32 = 100;
const PATH: &str = "/dashboard/suppressions";

enum Notice {
    None,
    Done(String),
    Error(String),
}

fn error_text(e: SuppressionError) -> Result<String, Refusal> {
    Ok(match e {
        SuppressionError::Invalid { field, invalid } => format!("{field}: {invalid}"),
        SuppressionError::Erased => "This address belongs to an erased person: it stays suppressed as erased.".into(),
        SuppressionError::NotFound => "There is no such entry (it was lifted already).".into(),
        SuppressionError::Store(e) => return Err(e.into()),
    })
}

async fn render(
    console: &Console,
    viewer: &Viewer,
    channel: Channel,
    lookup: Option<&str>,
    notice: Notice,
    status: StatusCode,
) -> Result<Response, Refusal> {
    let app = &console.app;
    let Some(keys) = app.config.unsubscribe.as_ref() else {
        tracing::error!("UNSUBSCRIBE_SECRET is not set: the suppression list cannot be read");
        return Err(Refusal::Unavailable);
    };
    let region = app.config.defaults.phone_region;
    let mut notice = notice;
    let query = match lookup {
        Some(raw) => SuppressionQuery::Address { raw, region },
        None => SuppressionQuery::Page {
            limit: PAGE,
            after: None,
        },
    };
    let entries: Vec<Suppression> = match compliance::suppressions(&app.store, keys, channel, query).await {
        Ok((entries, _)) => entries,
        Err(e) => {
            notice = Notice::Error(error_text(e)?);
            Vec::new()
        }
    };
    let masked = !viewer.role().sees_personal_data();
    let may_change = viewer.role().may_change();
    let csrf = &viewer.session.csrf;
    let body = html! {
        @match &notice {
            Notice::Done(m) => { p.notice role="status" { (m) } }
            Notice::Error(m) => { p.error role="alert" { (m) } }
            Notice::None => {}
        }
        nav.tabs aria-label="Channel" {
            @for c in [Channel::Email, Channel::Sms] {
                a href={ (PATH) "?channel=" (c.as_str()) } aria-current=[(c == channel && lookup.is_none()).then_some("page")] { (c.as_str()) }
            }
        }
        form.filters method="get" action=(PATH) role="search" {
            input type="hidden" name="channel" value=(channel.as_str());
            label for="address" { "Look up an " @if channel == Channel::Email { "email" } @else { "phone number" } }
            input #address type="search" name="address" value=[lookup];
            button type="submit" { "Look up" }
        }
        table {
            caption {
                @if lookup.is_some() { "Entries of this address" } @else { "The newest " (PAGE) " entries (" (channel.as_str()) ")" }
            }
            thead { tr { th scope="col" { "Address" } th scope="col" { "Brands" } th scope="col" { "Reason" } th scope="col" { "Since (UTC)" } th scope="col" { "Source" } @if may_change { th scope="col" { "Actions" } } } }
            tbody {
                @if entries.is_empty() { tr { td colspan="6" { "None." } } }
                @for e in &entries {
                    tr {
                        td {
                            @match &e.address {
                                Some(a) if masked => { (mask(a)) }
                                Some(a) => { (a) }
                                None => { span.hint { "(not kept: " (e.address_hash.get(..12).unwrap_or_default()) "…)" } }
                            }
                        }
                        td { @if e.scope == Scope::All { "all" } @else { (e.scope.as_str()) } }
                        td { (e.reason.as_str()) }
                        td { (format_ts(e.at)) }
                        td { (e.source) }
                        @if may_change {
                            td {
                                @if e.reason != SuppressionReason::Erased {
                                    form.inline method="post" action={ (PATH) "/remove" } {
                                        input type="hidden" name="csrf" value=(csrf);
                                        input type="hidden" name="channel" value=(channel.as_str());
                                        input type="hidden" name="hash" value=(e.address_hash);
                                        input type="hidden" name="scope" value=(e.scope.as_str());
                                        button.secondary type="submit" { "Lift" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if may_change {
            h2 { "Suppress an address" }
            form.stacked method="post" action=(PATH) {
                input type="hidden" name="csrf" value=(csrf);
                label for="add-channel" { "Channel" }
                select #add-channel name="channel" {
                    @for c in [Channel::Email, Channel::Sms] { option value=(c.as_str()) selected[c == channel] { (c.as_str()) } }
                }
                label for="add-address" { "Email or phone number" }
                input #add-address type="text" name="address" required autocomplete="off";
                label for="add-scope" { "Brand (empty: every brand)" }
                input #add-scope type="text" name="scope";
                button type="submit" { "Suppress" }
            }
        }
    };
    Ok(respond_status(viewer, status, "Suppressions", PATH, body))
}

fn channel_of(q: &BTreeMap<String, String>) -> Channel {
    q.get("channel")
        .and_then(|c| Channel::parse(c).ok())
        .unwrap_or(Channel::Email)
}

pub async fn page(
    State(console): State<Console>,
    viewer: Viewer,
    Query(q): Query<BTreeMap<String, String>>,
) -> Result<Response, Refusal> {
    let lookup = q.get("address").map(|a| a.trim()).filter(|a| !a.is_empty());
    // A lookup says whether (and why) someone is suppressed, whoever asks; the list shows
    // addresses to who may see them.
    let channel = channel_of(&q).as_str();
    if lookup.is_some() {
        viewer.audit(&console, "suppression.lookup", channel).await;
    } else if viewer.role().sees_personal_data() {
        viewer.audit(&console, "suppression.list", channel).await;
    }
    render(&console, &viewer, channel_of(&q), lookup, Notice::None, StatusCode::OK).await
}

pub async fn add(State(console): State<Console>, submitted: Submitted) -> Result<Response, Refusal> {
    let viewer = &submitted.viewer;
    viewer.require(Role::may_change)?;
    let Some(keys) = console.app.config.unsubscribe.as_ref() else {
        return Err(Refusal::Unavailable);
    };
    let asked = ManualSuppression {
        channel: submitted.field("channel"),
        address: submitted.field("address"),
        scope: Some(submitted.field("scope")),
        reason: None,
    };
    let channel = Channel::parse(asked.channel).unwrap_or(Channel::Email);
    let region = console.app.config.defaults.phone_region;
    let now = OffsetDateTime::now_utc();
    let outcome = compliance::suppress_manually(&console.app.store, keys, region, &asked, "console", now)
        .await
        .map(|entry| {
            let target = format!(
                "{}/{}/{}",
                channel.as_str(),
                &entry.address_hash[..12],
                entry.scope.as_str()
            );
            (
                "suppression.add",
                target,
                format!("Suppressed for {}.", entry.scope.as_str()),
            )
        });
    settle(&console, viewer, channel, outcome).await
}

/// A change's outcome: audited and the list shown with what was done, or why not.
async fn settle(
    console: &Console,
    viewer: &Viewer,
    channel: Channel,
    outcome: Result<(&str, String, String), SuppressionError>,
) -> Result<Response, Refusal> {
    let (notice, status) = match outcome {
        Ok((action, target, done)) => {
            viewer.audit(console, action, &target).await;
            (Notice::Done(done), StatusCode::OK)
        }
        Err(e) => (Notice::Error(error_text(e)?), StatusCode::UNPROCESSABLE_ENTITY),
    };
    render(console, viewer, channel, None, notice, status).await
}

pub async fn remove(State(console): State<Console>, submitted: Submitted) -> Result<Response, Refusal> {
    let viewer = &submitted.viewer;
    viewer.require(Role::may_change)?;
    let channel = Channel::parse(submitted.field("channel")).unwrap_or(Channel::Email);
    let hash = submitted.field("hash");
    let scope = Scope::parse(submitted.field("scope"));
    let outcome = match scope {
        // A key is 32 hex characters: nothing else names an entry.
        Ok(scope) if hash.len() == 32 && hash.bytes().all(|b| b.is_ascii_hexdigit()) => {
            compliance::lift_suppression(&console.app.store, channel, hash, &scope)
                .await
                .map(|()| scope)
        }
        _ => Err(SuppressionError::NotFound),
    };
    let outcome = outcome.map(|scope| {
        let target = format!("{}/{}/{}", channel.as_str(), &hash[..12], scope.as_str());
        (
            "suppression.remove",
            target,
            "Lifted: messages may go to this address again.".to_owned(),
        )
    });
    settle(&console, viewer, channel, outcome).await
}
