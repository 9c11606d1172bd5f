//! The console's pages: one layout, the login page, the overview and the audit log. Every
//! value is escaped by maud; nothing is loaded from elsewhere.

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use crm_core::access::Role;
use crm_core::attribution::Model;
use crm_core::stats::{Dimension, GroupBy, Period};
use crm_core::values::{format_ts, mask};
use maud::{DOCTYPE, Markup, html};
use serde_json::Value;
use time::OffsetDateTime;

use crate::{Console, Refusal, Viewer};

const CSS: &str = include_str!("../assets/console.css");

/// htmx (0BSD, vendored unchanged from npm's htmx.org; see assets/htmx-LICENSE): the only
/// script, for what changes on a page without a reload (new rows of today's feeds). The
/// version is in the path, so it is cached for a year.
pub const SCRIPT_PATH: &str = "/dashboard/assets/htmx-2.0.11.min.js";
pub const SCRIPT: &[u8] = include_bytes!("../assets/htmx-2.0.11.min.js");
static SCRIPT_GZIP: std::sync::LazyLock<Vec<u8>> = std::sync::LazyLock::new(|| crm_http::gzip(SCRIPT));
/// htmx without what the policy forbids anyway: no eval, no inline script or style.
const HTMX_CONFIG: &str =
    r#"{"allowEval":false,"allowScriptTags":false,"includeIndicatorStyles":false,"historyCacheSize":0}"#;

pub async fn script(headers: axum::http::HeaderMap) -> Response {
    crm_http::Asset {
        body: SCRIPT,
        gzipped: &SCRIPT_GZIP,
        content_type: "text/javascript; charset=utf-8",
        cache_control: "public, max-age=31536000, immutable",
    }
    .serve(&headers)
}

pub async fn stylesheet() -> Response {
    let mut r = CSS.into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/css; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
    r
}

/// What every console answer carries: nothing from elsewhere, no framing, no sniffing, no
/// referrer outside the console, and (pages) never cached.
pub async fn headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    for (name, value) in [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "same-origin"),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// A JSON value as a cell shows it: text as it is, nothing as nothing.
pub fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// A field of a JSON object as a cell shows it.
pub fn field(map: &serde_json::Map<String, Value>, name: &str) -> String {
    text(map.get(name).unwrap_or(&Value::Null))
}

pub fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Who sees a page.
type Shown = fn(Role) -> bool;

/// The pages in the navigation: (path, name, who sees it).
const NAV: &[(&str, &str, Shown)] = &[
    ("/dashboard", "Overview", |_| true),
    ("/dashboard/customers", "Customers", |_| true),
    ("/dashboard/clicks", "Clicks", |_| true),
    ("/dashboard/leads", "Leads", |_| true),
    ("/dashboard/events", "Events", |_| true),
    ("/dashboard/journey-automation", "Journey automation", |_| true),
    ("/dashboard/message-templates", "Message templates", |_| true),
    ("/dashboard/influencers", "Influencers", |_| true),
    ("/dashboard/campaigns", "Campaigns", |_| true),
    ("/dashboard/reports", "Reports", |_| true),
    ("/dashboard/exports", "Exports", |_| true),
    ("/dashboard/suppressions", "Suppressions", |_| true),
    ("/dashboard/settings", "Brand settings", |_| true),
    ("/dashboard/sources", "Sources", |_| true),
    ("/dashboard/users", "Users", Role::manages_users),
    ("/dashboard/audit", "Audit log", |_| true),
];

