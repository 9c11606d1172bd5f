//! `GET|POST /api/ingest/click`: a click from Redtrack (GET with macros filled into the
//! query string) or any other sender (JSON or form POST). Creates the click and, if new,
//! the customer; a repeated click id is answered as a duplicate and changes nothing. CORS,
//! for a landing page sending its clicks from the browser with its `landing` key: a
//! browser's click gets its address and user agent from the request, never from the page.
//!
//! Also the landing-page tag: `GET /c.js` (the script, gzipped when the browser accepts it,
//! cached) and `GET /c.json?token=<landing key>` (its source's settings for the tag).

use std::sync::LazyLock;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use crm_core::input::{ClickCommand, alias};
use crm_core::source::Route;
use crm_http::{ApiError, AppState, HttpFunction, IngestRequest, JsonResult};
use serde_json::json;

pub const PATH: &str = "/api/ingest/click";
pub const TAG_PATH: &str = "/c.js";
pub const TAG_SETTINGS_PATH: &str = "/c.json";

pub const FUNCTION: HttpFunction = HttpFunction {
    logical_id: "ClickFunction",
    binary: "click",
    needs: &[crm_http::Needs::SourceSecret],
    routes: &[PATH, TAG_PATH, TAG_SETTINGS_PATH],
    router,
};

/// The tag as written (readable, commented) and gzipped once per instance.
pub const TAG: &str = include_str!("c.js");
static TAG_GZIP: LazyLock<Vec<u8>> = LazyLock::new(|| crm_http::gzip(TAG.as_bytes()));

/// A new tag reaches every browser within this.
const TAG_MAX_AGE: &str = "public, max-age=3600";
/// An edit of the source's settings reaches a visitor's browser within this.
const SETTINGS_MAX_AGE: &str = "private, max-age=300";

pub fn router(state: AppState) -> Router {
    let cors = crm_http::browser_cors(&state.config.cors_origins, &[Method::GET, Method::POST]);
    let routes = Router::new()
        .route(PATH, get(click).post(click))
        .route_layer(axum::Extension(Route::Click))
        .route(TAG_PATH, get(tag))
        .route(TAG_SETTINGS_PATH, get(tag_settings))
        .with_state(state);
    crm_http::finish(routes).layer(cors)
}

async fn click(State(state): State<AppState>, headers: HeaderMap, mut req: IngestRequest) -> JsonResult {
    if req.is_public() {
        // A browser: where it is and what it runs are the request's, not the page's to say.
        for name in alias::IP.iter().chain(alias::USER_AGENT) {
            req.fields.remove(name);
        }
        if let Some(ip) = &req.sender.provenance.client_ip {
            req.fields.insert(alias::IP[0], ip.as_str());
        }
        if let Some(ua) = headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()) {
            req.fields.insert(alias::USER_AGENT[0], ua);
        }
    }
    let (_, body) = crm_http::ingest::<ClickCommand>(&state, &req, "clickId").await?;
    Ok(Json(body))
}

async fn tag(headers: HeaderMap) -> Response {
    let asset = crm_http::Asset {
        body: TAG.as_bytes(),
        gzipped: &TAG_GZIP,
        content_type: "text/javascript; charset=utf-8",
        cache_control: TAG_MAX_AGE,
    };
    asset.serve(&headers)
}

/// The tag's settings for the page's key, checked as a click of that key would be (a known,
/// unrevoked key used from one of its origins).
async fn tag_settings(State(state): State<AppState>, req: Request) -> Result<Response, ApiError> {
    let (parts, _) = req.into_parts();
    let source = crm_http::admitted_source(&state, &parts, Route::Click).await?;
    let tag = source.map(|s| s.rules.tag.clone()).unwrap_or_default();
    // Every field, even at its default: the tag reads them all.
    let settings = json!({
        "decorateDomains": tag.decorate_domains,
        "decorateParam": tag.decorate_param,
        "waitForConsent": tag.wait_for_consent,
    });
    let mut response = Json(settings).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static(SETTINGS_MAX_AGE));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    #[test]
    fn the_tag_is_small_and_its_gzip_is_the_tag() {
        assert!(TAG_GZIP.len() <= 4096, "c.js is {} bytes gzipped", TAG_GZIP.len());
        let mut back = String::new();
        flate2::read::GzDecoder::new(TAG_GZIP.as_slice())
            .read_to_string(&mut back)
            .unwrap();
        assert_eq!(back, TAG);
    }

    #[test]
    fn the_tag_has_a_neutral_name_ad_blockers_do_not_match() {
        for word in ["track", "pixel", "click", "analytics"] {
            assert!(!TAG_PATH.contains(word) && !TAG_SETTINGS_PATH.contains(word));
        }
    }
}
