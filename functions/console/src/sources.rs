//! `/dashboard/sources` (Settings): the ingest sources, each with its keys' last four
//! characters and use; create one (its key, and its signing secret when it signs, shown
//! once), add a key (rotation), revoke a key or the whole source. Managers and owners
//! change them; analysts read the list.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use crm_app::sources::{self, SourceError};
use crm_core::access::Role;
use crm_core::values::format_ts;
use maud::{Markup, html};
use time::OffsetDateTime;

use crate::pages::respond_status;
use crate::{Console, Refusal, Submitted, Viewer};

const KINDS: &[(&str, &str)] = &[
    ("tracker", "Tracker (Redtrack: clicks; conversions if told)"),
    ("landing", "Landing page (its form and tag: a public key)"),
    ("operator", "Operator (conversion postbacks)"),
    ("zapier", "Zapier (postbacks and leads)"),
    ("sms", "SMS provider (replies)"),
];

/// What the page says above the list: a new key to copy now, or an error.
enum Notice {
    None,
    Issued { key: String, secret: Option<String> },
    Error(String),
}

async fn render(console: &Console, viewer: &Viewer, notice: Notice, status: StatusCode) -> Result<Response, Refusal> {
    let entries = sources::list(&console.app.store).await?;
    let may_change = viewer.role().may_change();
    let csrf = &viewer.session.csrf;
    let action = |id: &str, what: &str, label: &str, extra: Markup| {
        html! {
            form.inline method="post" action={ "/dashboard/sources/" (id) } {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="do" value=(what);
                (extra)
                button type="submit" { (label) }
            }
        }
    };
    let body = html! {
        @match &notice {
            Notice::Issued { key, secret } => {
                div.notice role="status" {
                    p { "The new key (shown this once: copy it now):" }
                    pre.preview { (key) }
                    @if let Some(s) = secret { p { "Signing secret (shown once):" } pre.preview { (s) } }
                }
            }
            Notice::Error(e) => { p.error role="alert" { (e) } }
            Notice::None => {}
        }
        table {
            caption { "Who may send: one source per tracker, landing page, operator, zap or SMS provider" }
            thead { tr { th scope="col" { "Name" } th scope="col" { "Kind" } th scope="col" { "Brand" } th scope="col" { "Routes" } th scope="col" { "Keys" } th scope="col" { "Requests" } th scope="col" { "Status" } @if may_change { th scope="col" { "Actions" } } } }
            tbody {
                @if entries.is_empty() { tr { td colspan="8" { "No sources yet." } } }
                @for e in &entries {
                    @let s = &e.source;
                    tr {
                        th scope="row" { (s.name) br; small { (s.source_id) } }
                        td { (s.rules.kind.as_str()) @if s.rules.test { " " span.tag { "test" } } }
                        td { (s.rules.brand.as_ref().map(|b| b.as_str().to_owned()).unwrap_or_default()) }
                        td { (s.rules.routes.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", ")) }
                        td {
                            @for k in &e.keys {
                                span.tag { "…" (k.info.last4) @if k.info.revoked_at.is_some() { " revoked" } }
                                " "
                            }
                        }
                        td.num { (e.keys.iter().map(|k| k.info.requests).sum::<u64>()) }
                        td { @match s.revoked_at { Some(at) => { "revoked " (format_ts(at)) } None => { "live" } } }
                        @if may_change {
                            td.actions {
                                @if s.revoked_at.is_none() {
                                    (action(&s.source_id, "add-key", "Add a key", html! {}))
                                    @for k in e.keys.iter().filter(|k| k.info.revoked_at.is_none()) {
                                        (action(&s.source_id, "revoke-key", &format!("Revoke …{}", k.info.last4), html! { input type="hidden" name="last4" value=(k.info.last4); }))
                                    }
                                    (action(&s.source_id, "revoke", "Revoke the source", html! {}))
                                }
                            }
                        }
                    }
                }
            }
        }
        @if may_change {
            h2 { "Add a source" }
            form.stacked method="post" action="/dashboard/sources" {
                input type="hidden" name="csrf" value=(csrf);
                label for="src-name" { "Name" }
                input #src-name name="name" required maxlength="100";
                label for="src-kind" { "Kind" }
                select #src-kind name="kind" { @for (v, l) in KINDS { option value=(*v) { (l) } } }
                label for="src-brand" { "Brand (required for landing pages and operators)" }
                input #src-brand name="brand" maxlength="64" placeholder="rushbet";
                label for="src-origins" { "Allowed origins (landing pages; one per line, like https://lp.example.com)" }
                textarea #src-origins name="allowedOrigins" rows="2" {}
                label for="src-ips" { "Allowed networks (one per line; empty: any)" }
                textarea #src-ips name="allowedIps" rows="2" {}
                label for="src-domains" { "Operator domains the page's tag hands the click id to (landing pages; one per line)" }
                textarea #src-domains name="decorateDomains" rows="2" {}
                label for="src-param" { "Parameter the operator reads it from (default clickid)" }
                input #src-param name="decorateParam" maxlength="64" placeholder="btag";
                div.checks {
                    label { input type="checkbox" name="waitForConsent" value="true"; " The tag waits for consent" }
                    label { input type="checkbox" name="conversions" value="true"; " A tracker that also sends conversions" }
                    label { input type="checkbox" name="requireSignature" value="true"; " Requests are signed" }
                    label { input type="checkbox" name="test" value="true"; " Test traffic" }
                }
                button type="submit" { "Add source" }
            }
        }
    };
    Ok(respond_status(viewer, status, "Sources", "/dashboard/sources", body))
}

