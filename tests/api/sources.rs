//! Ingest sources end to end, with authentication on as in AWS (`INGEST_AUTH=required`):
//! what each kind of key may do, revocation and rotation, signed postbacks, public landing
//! keys, networks, provenance, and that a key is never stored, listed or echoed.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use crm_tests::{TestApp, spawn_with, unique};
use http::{Method, Request, StatusCode, header};
use serde_json::{Value, json};

const LP: &str = "https://lp.rushbet.example";

async fn app() -> TestApp {
    spawn_with(&[("INGEST_AUTH", "required")]).await
}

/// Creates a source through the admin API: `(id, key, signing secret)`.
async fn source(app: &TestApp, spec: Value) -> (String, String, Option<String>) {
    let (status, body) = app.admin_send(Method::POST, "/api/sources", spec.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{spec} → {body}");
    (
        body["id"].as_str().unwrap().to_owned(),
        body["key"].as_str().unwrap().to_owned(),
        body["signingSecret"].as_str().map(str::to_owned),
    )
}

/// A request to an ingest route with `key` (as `X-Api-Key`), optional extra headers.
async fn ingest(
    app: &TestApp,
    method: Method,
    path: &str,
    key: Option<&str>,
    body: Value,
    headers: &[(&str, &str)],
) -> (StatusCode, Value) {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(key) = key {
        req = req.header("x-api-key", key);
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let (status, _, body) = app.send(req).await;
    (status, body)
}

/// A valid request body for each route.
fn body_for(route: &str) -> Value {
    match route {
        "/api/ingest/click" => json!({"clickId": unique("c")}),
        "/api/ingest/lead" => json!({"email": format!("{}@example.com", unique("l"))}),
        "/api/postback" => json!({"eventType": "registration", "userId": unique("u")}),
        _ => json!({"from": crm_tests::phone(), "text": "HELLO"}),
    }
}

const ROUTES: [&str; 4] = [
    "/api/ingest/click",
    "/api/ingest/lead",
    "/api/postback",
    "/api/webhooks/sms-inbound",
];

#[tokio::test]
async fn each_kind_of_key_calls_only_its_routes() {
    let app = app().await;
    let table: [(&str, Value, [bool; 4]); 6] = [
        ("tracker", json!({}), [true, false, false, false]),
        ("tracker", json!({"conversions": true}), [true, false, true, false]),
        (
            "landing",
            json!({"brand": "rushbet", "allowedOrigins": [LP]}),
            [true, true, false, false],
        ),
        ("operator", json!({"brand": "rushbet"}), [false, false, true, false]),
        ("zapier", json!({}), [false, true, true, false]),
        ("sms", json!({}), [false, false, false, true]),
    ];
    for (kind, extra, allowed) in table {
        let mut spec = json!({"name": format!("{kind} source"), "kind": kind});
        spec.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        let (_, key, _) = source(&app, spec).await;
        for (route, ok) in ROUTES.iter().zip(allowed) {
            let (status, body) = ingest(
                &app,
                Method::POST,
                route,
                Some(&key),
                body_for(route),
                &[("origin", LP)],
            )
            .await;
            if ok {
                assert_eq!(status, StatusCode::OK, "{kind} on {route}: {body}");
            } else {
                assert_eq!(status, StatusCode::FORBIDDEN, "{kind} on {route}: {body}");
                assert_eq!(body["error"]["code"], "forbidden");
            }
        }
    }
}

#[tokio::test]
async fn routes_can_narrow_a_kind_and_only_narrow_it() {
    let app = app().await;
    let (_, key, _) = source(&app, json!({"name": "zap leads", "kind": "zapier", "routes": ["lead"]})).await;
    let (status, _) = ingest(
        &app,
        Method::POST,
        "/api/ingest/lead",
        Some(&key),
        body_for("/api/ingest/lead"),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = ingest(
        &app,
        Method::POST,
        "/api/postback",
        Some(&key),
        body_for("/api/postback"),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    for (spec, field) in [
        (json!({"name": "x", "kind": "zapier", "routes": ["click"]}), "routes"),
        (json!({"name": "x", "kind": "operator"}), "brand"),
        (
            json!({"name": "x", "kind": "landing", "brand": "rushbet"}),
            "allowedOrigins",
        ),
        (json!({"name": "x", "kind": "bank"}), "kind"),
        (json!({"kind": "tracker"}), "name"),
        (
            json!({"name": "x", "kind": "tracker", "allowedIps": ["10.0.0.0/33"]}),
            "allowedIps",
        ),
        (
            json!({"name": "x", "kind": "landing", "brand": "b", "allowedOrigins": ["https://LP.example/x"]}),
            "allowedOrigins",
        ),
    ] {
        let (status, body) = app.admin_send(Method::POST, "/api/sources", spec.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{spec}: {body}");
        assert_eq!(body["error"]["field"], field, "{spec}: {body}");
    }
}

#[tokio::test]
async fn no_unknown_or_revoked_key_is_refused_and_a_rotated_source_keeps_working() {
    let app = app().await;
    let path = "/api/postback";
    let (status, body) = ingest(&app, Method::POST, path, None, body_for(path), &[]).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unauthorized"))
    );
    let made_up = format!("crm_{}", "0".repeat(64));
    let (status, body) = ingest(&app, Method::POST, path, Some(&made_up), body_for(path), &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(!body.to_string().contains(&made_up), "the key is never echoed: {body}");

    let (id, old, _) = source(&app, json!({"name": "Rushbet", "kind": "operator", "brand": "rushbet"})).await;
    let (status, body) = app
        .admin_send(Method::POST, &format!("/api/sources/{id}/keys"), json!({}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let new = body["key"].as_str().unwrap().to_owned();
    assert_ne!(old, new);
    for key in [&old, &new] {
        let (status, body) = ingest(&app, Method::POST, path, Some(key), body_for(path), &[]).await;
        assert_eq!(status, StatusCode::OK, "both keys work during a rotation: {body}");
    }
    // The key as a URL parameter works too (trackers and operators can only do that).
    let (status, body) = app
        .get(&format!(
            "/api/postback?event=registration&userId={}&token={new}",
            unique("u")
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let last4 = &old[old.len() - 4..];
    let (status, body) = app
        .admin_send(Method::DELETE, &format!("/api/sources/{id}/keys/{last4}"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = ingest(&app, Method::POST, path, Some(&old), body_for(path), &[]).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the old key is refused from the next request on"
    );
    let (status, _) = ingest(&app, Method::POST, path, Some(&new), body_for(path), &[]).await;
    assert_eq!(status, StatusCode::OK, "the new key still works");

    let (status, body) = app
        .admin_send(Method::DELETE, &format!("/api/sources/{id}"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["revokedAt"].is_string(), "{body}");
    let (status, _) = ingest(&app, Method::POST, path, Some(&new), body_for(path), &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a revoked source's keys are refused");
    let (status, _) = app
        .admin_send(Method::DELETE, &format!("/api/sources/{id}"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "revoking twice changes nothing");
    let (status, _) = app
        .admin_send(Method::POST, &format!("/api/sources/{id}/keys"), json!({}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "a revoked source gets no new key");
}

#[tokio::test]
async fn the_list_shows_last_four_and_usage_and_no_secret_is_stored() {
    let app = app().await;
    let (id, key, secret) = source(
        &app,
        json!({"name": "Signed op", "kind": "operator", "brand": "rushbet", "requireSignature": true}),
    )
    .await;
    let secret = secret.expect("a signing source's secret is shown once");
    let (_, tracker_key, none) = source(&app, json!({"name": "Redtrack", "kind": "tracker"})).await;
    assert_eq!(none, None);
    for _ in 0..3 {
        let (status, _) = ingest(
            &app,
            Method::POST,
            "/api/ingest/click",
            Some(&tracker_key),
            body_for("/api/ingest/click"),
            &[],
        )
        .await;
        assert_eq!(status, StatusCode::OK);
    }
    let (status, list) = app.admin("/api/sources").await;
    assert_eq!(status, StatusCode::OK);
    let text = list.to_string();
    for secret in [&key, &tracker_key, &secret] {
        assert!(!text.contains(secret.as_str()), "no secret in the list");
    }
    let signed = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id)
        .unwrap();
    assert_eq!(signed["keys"][0]["last4"], key[key.len() - 4..]);
    assert_eq!(signed["requireSignature"], true);
    let tracker = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["kind"] == "tracker")
        .unwrap();
    assert_eq!(tracker["routes"], json!(["click"]));
    assert!(tracker["lastUsedAt"].is_string(), "{tracker}");
    assert!(tracker["requests"].as_u64().unwrap() >= 1, "{tracker}");

    // Nothing in the table holds a key or the signing secret in plain text.
    let items = app
        .state
        .store
        .client()
        .scan()
        .table_name(app.state.store.table())
        .send()
        .await
        .unwrap()
        .items
        .unwrap_or_default();
    let dump = format!("{items:?}");
    for secret in [&key, &tracker_key, &secret] {
        assert!(!dump.contains(secret.as_str()), "a secret is stored in plain text");
    }
}

#[tokio::test]
async fn a_bound_source_writes_for_its_brand_only() {
    let app = app().await;
    let (_, key, _) = source(&app, json!({"name": "Rushbet", "kind": "operator", "brand": "rushbet"})).await;
    let forged = json!({"eventType": "deposit", "userId": unique("u"), "depositAmount": 500, "operatorId": "roobet"});
    let (status, body) = ingest(&app, Method::POST, "/api/postback", Some(&key), forged, &[]).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["field"], "operatorId");
    let (status, body) = ingest(
        &app,
        Method::POST,
        "/api/postback",
        Some(&key),
        body_for("/api/postback"),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["brand"], "rushbet", "a request naming no brand gets the source's");
    let own = json!({"eventType": "deposit", "userId": unique("u"), "depositAmount": 5, "operator": "RushBet"});
    let (status, body) = ingest(&app, Method::POST, "/api/postback", Some(&key), own, &[]).await;
    assert_eq!(status, StatusCode::OK, "its own brand, any spelling: {body}");
}

#[tokio::test]
async fn a_landing_key_reveals_nothing_and_works_only_from_its_pages() {
    let app = app().await;
    let (_, key, _) = source(
        &app,
        json!({"name": "LP", "kind": "landing", "brand": "rushbet", "allowedOrigins": [LP]}),
    )
    .await;
    let email = format!("{}@example.com", unique("victim"));
    let lead = json!({"email": email, "firstName": "Ana"});
    let (status, first) = ingest(
        &app,
        Method::POST,
        "/api/ingest/lead",
        Some(&key),
        lead.clone(),
        &[("origin", LP)],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let (status, again) = ingest(
        &app,
        Method::POST,
        "/api/ingest/lead",
        Some(&key),
        lead,
        &[("origin", LP)],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(first, again, "a repeat looks exactly like a first time");
    assert_eq!(first, json!({"status": "accepted", "warnings": []}));
    let click = json!({"clickId": unique("c"), "email": email});
    let (status, body) = ingest(
        &app,
        Method::POST,
        "/api/ingest/click",
        Some(&key),
        click,
        &[("origin", LP)],
    )
    .await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, json!({"status": "accepted", "warnings": []}))
    );

    for origin in [Some("https://evil.example"), None] {
        let headers: Vec<(&str, &str)> = origin.map(|o| ("origin", o)).into_iter().collect();
        let (status, body) = ingest(
            &app,
            Method::POST,
            "/api/ingest/lead",
            Some(&key),
            body_for("/api/ingest/lead"),
            &headers,
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{origin:?}: {body}");
    }
    let (status, _) = ingest(
        &app,
        Method::POST,
        "/api/postback",
        Some(&key),
        body_for("/api/postback"),
        &[("origin", LP)],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a public key never posts conversions");
}

#[tokio::test]
async fn allowed_networks_are_checked_against_the_client_address_not_headers() {
    let app = app().await;
    let (_, key, _) = source(
        &app,
        json!({"name": "Redtrack", "kind": "tracker", "allowedIps": ["203.0.113.0/24", "2001:db8::/32"]}),
    )
    .await;
    let from = |peer: &str, forwarded: &str| {
        let mut req = Request::get(format!("/api/ingest/click?clickid={}&token={key}", unique("c")))
            .header("x-forwarded-for", forwarded)
            .body(Body::empty())
            .unwrap();
        req.extensions_mut()
            .insert(ConnectInfo(peer.parse::<SocketAddr>().unwrap()));
        req
    };
    for (peer, expected) in [
        ("203.0.113.9:5000", StatusCode::OK),
        ("[2001:db8::7]:5000", StatusCode::OK),
        ("198.51.100.1:5000", StatusCode::FORBIDDEN),
    ] {
        let (status, _, body) = app.send(from(peer, "203.0.113.9")).await;
        assert_eq!(status, expected, "{peer}: {body}");
    }
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

async fn signed_post(app: &TestApp, key: &str, body: &str, signature: Option<String>) -> (StatusCode, Value) {
    let mut req = Request::post("/api/postback")
        .header("x-api-key", key)
        .header(header::CONTENT_TYPE, "application/json");
    if let Some(sig) = signature {
        req = req.header("x-signature", sig);
    }
    let (status, _, body) = app.send(req.body(Body::from(body.to_owned())).unwrap()).await;
    (status, body)
}

#[tokio::test]
async fn signed_postbacks_refuse_tampering_stale_times_and_replays() {
    let app = app().await;
    let (_, key, secret) = source(
        &app,
        json!({"name": "Signed op", "kind": "operator", "brand": "rushbet", "requireSignature": true}),
    )
    .await;
    let secret = secret.unwrap();
    let body =
        json!({"eventType": "deposit", "userId": unique("u"), "depositAmount": "100.50", "transactionId": unique("t")})
            .to_string();
    let good = crm_core::source::sign(&secret, now(), body.as_bytes());

    let (status, answer) = signed_post(&app, &key, &body, Some(good.clone())).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let (status, answer) = signed_post(&app, &key, &body, Some(good)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a replay is refused: {answer}");
    assert!(answer["error"]["message"].as_str().unwrap().contains("already used"));

    let tampered = body.replace("100.50", "900.50");
    let sig = crm_core::source::sign(&secret, now(), body.as_bytes());
    let (status, _) = signed_post(&app, &key, &tampered, Some(sig)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a tampered body");
    let stale = crm_core::source::sign(&secret, now() - 301, body.as_bytes());
    let (status, _) = signed_post(&app, &key, &body, Some(stale)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a stale t");
    let (status, _) = signed_post(&app, &key, &body, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "no signature");

    // A legitimate retry signs again with a new t: the repeat is then a duplicate, not a replay.
    let retry = crm_core::source::sign(&secret, now() + 1, body.as_bytes());
    let (status, answer) = signed_post(&app, &key, &body, Some(retry.clone())).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["duplicate"], true);
    let (status, _) = signed_post(&app, &key, &body, Some(retry)).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a signed repeat used its signature too"
    );

    // Fields in the URL are not covered by the signature: refused.
    let fresh = json!({"eventType": "deposit", "userId": unique("u"), "depositAmount": "1"}).to_string();
    let sig = crm_core::source::sign(&secret, now(), fresh.as_bytes());
    let req = Request::post(format!("/api/postback?token={key}&email=attacker@example.com"))
        .header(header::CONTENT_TYPE, "application/json")
        .header("x-signature", sig)
        .body(Body::from(fresh))
        .unwrap();
    let (status, _, answer) = app.send(req).await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("unsigned_field"))
    );

    let (status, _) = app.get(&format!("/api/postback?event=ftd&userId=u1&token={key}")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a signing source cannot use GET");
}

#[tokio::test]
async fn records_keep_their_source_and_client_address() {
    let app = app().await;
    let (id, key, _) = source(&app, json!({"name": "Redtrack", "kind": "tracker"})).await;
    let click_id = unique("c");
    let mut req = Request::get(format!("/api/ingest/click?clickid={click_id}&ip=10.9.9.9&token={key}"))
        .body(Body::empty())
        .unwrap();
    req.extensions_mut()
        .insert(ConnectInfo("203.0.113.5:443".parse::<SocketAddr>().unwrap()));
    let (status, _, body) = app.send(req).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, clicks) = app.admin("/api/clicks").await;
    let click = clicks["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["clickId"] == click_id.as_str())
        .unwrap();
    assert_eq!(click["sourceId"], id.as_str());
    assert_eq!(click["clientIp"], "203.0.113.5", "the caller's address");
    assert_eq!(click["ip"], "10.9.9.9", "the visitor's, as the tracker reported it");
    assert_eq!(click["sourceName"], "Redtrack");
    assert!(!click.to_string().contains(&key));
}

#[tokio::test]
async fn a_source_bound_to_no_brand_cannot_pre_claim_another_sources_transaction_ids() {
    let app = app().await;
    let (_, zap_a, _) = source(&app, json!({"name": "Zap A", "kind": "zapier"})).await;
    let (_, zap_b, _) = source(&app, json!({"name": "Zap B", "kind": "zapier"})).await;
    let txid = unique("t");
    let post = async |key: &str| {
        let body = json!({"eventType": "deposit", "operatorId": "rushbet", "userId": unique("u"), "depositAmount": 10, "transactionId": txid});
        ingest(&app, Method::POST, "/api/postback", Some(key), body, &[])
            .await
            .1
    };
    let first = post(&zap_a).await;
    assert_eq!(first["duplicate"], false, "{first}");
    let other = post(&zap_b).await;
    assert_eq!(other["duplicate"], false, "B's id is B's own: {other}");
    let again = post(&zap_a).await;
    assert_eq!(again["duplicate"], true, "A's own repeat: {again}");
}

#[tokio::test]
async fn a_warm_key_adds_no_round_trip_to_the_ingest_budgets() {
    let app = app().await;
    let (_, key, _) = source(&app, json!({"name": "Zap", "kind": "zapier"})).await;
    let (_, tracker, _) = source(&app, json!({"name": "Redtrack", "kind": "tracker"})).await;
    // The first request of each key reads it (and counts it) once.
    ingest(
        &app,
        Method::POST,
        "/api/ingest/lead",
        Some(&key),
        body_for("/api/ingest/lead"),
        &[],
    )
    .await;
    ingest(
        &app,
        Method::POST,
        "/api/ingest/click",
        Some(&tracker),
        body_for("/api/ingest/click"),
        &[],
    )
    .await;
    app.take_calls();
    let (status, _) = ingest(
        &app,
        Method::POST,
        "/api/ingest/click",
        Some(&tracker),
        body_for("/api/ingest/click"),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(app.take_calls(), BTreeMap::from([("TransactWriteItems".to_owned(), 1)]));
    let (status, _) = ingest(
        &app,
        Method::POST,
        "/api/ingest/lead",
        Some(&key),
        body_for("/api/ingest/lead"),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        app.take_calls(),
        BTreeMap::from([("BatchGetItem".to_owned(), 1), ("TransactWriteItems".to_owned(), 1)])
    );
}

#[tokio::test]
async fn only_an_sms_source_changes_an_opt_out() {
    let app = app().await;
    let (_, zap, _) = source(&app, json!({"name": "Zap", "kind": "zapier"})).await;
    let (_, sms, _) = source(&app, json!({"name": "SNS replies", "kind": "sms"})).await;
    let start = json!({"from": crm_tests::phone(), "text": "START"});
    let (status, _) = ingest(
        &app,
        Method::POST,
        "/api/webhooks/sms-inbound",
        Some(&zap),
        start.clone(),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = ingest(
        &app,
        Method::POST,
        "/api/webhooks/sms-inbound",
        None,
        start.clone(),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = ingest(&app, Method::POST, "/api/webhooks/sms-inbound", Some(&sms), start, &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // A brand's own number changes that brand's opt-outs only.
    let (_, rushbet_sms, _) = source(
        &app,
        json!({"name": "Rushbet replies", "kind": "sms", "brand": "rushbet"}),
    )
    .await;
    let phone = crm_tests::phone();
    let other = json!({"from": phone, "text": "STOP", "brand": "roobet"});
    let (status, body) = ingest(
        &app,
        Method::POST,
        "/api/webhooks/sms-inbound",
        Some(&rushbet_sms),
        other,
        &[],
    )
    .await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (StatusCode::FORBIDDEN, Some("brand")),
        "{body}"
    );
    let own = json!({"from": phone, "text": "STOP"});
    let (status, body) = ingest(
        &app,
        Method::POST,
        "/api/webhooks/sms-inbound",
        Some(&rushbet_sms),
        own,
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, list) = app
        .admin(&format!(
            "/api/suppressions?channel=sms&address={}",
            phone.replace('+', "%2B")
        ))
        .await;
    let scopes: Vec<&Value> = list["items"].as_array().unwrap().iter().map(|i| &i["scope"]).collect();
    assert_eq!(scopes, [&json!("rushbet")], "not every brand's: {list}");
}

#[tokio::test]
async fn a_signed_sms_reply_cannot_be_replayed() {
    let app = app().await;
    let (_, key, secret) = source(
        &app,
        json!({"name": "Signed replies", "kind": "sms", "requireSignature": true}),
    )
    .await;
    let body = json!({"from": crm_tests::phone(), "text": "STOP"}).to_string();
    let sig = crm_core::source::sign(&secret.unwrap(), now(), body.as_bytes());
    let post = || {
        Request::post("/api/webhooks/sms-inbound")
            .header("x-api-key", &key)
            .header(header::CONTENT_TYPE, "application/json")
            .header("x-signature", &sig)
            .body(Body::from(body.clone()))
            .unwrap()
    };
    let (status, _, answer) = app.send(post()).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let (status, _, _) = app.send(post()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

/// The fenced code block of `doc` in `language` that contains `marker`.
fn code_block<'a>(doc: &'a str, language: &str, marker: &str) -> &'a str {
    doc.split("```")
        .skip(1)
        .step_by(2)
        .filter_map(|block| block.strip_prefix(language)?.strip_prefix('\n'))
        .find(|code| code.contains(marker))
        .unwrap_or_else(|| panic!("no {language} block with {marker:?} in the docs"))
}

/// What an operator's developer would run, copied from docs/integrations.md: the curl +
/// openssl and the Python signing examples, against a real socket serving the same app.
#[tokio::test]
async fn the_documented_signing_examples_are_accepted() {
    let app = app().await;
    let (_, key, secret) = source(
        &app,
        json!({"name": "Signed op", "kind": "operator", "brand": "rushbet", "requireSignature": true}),
    )
    .await;
    let secret = secret.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let crm = format!("http://{}", listener.local_addr().unwrap());
    let service = app.app.clone().into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, service).await });

    let doc = include_str!("../../docs/integrations.md");
    let shell = code_block(doc, "bash", "openssl dgst").to_owned();
    let python = format!(
        "{}\nevent = {{'eventType': 'deposit', 'userId': 'u-py', 'depositAmount': '20', 'transactionId': 'tx-py'}}\n\
         print(json.dumps(post(os.environ['CRM'], os.environ['TOKEN'], os.environ['SIGNING_SECRET'], event)))",
        code_block(doc, "python", "def signature")
    );
    let run = move |program: &'static str, args: Vec<String>| {
        let (crm, key, secret) = (crm.clone(), key.clone(), secret.clone());
        tokio::task::spawn_blocking(move || {
            let out = std::process::Command::new(program)
                .args(args)
                .env("CRM", &crm)
                .env("TOKEN", &key)
                .env("SIGNING_SECRET", &secret)
                .output()
                .expect("run the documented example");
            assert!(
                out.status.success(),
                "{program}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            serde_json::from_slice::<Value>(&out.stdout)
                .unwrap_or_else(|_| panic!("{program} printed {}", String::from_utf8_lossy(&out.stdout)))
        })
    };
    let curl = run("bash", vec!["-c".into(), shell]).await.unwrap();
    assert_eq!(
        (curl["status"].as_str(), curl["eventType"].as_str()),
        (Some("accepted"), Some("ftd")),
        "{curl}"
    );
    let py = run("python3", vec!["-c".into(), python]).await.unwrap();
    assert_eq!(
        (py["status"].as_str(), py["brand"].as_str()),
        (Some("accepted"), Some("rushbet")),
        "{py}"
    );
}

/// A key the revocation's list missed (added while the source was being revoked) is still
/// refused: every key check reads its source, consistently.
#[tokio::test]
async fn a_key_missed_by_its_sources_revocation_is_refused_all_the_same() {
    let app = spawn_with(&[("INGEST_AUTH", "required"), ("SOURCE_CACHE_SECONDS", "0")]).await;
    let (id, key, _) = source(&app, json!({"name": "Redtrack", "kind": "tracker"})).await;
    let (status, _) = ingest(
        &app,
        Method::POST,
        "/api/ingest/click",
        Some(&key),
        body_for("/api/ingest/click"),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let mut entry = app.state.store.source(&id).await.unwrap().unwrap();
    entry.keys.clear();
    app.state
        .store
        .revoke_source(&entry, time::OffsetDateTime::now_utc())
        .await
        .unwrap();
    let (status, _) = ingest(
        &app,
        Method::POST,
        "/api/ingest/click",
        Some(&key),
        body_for("/api/ingest/click"),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // A second DELETE revokes the key item itself.
    let (status, body) = app
        .admin_send(Method::DELETE, &format!("/api/sources/{id}"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(body["keys"][0]["revokedAt"].is_string(), "{body}");
}

/// Zapier's "Test action" through a test source, sent with a real person's click id and
/// email: it makes a test customer of its own (the real one is untouched), its welcome is
/// rendered and recorded but never sent, and removing the source's test records takes the
/// test customer away with them.
#[tokio::test]
async fn test_traffic_lives_apart_is_never_sent_and_can_be_removed() {
    let app = app().await;
    let (_, live, _) = source(&app, json!({"name": "Zap", "kind": "zapier"})).await;
    let (test_id, test_key, _) = source(&app, json!({"name": "Zap test action", "kind": "zapier", "test": true})).await;
    let email = format!("{}@example.com", unique("real"));
    let click = unique("c");
    let lead = json!({"clickId": click, "email": email, "firstName": "Juan", "operatorId": "rushbet"});
    let (status, real) = ingest(&app, Method::POST, "/api/ingest/lead", Some(&live), lead.clone(), &[]).await;
    assert_eq!(status, StatusCode::OK, "{real}");
    let real_id = real["customerId"].as_str().unwrap().to_owned();
    let before = app.customer(&real_id).await;

    let (status, sample) = ingest(&app, Method::POST, "/api/ingest/lead", Some(&test_key), lead, &[]).await;
    assert_eq!(status, StatusCode::OK, "{sample}");
    assert_eq!(sample["duplicate"], false, "not a repeat of the real lead: {sample}");
    let test_customer = sample["customerId"].as_str().unwrap().to_owned();
    assert_ne!(
        test_customer, real_id,
        "a test request never resolves to a real customer"
    );
    let deposit = json!({"eventType": "deposit", "clickId": click, "depositAmount": 50, "operatorId": "rushbet"});
    let (status, _) = ingest(&app, Method::POST, "/api/postback", Some(&test_key), deposit, &[]).await;
    assert_eq!(status, StatusCode::OK);
    // test=true on a live key is test traffic too.
    let marked =
        json!({"eventType": "deposit", "clickId": click, "depositAmount": 9, "operatorId": "rushbet", "test": true});
    let (_, marked) = ingest(&app, Method::POST, "/api/postback", Some(&live), marked, &[]).await;
    assert_eq!(marked["customerId"], test_customer.as_str(), "{marked}");

    let after = app.customer(&real_id).await;
    assert_eq!(
        (&after["identifiers"], &after["journeys"]),
        (&before["identifiers"], &before["journeys"])
    );
    let profile = app.customer(&test_customer).await;
    assert_eq!(profile["test"], true);
    assert_eq!(crm_tests::journey(&profile, "rushbet")["type"], "retention");

    app.run_due(time::OffsetDateTime::now_utc()).await;
    let messages = app.messages(&test_customer).await;
    assert!(!messages.is_empty(), "the test customer's journey renders its messages");
    for m in &messages {
        assert_eq!(
            (m["status"].as_str(), m["dryRun"].as_bool()),
            (Some("SENT"), Some(true)),
            "{m}"
        );
    }
    let real_mail = crm_tests::mailbox::emails_to(&email);
    assert_eq!(
        real_mail.len(),
        1,
        "only the real customer's own welcome reached the address"
    );

    let path = format!("/api/sources/{test_id}/records?test=true");
    let (status, removed) = app.admin_send(Method::DELETE, &path, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{removed}");
    assert_eq!(removed["customers"], 1, "{removed}");
    assert_eq!(
        (
            removed["records"]["leads"].as_u64(),
            removed["records"]["events"].as_u64()
        ),
        (Some(1), Some(2)),
        "{removed}"
    );
    let (status, _) = app.admin(&format!("/api/customers/{test_customer}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "the test customer is gone");
    let (_, leads) = app.admin("/api/leads").await;
    assert!(
        leads["items"].as_array().unwrap().iter().all(|l| l["test"] != true),
        "{leads}"
    );
    assert_eq!(app.customer(&real_id).await["identifiers"], before["identifiers"]);
    let (status, body) = app
        .admin_send(Method::DELETE, &format!("/api/sources/{test_id}/records"), json!({}))
        .await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("test"))
    );
    app.drain().await;
}

/// The same real traffic in two stacks; in one, a forger's key also posts a deposit for a
/// real customer and a click for the influencer. Voiding the forger's day leaves the
/// reports (JSON and CSV), the brand's figures and the events export exactly as in the
/// stack that never got them, cancels the thank-you the forged deposit scheduled, and
/// voiding again changes nothing.
#[tokio::test]
async fn voiding_a_sources_day_leaves_the_figures_as_if_its_records_never_came() {
    async fn real_traffic(app: &TestApp) {
        let (_, tracker, _) = source(app, json!({"name": "Redtrack", "kind": "tracker"})).await;
        let (_, operator, _) = source(app, json!({"name": "Rushbet", "kind": "operator", "brand": "rushbet"})).await;
        for (click, user) in [("V_1", "u1"), ("V_2", "u2")] {
            let body = json!({"clickId": click, "influencerId": "inf-v", "brand": "rushbet", "source": "yt"});
            let (status, _) = ingest(app, Method::POST, "/api/ingest/click", Some(&tracker), body, &[]).await;
            assert_eq!(status, StatusCode::OK);
            let reg = json!({"eventType": "registration", "clickId": click, "userId": user});
            ingest(app, Method::POST, "/api/postback", Some(&operator), reg, &[]).await;
        }
        let ftd = json!({"eventType": "deposit", "clickId": "V_1", "userId": "u1", "depositAmount": "100.50", "transactionId": "t1"});
        ingest(app, Method::POST, "/api/postback", Some(&operator), ftd, &[]).await;
    }
    async fn figures(app: &TestApp) -> Vec<Value> {
        let mut out = Vec::new();
        for by in ["brand", "influencer", "day", "source"] {
            out.push(app.admin(&format!("/api/reports?groupBy={by}")).await.1);
        }
        let csv = app
            .send(
                Request::get("/api/reports?groupBy=influencer&format=csv")
                    .header(header::AUTHORIZATION, format!("Bearer {}", crm_tests::ADMIN_KEY))
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .2;
        out.push(csv);
        out.push(app.admin("/api/brands/rushbet").await.1);
        let (_, events) = app.admin("/api/exports/events?format=jsonl").await;
        let amounts: Vec<String> = events
            .as_str()
            .unwrap_or_default()
            .lines()
            .map(|l| {
                let v: Value = serde_json::from_str(l).unwrap();
                format!("{} {}", v["eventType"], v["amount"])
            })
            .collect();
        out.push(json!(amounts));
        out
    }

    /// Real traffic after the forgery: a lead for the person a forged lead made, and V_2's
    /// first real deposit (its FTD, had the forged deposit never come).
    async fn real_lead(app: &TestApp) {
        let (_, zap, _) = source(app, json!({"name": "Real zap", "kind": "zapier", "brand": "rushbet"})).await;
        let lead = json!({"email": "late-real@example.com", "firstName": "Eva"});
        let (status, body) = ingest(app, Method::POST, "/api/ingest/lead", Some(&zap), lead, &[]).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let deposit = json!({"eventType": "deposit", "clickId": "V_2", "userId": "u2", "depositAmount": "20", "transactionId": "t2"});
        let (status, body) = ingest(app, Method::POST, "/api/postback", Some(&zap), deposit, &[]).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    let control = app().await;
    real_traffic(&control).await;
    real_lead(&control).await;
    control.drain().await;

    let app = app().await;
    real_traffic(&app).await;
    let (forger, forged_key, _) = source(&app, json!({"name": "Leaked zap", "kind": "zapier"})).await;
    let forged = json!({"eventType": "deposit", "clickId": "V_2", "depositAmount": 5000, "operatorId": "rushbet", "transactionId": "forged-1"});
    let (status, answer) = ingest(&app, Method::POST, "/api/postback", Some(&forged_key), forged, &[]).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let victim = answer["customerId"].as_str().unwrap().to_owned();
    // A forged lead makes a person the real lead later joins: without the forgery the real
    // lead is that person's first record, and counts them.
    let lead = json!({"email": "late-real@example.com", "operatorId": "rushbet"});
    let (status, _) = ingest(&app, Method::POST, "/api/ingest/lead", Some(&forged_key), lead, &[]).await;
    assert_eq!(status, StatusCode::OK);
    app.drain().await;
    real_lead(&app).await;
    app.drain().await;
    assert_ne!(figures(&app).await, figures(&control).await, "the forgery counted");
    let pending: Vec<Value> = app
        .messages(&victim)
        .await
        .into_iter()
        .filter(|m| m["status"] == "PENDING")
        .collect();
    assert!(!pending.is_empty(), "the forged deposit scheduled the retention step");

    let today = time::OffsetDateTime::now_utc().date().to_string();
    let period = json!({"from": today, "to": today});
    let (status, voided) = app
        .admin_send(Method::POST, &format!("/api/sources/{forger}/void"), period.clone())
        .await;
    assert_eq!(status, StatusCode::OK, "{voided}");
    assert_eq!(
        (
            voided["voided"]["events"].as_u64(),
            voided["voided"]["leads"].as_u64(),
            voided["uncounted"].as_u64()
        ),
        (Some(1), Some(1), Some(2)),
        "{voided}"
    );
    app.drain().await;
    assert_eq!(figures(&app).await, figures(&control).await);
    let cancelled: Vec<Value> = app
        .messages(&victim)
        .await
        .into_iter()
        .filter(|m| m["reason"] == "voided")
        .collect();
    assert_eq!(
        cancelled.len(),
        pending.len(),
        "the forged stage's messages are cancelled"
    );
    let (_, events) = app.admin("/api/events").await;
    let shown = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["sourceId"] == forger.as_str())
        .unwrap();
    assert!(shown["voided"].is_string(), "still shown, as voided: {shown}");

    let (status, again) = app
        .admin_send(Method::POST, &format!("/api/sources/{forger}/void"), period)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["uncounted"], 0, "{again}");
    assert_eq!(
        figures(&app).await,
        figures(&control).await,
        "voiding twice changes nothing"
    );
}

/// Redtrack's campaign S2S postback (its own names: `clickid`, `type`, `sum`,
/// `rdtk_event_id`) from a tracker source that sends conversions: recorded once per
/// Redtrack event id.
#[tokio::test]
async fn a_tracker_told_to_send_conversions_posts_redtracks_postback_once_per_event() {
    let app = app().await;
    let (status, err) = app
        .admin_send(
            Method::POST,
            "/api/sources",
            json!({"name": "x", "kind": "operator", "brand": "rushbet", "conversions": true}),
        )
        .await;
    assert_eq!(
        (status, err["error"]["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("conversions")),
        "{err}"
    );
    let (_, key, _) = source(
        &app,
        json!({"name": "Redtrack", "kind": "tracker", "conversions": true}),
    )
    .await;
    let click = unique("rt");
    let path = format!(
        "/api/postback?clickid={click}&type=ftd&sum=50&currency=USD&rdtk_event_id=E-{click}&brand=rushbet&token={key}"
    );
    let (status, first) = app.get(&path).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(first["duplicate"], false);
    let (status, again) = app.get(&path).await;
    assert_eq!((status, &again["duplicate"]), (StatusCode::OK, &json!(true)), "{again}");
    assert_eq!(again["eventId"], first["eventId"]);
    let customer = app.customer(first["customerId"].as_str().unwrap()).await;
    assert_eq!(customer["revenue"]["USD"], "50", "{customer}");
}

/// An operator's source that sent postbacks and then went quiet for `OPERATOR_SILENCE_HOURS`
/// (24 by default) is reported by the ten-minute tick and counted for its alarm; one never
/// used, a busy one and a revoked one are not.
#[tokio::test]
async fn an_operator_source_quiet_for_a_day_is_reported_silent() {
    crm_app::metrics::capture();
    let app = app().await;
    let deps = crm_import_clicks::Deps::new(app.state.store.clone(), &app.state.config, |_| None).unwrap();
    let (id, key, _) = source(&app, json!({"name": "Rushbet", "kind": "operator", "brand": "rushbet"})).await;
    source(
        &app,
        json!({"name": "Never wired", "kind": "operator", "brand": "rushbet"}),
    )
    .await;
    source(&app, json!({"name": "Tracker", "kind": "tracker"})).await;
    let now = time::OffsetDateTime::now_utc();
    let silent = |at| crm_import_clicks::silent_sources(&deps, at);
    assert!(
        silent(now + time::Duration::hours(30)).await.unwrap().is_empty(),
        "none used yet"
    );

    let path = "/api/postback";
    let (status, body) = ingest(&app, Method::POST, path, Some(&key), body_for(path), &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(silent(now + time::Duration::hours(23)).await.unwrap().is_empty());
    assert_eq!(silent(now + time::Duration::hours(25)).await.unwrap(), vec![id.clone()]);
    let counted = crm_app::metrics::captured()
        .iter()
        .any(|doc| doc["SilentOperatorSources"].as_f64() == Some(1.0));
    assert!(counted, "the alarm's metric");

    let (status, _) = app
        .admin_send(Method::DELETE, &format!("/api/sources/{id}"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        silent(now + time::Duration::hours(25)).await.unwrap().is_empty(),
        "revoked"
    );
}
