//! The error contract: one JSON shape, the field named, the right 4xx, never a 5xx for bad
//! input, 503 with Retry-After when DynamoDB fails.

use axum::body::Body;
use crm_store::Store;
use crm_tests::{ADMIN_KEY, TestApp, sdk_config, spawn};
use http::{Method, Request, StatusCode, header};
use serde_json::{Value, json};

fn assert_error(status: StatusCode, body: &Value, expected: StatusCode, field: Option<&str>) {
    assert_eq!(status, expected, "{body}");
    assert!(
        body["error"]["code"].is_string() && body["error"]["message"].is_string(),
        "{body}"
    );
    assert_eq!(body["error"]["field"].as_str(), field, "{body}");
}

#[tokio::test]
async fn each_invalid_field_gets_a_400_naming_it() {
    let app = spawn().await;
    let cases: &[(&str, Value, &str)] = &[
        ("/api/ingest/click", json!({"campaign": "x"}), "clickId"),
        ("/api/ingest/click", json!({"clickId": "{click_id}"}), "clickId"),
        ("/api/ingest/click", json!({"clickId": "has space"}), "clickId"),
        (
            "/api/ingest/click",
            json!({"clickId": "ok", "operatorId": "Rush Bet!"}),
            "operatorId",
        ),
        // Values that become counter keys are bounded: a 2,048-character influencer id
        // would make a stream record the attribution function cannot count.
        (
            "/api/ingest/click",
            json!({"clickId": "ok", "influencerId": "i".repeat(2048)}),
            "influencerId",
        ),
        (
            "/api/ingest/click",
            json!({"clickId": "ok", "sub7": "s".repeat(129)}),
            "sub7",
        ),
        ("/api/ingest/lead", json!({"firstName": "NoIds"}), "clickId"),
        ("/api/ingest/lead", json!({"email": "not-an-email"}), "email"),
        ("/api/ingest/lead", json!({"phone": "12"}), "phone"),
        (
            "/api/ingest/lead",
            json!({"email": "a@b.co", "brand": "bad brand"}),
            "operatorId",
        ),
        ("/api/postback", json!({"clickId": "c"}), "eventType"),
        (
            "/api/postback",
            json!({"eventType": "ftd", "clickId": "c", "occurredAt": "2020-01-01T00:00:00Z"}),
            "occurredAt",
        ),
        (
            "/api/postback",
            json!({"eventType": "ftd", "clickId": "c", "occurredAt": "2099-01-01T00:00:00Z"}),
            "occurredAt",
        ),
        ("/api/postback", json!({"eventType": "deposit"}), "clickId"),
        (
            "/api/postback",
            json!({"eventType": "deposit", "clickId": "c", "depositAmount": "ten"}),
            "depositAmount",
        ),
        (
            "/api/postback",
            json!({"eventType": "deposit", "clickId": "c", "amount": -5}),
            "depositAmount",
        ),
        (
            "/api/postback",
            json!({"eventType": "deposit", "clickId": "c", "currency": "DOLLARS"}),
            "currency",
        ),
        (
            "/api/postback",
            json!({"eventType": "deposit", "clickId": "c", "operatorId": "no spaces"}),
            "operatorId",
        ),
        (
            "/api/postback",
            json!({"eventType": "deposit", "clickId": "c", "txid": "a b"}),
            "transactionId",
        ),
    ];
    for (path, body, field) in cases {
        let (status, response) = app.post_json(path, body.clone()).await;
        assert_error(status, &response, StatusCode::BAD_REQUEST, Some(field));
    }
    let (_, events) = app.admin("/api/events").await;
    assert_eq!(events["items"], json!([]), "nothing was written");
}

#[tokio::test]
async fn malformed_bodies_are_400_and_unsupported_types_415() {
    let app = spawn().await;
    for (ctype, body) in [
        ("application/json", "{not json"),
        ("application/json", "[1,2]"),
        ("application/json", "\"str\""),
    ] {
        let req = Request::post("/api/ingest/lead")
            .header(header::CONTENT_TYPE, ctype)
            .body(Body::from(body))
            .unwrap();
        let (status, _, response) = app.send(req).await;
        assert_error(status, &response, StatusCode::BAD_REQUEST, None);
    }
    let req = Request::post("/api/postback")
        .header(header::CONTENT_TYPE, "application/xml")
        .body(Body::from("<x/>"))
        .unwrap();
    let (status, _, response) = app.send(req).await;
    assert_error(status, &response, StatusCode::UNSUPPORTED_MEDIA_TYPE, None);
}

