//! `GET /l/{code}`: an influencer's tracked link. A person's visit is recorded as a click (a
//! new visit id as its click id; the link's influencer, campaign and brand; the client
//! address and user agent from the request; the UTMs, sub-ids and ad click ids of the
//! query) in one DynamoDB transaction, and answered `302` to the link's destination with
//! `sub9=<influencerId>&sub10=<visitId>` (or its placeholders filled) and the visitor's
//! other parameters. `HEAD`, link previews, crawlers and prefetches are redirected and not
//! counted; the same browser again within 30 s is the same visit. A visit is redirected
//! even when it cannot be recorded: the visitor's way to the offer never depends on us.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use crm_app::ingest::Sender;
use crm_core::input::{ClickCommand, Fields, VisitWindow, alias};
use crm_core::link::{Link, LinkCode, is_not_a_visit};
use crm_core::records::Provenance;
use crm_http::{AppState, HttpFunction};
use sha2::{Digest, Sha256};

pub const PATH: &str = "/l/{code}";

pub const FUNCTION: HttpFunction = HttpFunction {
    logical_id: "LinkFunction",
    binary: "link",
    needs: &[],
    routes: &[PATH],
    router,
};

/// How long an instance trusts what it read of a link (an edit reaches every instance
/// within this).
const CACHE_FOR: Duration = Duration::from_secs(60);
/// The same browser on the same link within this is one visit.
pub const SAME_VISIT: time::Duration = time::Duration::seconds(30);

/// Links by code as last read (`None`: no such link), with when.
type LinkCache = Arc<Mutex<HashMap<LinkCode, (Instant, Option<Link>)>>>;

#[derive(Clone)]
struct LinkState {
    app: AppState,
    cache: LinkCache,
}

pub fn router(state: AppState) -> Router {
    let routes = Router::new().route(PATH, get(visit)).with_state(LinkState {
        app: state,
        cache: Arc::default(),
    });
    crm_http::finish(routes)
}

impl LinkState {
    async fn link(&self, code: &LinkCode) -> Result<Option<Link>, crm_store::StoreError> {
        if let Some((at, link)) = self.cache.lock().expect("cache lock").get(code)
            && at.elapsed() < CACHE_FOR
        {
            return Ok(link.clone());
        }
        let link = self.app.store.link(code).await?;
        let mut cache = self.cache.lock().expect("cache lock");
        if cache.len() > 10_000 {
            cache.clear();
        }
        cache.insert(code.clone(), (Instant::now(), link.clone()));
        Ok(link)
    }
}

async fn visit(State(s): State<LinkState>, req: Request) -> Response {
    let (parts, _) = req.into_parts();
    let code = parts
        .uri
        .path()
        .strip_prefix("/l/")
        .and_then(|c| LinkCode::parse(c).ok());
    let link = match code {
        None => None,
        Some(code) => match s.link(&code).await {
            Ok(link) => link,
            Err(e) => {
                tracing::error!(error = %e, "reading a tracked link failed");
                return page(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "This link is unavailable for a moment. Please try again.",
                )
                .await;
            }
        },
    };
    let Some(link) = link else {
        return page(StatusCode::NOT_FOUND, "This link does not exist.").await;
    };
    let passed: Vec<(String, String)> = parts
        .uri
        .query()
        .and_then(|q| serde_urlencoded::from_str(q).ok())
        .unwrap_or_default();
    let header_text = |name: header::HeaderName| parts.headers.get(name).and_then(|v| v.to_str().ok());
    let user_agent = header_text(header::USER_AGENT);
    let purpose = header_text(header::HeaderName::from_static("sec-purpose"))
        .or_else(|| header_text(header::HeaderName::from_static("purpose")))
        .or_else(|| header_text(header::HeaderName::from_static("x-moz")));
    let visit_id = if parts.method == Method::HEAD || is_not_a_visit(user_agent, purpose) {
        None
    } else {
        let ip = crm_http::client_ip(&parts.extensions).map(|ip| ip.to_string());
        record(&s.app, &link, &new_visit_id(), &passed, ip, &parts.headers).await
    };
    redirect(&link.target(visit_id.as_deref(), &passed)).await
}

/// A visit id: also the click's id, and what comes back as Redtrack's `sub10`.
fn new_visit_id() -> String {
    format!("v{}", uuid::Uuid::now_v7().simple())
}

