//! The landing-page tag's server side: `/c.js` is served small and cached, `/c.json` gives a
//! landing key's settings only to its own pages, and a browser's click is recorded with the
//! request's address and user agent, never the page's.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use crm_tests::{TestApp, spawn_with, unique};
use http::{Method, Request, StatusCode, header};
use serde_json::{Value, json};

const LP: &str = "https://lp.rushbet.example";

async fn landing(app: &TestApp, extra: Value) -> (String, Value) {
    let mut spec = json!({"name": "LP", "kind": "landing", "brand": "rushbet", "allowedOrigins": [LP]});
    spec.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    let (status, body) = app.admin_send(Method::POST, "/api/sources", spec).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    (body["key"].as_str().unwrap().to_owned(), body)
}

#[tokio::test]
async fn the_tag_is_served_gzipped_and_cached() {
    let app = spawn_with(&[("INGEST_AUTH", "required")]).await;
    let plain = Request::get("/c.js").body(Body::empty()).unwrap();
    let (status, headers, body) = app.send(plain).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], "text/javascript; charset=utf-8");
    assert_eq!(headers[header::CACHE_CONTROL], "public, max-age=3600");
    assert_eq!(body.as_str().unwrap(), crm_click::TAG);

    let zipped = Request::get("/c.js")
        .header(header::ACCEPT_ENCODING, "br, gzip, deflate")
        .body(Body::empty())
        .unwrap();
    let (status, headers, _) = app.send(zipped).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_ENCODING], "gzip");
    assert_eq!(headers[header::VARY], "Accept-Encoding");
}

#[tokio::test]
async fn a_landing_keys_settings_go_to_its_own_pages_only() {
    let app = spawn_with(&[("INGEST_AUTH", "required")]).await;
    let (key, source) = landing(
        &app,
        json!({"decorateDomains": ["RushBet.com", "m.rushbet.pe"], "decorateParam": "btag", "waitForConsent": true}),
    )
    .await;
    assert_eq!(source["decorateDomains"], json!(["rushbet.com", "m.rushbet.pe"]));
    let settings = |origin: &'static str, key: String| {
        Request::get(format!("/c.json?token={key}"))
            .header(header::ORIGIN, origin)
            .body(Body::empty())
            .unwrap()
    };
    let (status, headers, body) = app.send(settings(LP, key.clone())).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"decorateDomains": ["rushbet.com", "m.rushbet.pe"], "decorateParam": "btag", "waitForConsent": true})
    );
    assert_eq!(headers[header::CACHE_CONTROL], "private, max-age=300");
    let (status, _, _) = app.send(settings("https://evil.example", key)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = app.send(settings(LP, "crm_not_a_key_000000000000000000".into())).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Defaults for a page that configured nothing.
    let (plain, _) = landing(&app, json!({})).await;
    let (_, _, body) = app.send(settings(LP, plain)).await;
    assert_eq!(
        body,
        json!({"decorateDomains": [], "decorateParam": "clickid", "waitForConsent": false})
    );

    for (spec, field) in [
        (
            json!({"name": "T", "kind": "tracker", "decorateDomains": ["rushbet.com"]}),
            "decorateDomains",
        ),
        (
            json!({"name": "T", "kind": "tracker", "waitForConsent": true}),
            "waitForConsent",
        ),
        (
            json!({"name": "L", "kind": "landing", "brand": "rushbet", "allowedOrigins": [LP], "decorateDomains": ["https://rushbet.com/x"]}),
            "decorateDomains",
        ),
        (
            json!({"name": "L", "kind": "landing", "brand": "rushbet", "allowedOrigins": [LP], "decorateParam": "a b"}),
            "decorateParam",
        ),
    ] {
        let (status, body) = app.admin_send(Method::POST, "/api/sources", spec.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{spec}");
        assert_eq!(body["error"]["field"], field, "{body}");
    }
}

#[tokio::test]
async fn a_browsers_click_has_the_requests_address_and_agent_not_the_pages() {
    let app = spawn_with(&[("INGEST_AUTH", "required")]).await;
    let (key, _) = landing(&app, json!({})).await;
    let click_id = unique("rt");
    let form = format!("clickId={click_id}&ip=203.0.113.66&ua=Forged%2F1.0&userAgent=Forged%2F2.0&sub1=story");
    let mut req = Request::builder()
        .method(Method::POST)
        .uri(format!("/api/ingest/click?token={key}"))
        .header(header::ORIGIN, LP)
        .header(header::USER_AGENT, "Mozilla/5.0 (Linux; Android 14) Real")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded;charset=UTF-8")
        .body(Body::from(form))
        .unwrap();
    req.extensions_mut()
        .insert(ConnectInfo("198.51.100.7:443".parse::<SocketAddr>().unwrap()));
    let (status, _, body) = app.send(req).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, feed) = app.admin("/api/clicks").await;
    let click: &Value = feed["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["clickId"] == click_id.as_str())
        .expect("the click is recorded");
    assert_eq!(click["ip"], "198.51.100.7", "{click}");
    assert_eq!(click["userAgent"], "Mozilla/5.0 (Linux; Android 14) Real");
    assert_eq!(click["subs"]["sub1"], "story");
}