#[tokio::test]
async fn oversized_bodies_are_413_before_parsing() {
    let app = spawn().await;
    let big = format!(
        "{{\"clickId\":\"x\",\"pad\":\"{}\"}}",
        "a".repeat(crm_http::MAX_BODY_BYTES)
    );
    let req = Request::post("/api/ingest/click")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(big))
        .unwrap();
    let (status, _, response) = app.send(req).await;
    assert_error(status, &response, StatusCode::PAYLOAD_TOO_LARGE, None);
}

#[tokio::test]
async fn unknown_routes_are_404_and_wrong_methods_405() {
    let app = spawn().await;
    let (status, body) = app.get("/api/nope").await;
    assert_error(status, &body, StatusCode::NOT_FOUND, None);
    assert_eq!(body["error"]["code"], "no_route");
    let (status, body) = app
        .admin("/api/customers/0192f0c1-7b7e-7cc0-9b1a-3c3f2d6e8a10/nope")
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("no_route"))
    );
    let (status, _, body) = app
        .send(Request::delete("/api/ingest/click").body(Body::empty()).unwrap())
        .await;
    assert_error(status, &body, StatusCode::METHOD_NOT_ALLOWED, None);
    let (status, _, body) = app
        .send(Request::get("/api/ingest/lead").body(Body::empty()).unwrap())
        .await;
    assert_error(status, &body, StatusCode::METHOD_NOT_ALLOWED, None);
    let (status, body) = app.admin("/api/customers/0192f0c1-7b7e-7cc0-9b1a-3c3f2d6e8a10").await;
    assert_error(status, &body, StatusCode::NOT_FOUND, None);
    assert_eq!(body["error"]["code"], "not_found", "a route whose resource is missing");
    let (status, body) = app.admin("/api/customers/not-an-id").await;
    assert_error(status, &body, StatusCode::NOT_FOUND, None);
}

#[tokio::test]
async fn admin_api_requires_the_bearer_key() {
    let app = spawn().await;
    for auth in [
        None,
        Some("Bearer wrong-key-000000000000"),
        Some(ADMIN_KEY),
        Some("Basic x"),
    ] {
        let mut req = Request::get("/api/clicks");
        if let Some(a) = auth {
            req = req.header(header::AUTHORIZATION, a);
        }
        let (status, _, body) = app.send(req.body(Body::empty()).unwrap()).await;
        assert_error(status, &body, StatusCode::UNAUTHORIZED, None);
    }
    let (status, _) = app.admin("/api/clicks").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn admin_query_errors_name_the_parameter() {
    let app = spawn().await;
    for (q, field) in [
        ("/api/clicks?limit=0", Some("limit")),
        ("/api/clicks?limit=500", Some("limit")),
        ("/api/clicks?cursor=garbage", Some("cursor")),
        ("/api/clicks?day=yesterday", Some("day")),
        ("/api/customers?email=nope", Some("email")),
        ("/api/customers", Some("email")),
        ("/api/customers?userId=u1", Some("operatorId")),
        ("/api/clicks?limit=abc", None),
    ] {
        let (status, body) = app.admin(q).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, field);
    }
}