pub async fn list(State(console): State<Console>, viewer: Viewer) -> Result<Response, Refusal> {
    render(&console, &viewer, Notice::None, StatusCode::OK).await
}

fn lines(raw: &str) -> Option<Vec<String>> {
    let items: Vec<String> = raw
        .split(['\n', ','])
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    (!items.is_empty()).then_some(items)
}

fn source_error(e: SourceError) -> Result<String, Refusal> {
    match e {
        SourceError::Store(e) => Err(e.into()),
        other => Ok(other.to_string()),
    }
}

pub async fn create(State(console): State<Console>, s: Submitted) -> Result<Response, Refusal> {
    s.viewer.require(Role::may_change)?;
    let name = crm_core::values::clean_text(s.field("name"));
    if name.is_empty() || name.chars().count() > 100 {
        let notice = Notice::Error("Name: 1 to 100 characters.".into());
        return render(&console, &s.viewer, notice, StatusCode::BAD_REQUEST).await;
    }
    let rules = crm_core::source::rules_from(
        |f| Some(s.field(f).to_owned()).filter(|v| !v.is_empty()),
        |f| lines(s.field(f)),
        |f| s.field(f) == "true",
    );
    let rules = match rules {
        Ok(r) => r,
        Err((field, e)) => {
            let notice = Notice::Error(format!("{field}: {}", e.message));
            return render(&console, &s.viewer, notice, StatusCode::BAD_REQUEST).await;
        }
    };
    let now = OffsetDateTime::now_utc();
    match sources::create(
        &console.app.store,
        console.app.config.source_secret.as_ref(),
        name,
        rules,
        now,
    )
    .await
    {
        Ok(issued) => {
            s.viewer
                .audit(&console, "source.create", &issued.entry.source.source_id)
                .await;
            let notice = Notice::Issued {
                key: issued.key,
                secret: issued.signing_secret,
            };
            render(&console, &s.viewer, notice, StatusCode::CREATED).await
        }
        Err(e) => {
            let message = source_error(e)?;
            render(&console, &s.viewer, Notice::Error(message), StatusCode::CONFLICT).await
        }
    }
}

pub async fn change(State(console): State<Console>, Path(id): Path<String>, s: Submitted) -> Result<Response, Refusal> {
    s.viewer.require(Role::may_change)?;
    let store = &console.app.store;
    let now = OffsetDateTime::now_utc();
    let action = s.field("do").to_owned();
    let outcome = match action.as_str() {
        "add-key" => match sources::add_key(store, &id, now).await {
            Ok(issued) => {
                s.viewer.audit(&console, "source.add-key", &id).await;
                let notice = Notice::Issued {
                    key: issued.key,
                    secret: None,
                };
                return render(&console, &s.viewer, notice, StatusCode::CREATED).await;
            }
            Err(e) => Err(e),
        },
        "revoke-key" => sources::revoke_key(store, &console.app.sources, &id, s.field("last4"), now)
            .await
            .map(|_| ()),
        "revoke" => sources::revoke(store, &console.app.sources, &id, now).await.map(|_| ()),
        _ => {
            return render(
                &console,
                &s.viewer,
                Notice::Error("Unknown action.".into()),
                StatusCode::BAD_REQUEST,
            )
            .await;
        }
    };
    match outcome {
        Ok(()) => {
            s.viewer.audit(&console, &format!("source.{action}"), &id).await;
            Ok(Redirect::to("/dashboard/sources").into_response())
        }
        Err(e) => {
            let message = source_error(e)?;
            render(&console, &s.viewer, Notice::Error(message), StatusCode::CONFLICT).await
        }
    }
}