/// Records the visit as a click; the visit id the redirect carries, or `None` when it could
/// not be recorded. The same browser again within `SAME_VISIT` is not counted and gets a
/// fresh id of its own that no click has: two people behind one address with the same
/// phone model are never joined into one customer by a shared visit id, and a click that
/// comes back with that id is still taken as a repeat (not counted twice).
async fn record(
    app: &AppState,
    link: &Link,
    visit_id: &str,
    passed: &[(String, String)],
    ip: Option<String>,
    headers: &HeaderMap,
) -> Option<String> {
    let header_text = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    let user_agent = header_text(header::USER_AGENT).unwrap_or_default();
    let mut fields: Fields = passed
        .iter()
        .filter(|(k, _)| !decided_by_the_link(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    fields.insert("clickId", visit_id);
    fields.insert("influencerId", link.influencer_id.as_str());
    fields.insert("userAgent", user_agent);
    if let Some(campaign) = &link.campaign_id {
        fields.insert("campaign", campaign.as_str());
    }
    if let Some(brand) = &link.brand {
        fields.insert("brand", brand.as_str());
    }
    if let Some(ip) = &ip {
        fields.insert("ip", ip.as_str());
    }
    if let Some(referrer) = header_text(header::REFERER) {
        fields.insert("referrer", referrer);
    }
    let now = time::OffsetDateTime::now_utc();
    let mut cmd = match ClickCommand::parse(&fields, &app.config.defaults) {
        Ok(cmd) => cmd,
        Err(e) => {
            tracing::warn!(code = %link.code, field = e.field, "a link visit's parameters were refused; redirected, not recorded");
            return None;
        }
    };
    let browser = Sha256::digest(format!(
        "{}\n{}\n{}",
        link.code,
        ip.as_deref().unwrap_or_default(),
        user_agent
    ));
    cmd.once_per = Some(VisitWindow {
        key: hex::encode(&browser[..16]),
        window: SAME_VISIT,
    });
    let sender = Sender {
        provenance: Provenance {
            source_id: None,
            client_ip: ip.clone(),
            test: false,
        },
        claims_as: None,
        signature: None,
        kind: None,
    };
    match crm_app::ingest::run(&app.store, &cmd, &sender, now, app.config.dedupe_window).await {
        Ok(outcome) => {
            tracing::info!(code = %link.code, customer_id = %outcome.customer, visit_id = %outcome.record_id,
                repeat = outcome.duplicate, "link visit");
            crm_app::metrics::Metrics::new()
                .dimension("Kind", "link")
                .count("Ingested", usize::from(!outcome.duplicate))
                .count("Duplicates", usize::from(outcome.duplicate))
                .emit();
            Some(if outcome.duplicate {
                new_visit_id()
            } else {
                outcome.record_id
            })
        }
        Err(e) => {
            tracing::error!(code = %link.code, error = %e, "recording a link visit failed; redirected anyway");
            crm_app::metrics::Metrics::new()
                .dimension("Kind", "link")
                .count("VisitsNotRecorded", 1)
                .emit();
            None
        }
    }
}

/// Query parameters a visitor may not set: who is credited, for which campaign and brand,
/// the click's id and time, and what the request itself says (address, agent) or
/// identifies a person with. (They still pass through to the destination.)
fn decided_by_the_link(name: &str) -> bool {
    [
        alias::CLICK_ID,
        alias::INFLUENCER_ID,
        alias::CAMPAIGN,
        alias::POSTBACK_BRAND,
        alias::OCCURRED_AT,
        alias::IP,
        alias::USER_AGENT,
        alias::REFERRER,
        alias::EMAIL,
        alias::DEVICE_ID,
        alias::PHONE,
    ]
    .iter()
    .any(|aliases| aliases.contains(&name))
        || crm_core::link::is_own_parameter(name)
        || name == "token"
        || name == "test"
}

async fn redirect(location: &str) -> Response {
    match header::HeaderValue::from_str(location) {
        Ok(value) => (
            StatusCode::FOUND,
            [
                (header::LOCATION, value),
                (header::CACHE_CONTROL, header::HeaderValue::from_static("no-store")),
            ],
        )
            .into_response(),
        Err(_) => {
            page(
                StatusCode::BAD_GATEWAY,
                "This link's destination is not a valid address.",
            )
            .await
        }
    }
}

/// A short page for a person who followed a link that leads nowhere.
async fn page(status: StatusCode, message: &'static str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" \
         content=\"width=device-width, initial-scale=1\"><title>Link</title></head><body \
         style=\"font-family: system-ui, sans-serif; max-width: 32rem; margin: 4rem auto; padding: 0 1rem\">\
         <p>{message}</p></body></html>"
    );
    crm_http::page_headers((status, Html(html)).into_response()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_visitor_cannot_choose_who_is_credited_or_which_click_it_is() {
        for forged in [
            "clickid",
            "influencerId",
            "brand",
            "operatorId",
            "utm_campaign",
            "occurredAt",
            "timestamp",
            "ip",
            "ua",
            "email",
            "sub10",
            "token",
        ] {
            assert!(decided_by_the_link(forged), "{forged}");
        }
        for kept in ["utm_source", "utm_content", "sub1", "sub20", "fbclid", "ref_id"] {
            assert!(!decided_by_the_link(kept), "{kept}");
        }
    }
}