fn page(title: &str, viewer: Option<&Viewer>, current: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · CRM console" }
                link rel="stylesheet" href="/dashboard/console.css";
                meta name="htmx-config" content=(HTMX_CONFIG);
                script src=(SCRIPT_PATH) defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header {
                    span.brand { "CRM console" }
                    @if let Some(v) = viewer {
                        nav aria-label="Console" {
                            ul {
                                @for (path, name, shown) in NAV {
                                    @if shown(v.role()) {
                                        li {
                                            a href=(path) aria-current=[(*path == current).then_some("page")] { (name) }
                                        }
                                    }
                                }
                            }
                        }
                        div.who {
                            span { (v.session.email.as_str()) " · " (v.role().as_str()) }
                            form method="post" action="/dashboard/logout" {
                                input type="hidden" name="csrf" value=(v.session.csrf);
                                button type="submit" { "Log out" }
                            }
                            form method="post" action="/dashboard/logout-everywhere" {
                                input type="hidden" name="csrf" value=(v.session.csrf);
                                button.secondary type="submit" { "Log out everywhere" }
                            }
                        }
                    }
                }
                main #main {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

fn respond(status: StatusCode, markup: Markup) -> Response {
    (status, markup).into_response()
}

/// A page that only says something (errors, refusals).
pub fn message(status: StatusCode, title: &str, text: &str) -> Response {
    respond(
        status,
        page(
            title,
            None,
            "",
            html! { p { (text) } p { a href="/dashboard" { "Back to the console" } } },
        ),
    )
}

pub async fn not_found() -> Response {
    message(
        StatusCode::NOT_FOUND,
        "Not found",
        "There is no such page in the console.",
    )
}

/// The login page; `token` is the form's own CSRF token (its cookie is set by the caller).
pub fn login(status: StatusCode, email: &str, next: &str, error: Option<&str>, token: &str) -> Response {
    let body = html! {
        @if let Some(e) = error {
            p.error role="alert" { (e) }
        }
        form.login method="post" action="/dashboard/login" {
            input type="hidden" name="next" value=(next);
            input type="hidden" name="login_csrf" value=(token);
            label for="email" { "Email" }
            input #email type="email" name="email" value=(email) autocomplete="username" required;
            label for="password" { "Password" }
            input #password type="password" name="password" autocomplete="current-password" required;
            button type="submit" { "Log in" }
        }
    };
    respond(status, page("Log in", None, "", body))
}

/// The figures the overview shows, by metric name, in this order.
const FIGURES: &[(&str, &str)] = &[
    ("clicks", "Clicks"),
    ("leads", "Leads"),
    ("registrations", "Registrations"),
    ("ftds", "FTDs"),
    ("deposits", "Deposits"),
    ("revenueConverted", "Revenue"),
];

fn figures_table(caption: &str, rows: &BTreeMap<String, serde_json::Map<String, serde_json::Value>>) -> Markup {
    html! {
        table {
            caption { (caption) }
            thead { tr { th scope="col" { "Brand" } @for (_, label) in FIGURES { th scope="col" { (label) } } } }
            tbody {
                @if rows.is_empty() {
                    tr { td colspan=(FIGURES.len() + 1) { "Nothing yet." } }
                }
                @for (brand, figures) in rows {
                    tr {
                        th scope="row" { (brand) }
                        @for (name, _) in FIGURES {
                            td.num { (field(figures, name)) }
                        }
                    }
                }
            }
        }
    }
}

pub async fn overview(State(console): State<Console>, viewer: Viewer) -> Result<Response, Refusal> {
    let app = &console.app;
    let now = OffsetDateTime::now_utc();
    let zone = app.config.reporting.zone.clone();
    let fx = crm_app::reports::rates(&app.store, &app.config.reporting.currency).await?;
    let mut tables = Vec::new();
    for (caption, days) in [("Today", 0), ("Last 30 days", 29)] {
        let period = Period::parse(None, None, zone.clone(), now).map_err(|_| Refusal::Unavailable)?;
        let period = Period {
            from: period.to - time::Duration::days(days),
            ..period
        };
        let request = crm_app::reports::Request {
            by: GroupBy::Dimension(Dimension::Brand),
            period,
            brand: None,
            model: Model::LastTouch,
        };
        let rows = crm_app::reports::totals(&app.store, &request).await?;
        let rows = rows
            .iter()
            .filter(|(brand, _)| !brand.is_empty())
            .map(|(brand, t)| (brand.clone(), crm_app::reports::figures(t, &fx)))
            .collect();
        tables.push(figures_table(caption, &rows));
    }
    let currency = fx.base.clone().unwrap_or_else(|| app.config.reporting.currency.clone());
    let body = html! {
        p { "Per brand, in the reporting time zone (" (zone.as_str()) "); revenue in " (currency.to_string()) "." }
        @for t in &tables { (t) }
    };
    Ok(respond(
        StatusCode::OK,
        page("Overview", Some(&viewer), "/dashboard", body),
    ))
}

pub async fn audit(
    State(console): State<Console>,
    viewer: Viewer,
    Query(q): Query<BTreeMap<String, String>>,
) -> Result<Response, Refusal> {
    let today = OffsetDateTime::now_utc().date();
    let day = q
        .get("day")
        .and_then(|d| time::Date::parse(d, time::macros::format_description!("[year]-[month]-[day]")).ok())
        .unwrap_or(today);
    let action = q.get("action").map(|a| a.trim()).filter(|a| !a.is_empty());
    let before = q.get("before").map(String::as_str).filter(|b| b.len() <= 200);
    let (entries, next) = crm_app::access::audit_day(&console.app.store, day, 200, before).await?;
    let masked = !viewer.role().sees_personal_data();
    let show = |v: &str| if masked { mask(v) } else { v.to_owned() };
    let body = html! {
        form.filters method="get" action="/dashboard/audit" {
            label for="day" { "Day (UTC)" }
            input #day type="date" name="day" value=(day.to_string());
            label for="action" { "Action contains" }
            input #action type="search" name="action" value=[action];
            button type="submit" { "Show" }
        }
        table {
            caption { "Changes and reads of personal data, newest first. Lines are never edited." }
            thead { tr { th scope="col" { "When (UTC)" } th scope="col" { "Who" } th scope="col" { "Role" } th scope="col" { "Action" } th scope="col" { "Target" } th scope="col" { "Address" } th scope="col" { "Status" } } }
            tbody {
                @for e in entries.iter().filter(|e| action.is_none_or(|a| e.action.contains(a))) {
                    tr {
                        td { (format_ts(e.at)) }
                        td { (show(&e.actor.name)) }
                        td { (e.actor.role.as_str()) }
                        td { (e.action) }
                        td { (e.target) }
                        td { (e.ip.as_deref().map(show).unwrap_or_default()) }
                        td.num { (e.status) }
                    }
                }
            }
        }
        @if let Some(before) = next {
            p { a href={ "/dashboard/audit?day=" (day.to_string()) "&before=" (url_encode(&before)) } { "Older" } }
        }
    };
    Ok(respond(
        StatusCode::OK,
        page("Audit log", Some(&viewer), "/dashboard/audit", body),
    ))
}

/// A page of the console, 200.
pub fn respond_page(viewer: &Viewer, title: &str, current: &str, body: Markup) -> Response {
    respond_status(viewer, StatusCode::OK, title, current, body)
}

/// A page of the console with this status (a form shown again with its error).
pub fn respond_status(viewer: &Viewer, status: StatusCode, title: &str, current: &str, body: Markup) -> Response {
    respond(status, page(title, Some(viewer), current, body))
}

/// The periods offered beside every period form: (label, from, to).
pub fn presets(today: time::Date) -> [(&'static str, time::Date, time::Date); 5] {
    let yesterday = today - time::Duration::days(1);
    [
        ("Today", today, today),
        ("Yesterday", yesterday, yesterday),
        ("Last 7 days", today - time::Duration::days(6), today),
        ("Last 30 days", today - time::Duration::days(29), today),
        ("This month", today.replace_day(1).unwrap_or(today), today),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_loads_at_most_40_kb_of_script_gzipped() {
        assert!(SCRIPT_GZIP.len() <= 40 * 1024, "{} bytes", SCRIPT_GZIP.len());
        assert!(
            SCRIPT_PATH.ends_with("htmx-2.0.11.min.js"),
            "the version is in the path"
        );
    }
}