#[tokio::test]
async fn admin_bodies_are_read_once_and_each_bad_field_named() {
    let app = spawn().await;
    let cases: &[(Method, &str, Value, &str, &str)] = &[
        // The JSON type is wrong: named by its path, deep down too.
        (Method::POST, "/api/users", json!({"email": 5}), "email", "invalid_type"),
        (
            Method::PUT,
            "/api/fx-rates",
            json!({"rates": {"EUR": true}}),
            "rates.EUR",
            "invalid_type",
        ),
        (
            Method::POST,
            "/api/sources",
            json!({"name": "s", "kind": "operator", "routes": ["postback", 7]}),
            "routes[1]",
            "invalid_type",
        ),
        (
            Method::POST,
            "/api/influencers",
            json!({"name": ["x"]}),
            "name",
            "invalid_type",
        ),
        // The value is wrong, or missing.
        (
            Method::POST,
            "/api/users",
            json!({"role": "owner", "password": "a long enough password"}),
            "email",
            "missing",
        ),
        (
            Method::POST,
            "/api/users",
            json!({"email": "a@b.co", "role": "admin", "password": "a long enough password"}),
            "role",
            "invalid_value",
        ),
        (
            Method::POST,
            "/api/links",
            json!({"influencerId": "inf_1", "destination": "javascript:alert(1)"}),
            "destination",
            "invalid_format",
        ),
        (
            Method::POST,
            "/api/links",
            json!({"destination": "https://example.com"}),
            "influencerId",
            "missing",
        ),
        (
            Method::POST,
            "/api/campaigns",
            json!({"name": "c", "brand": "Not A Brand"}),
            "brand",
            "invalid_format",
        ),
        (
            Method::POST,
            "/api/suppressions",
            json!({"channel": "email"}),
            "address",
            "missing",
        ),
        (
            Method::PUT,
            "/api/fx-rates",
            json!({"base": "usd!"}),
            "base",
            "invalid_currency",
        ),
    ];
    for (method, path, body, field, code) in cases {
        let (status, response) = app.admin_send(method.clone(), path, body.clone()).await;
        assert_error(status, &response, StatusCode::BAD_REQUEST, Some(field));
        assert_eq!(response["error"]["code"], *code, "{path}: {response}");
    }
    for raw in ["[1,2]", "\"text\"", "{not json"] {
        let req = Request::post("/api/users")
            .header(header::AUTHORIZATION, format!("Bearer {ADMIN_KEY}"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(raw))
            .unwrap();
        let (status, _, response) = app.send(req).await;
        assert_error(status, &response, StatusCode::BAD_REQUEST, None);
        assert_eq!(response["error"]["code"], "invalid_json", "{raw}: {response}");
    }
    let (_, users) = app.admin("/api/users").await;
    assert_eq!(users["items"], json!([]), "nothing was written: {users}");
}

/// An app whose table does not exist: every DynamoDB call fails.
async fn broken_app() -> TestApp {
    let store = Store::from_sdk_config(&sdk_config(crm_tests::endpoint()).await, "table-that-does-not-exist");
    TestApp::new(store, &[]).await
}

#[tokio::test]
async fn dynamodb_failure_is_a_503_with_retry_after_never_a_200() {
    let app = broken_app().await;
    for (path, body) in [
        ("/api/ingest/click", json!({"clickId": "X"})),
        ("/api/ingest/lead", json!({"email": "x@example.com"})),
        ("/api/postback", json!({"event": "ftd", "clickId": "X"})),
    ] {
        let req = Request::post(path)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        let (status, headers, response) = app.send(req).await;
        assert_error(status, &response, StatusCode::SERVICE_UNAVAILABLE, None);
        assert_eq!(headers[header::RETRY_AFTER], "2");
    }
    let (status, health) = app.get("/api/health").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(health["status"], "degraded");
    assert_eq!(health["checks"]["dynamodb"]["status"], "error");
}

#[tokio::test]
async fn unreachable_dynamodb_is_a_503() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let store = Store::from_sdk_config(&sdk_config(&format!("http://127.0.0.1:{port}")).await, "t");
    let app = TestApp::new(store, &[]).await;
    let (status, body) = app.post_json("/api/ingest/click", json!({"clickId": "X"})).await;
    assert_error(status, &body, StatusCode::SERVICE_UNAVAILABLE, None);
}

#[tokio::test]
async fn health_reports_healthy_against_a_real_table() {
    let app = spawn().await;
    let (status, body) = app.get("/api/health").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (body["status"].as_str(), body["checks"]["dynamodb"]["status"].as_str()),
        (Some("healthy"), Some("ok"))
    );
}

#[tokio::test]
async fn hostile_inputs_never_produce_a_5xx() {
    let app = spawn().await;
    let weird = [
        "",
        " ",
        "%",
        "%zz",
        "{",
        "null",
        "\u{0}",
        "🦀",
        "a=b=c",
        "&&&",
        "x".repeat(3000).as_str().to_owned().leak(),
    ];
    for path in ["/api/ingest/click", "/api/ingest/lead", "/api/postback"] {
        for w in weird {
            for field in ["clickId", "email", "phone", "amount", "currency", "event", "operatorId"] {
                let (status, body) = app.post_json(path, json!({field: w, "clickId": w})).await;
                assert!(status.as_u16() < 500, "{path} {field}={w:?} → {status} {body}");
                let (status, _, body) = app
                    .send(
                        Request::post(path)
                            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                            .body(Body::from(format!("{field}={w}")))
                            .unwrap(),
                    )
                    .await;
                assert!(status.as_u16() < 500, "{path} form {field}={w:?} → {status} {body}");
            }
        }
    }
}
