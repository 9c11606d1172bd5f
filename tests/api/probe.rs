//! What a hostile probe of `make dev` found, each answered: objects where a scalar belongs,
//! control characters in free text, exact pagination ends, fixed-width timestamps, and the
//! content types we sniff.

use axum::body::Body;
use crm_tests::spawn;
use http::{Request, StatusCode, header};
use serde_json::{Value, json};

#[tokio::test]
async fn an_object_or_array_where_a_scalar_belongs_is_a_400_naming_the_field() {
    let app = spawn().await;
    for (path, body, field) in [
        (
            "/api/postback",
            json!({"eventType": "deposit", "clickId": "OBJ", "depositAmount": {"v": 1}}),
            "depositAmount",
        ),
        ("/api/ingest/click", json!({"clickId": {"$gt": ""}}), "clickId"),
        (
            "/api/ingest/lead",
            json!({"email": "a@b.co", "firstName": ["Ana"]}),
            "firstName",
        ),
    ] {
        let (status, response) = app.post_json(path, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{response}");
        assert_eq!(response["error"]["field"], field, "{response}");
        assert_eq!(response["error"]["code"], "invalid_type");
    }
    let (_, events) = app.admin("/api/events").await;
    assert_eq!(events["items"], json!([]), "no deposit was stored without its amount");
    // Unknown keys may carry anything (Zapier sends nested metadata).
    let (status, _) = app
        .post_json("/api/ingest/click", json!({"clickId": "META", "meta": {"zap": 1}}))
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn control_characters_and_bidi_overrides_are_stripped_from_names_and_free_text() {
    let app = spawn().await;
    let (_, lead) = app
        .post_json(
            "/api/ingest/lead",
            json!({"email": "ctl@example.com", "firstName": "Ana\r\nMaría\u{0}", "lastName": "\u{202E}Pérez 🎰", "campaign": "a\u{7}b"}),
        )
        .await;
    let profile = app.customer(lead["customerId"].as_str().unwrap()).await;
    assert_eq!(profile["firstName"], "Ana  María");
    assert_eq!(profile["lastName"], "Pérez 🎰");
    let (_, leads) = app.admin("/api/leads").await;
    assert_eq!(leads["items"][0]["campaign"], "ab");
    // A header injection carrying an address is no name at all: dropped, with a warning.
    let (_, injected) = app
        .post_json(
            "/api/ingest/lead",
            json!({"email": "ctl2@example.com", "firstName": "Ana\r\nBcc: x@evil.test"}),
        )
        .await;
    assert_eq!(injected["warnings"][0]["code"], "not_a_name", "{injected}");
}

#[tokio::test]
async fn next_cursor_is_null_when_a_page_ends_exactly_at_the_last_record() {
    let app = spawn().await;
    for i in 0..4 {
        app.post_json(
            "/api/ingest/click",
            json!({"clickId": format!("EXACT_{i}"), "email": "exact@example.com"}),
        )
        .await;
    }
    let (_, clicks) = app.admin("/api/clicks?limit=4").await;
    assert_eq!(clicks["items"].as_array().unwrap().len(), 4);
    assert_eq!(clicks["nextCursor"], Value::Null);
    let (_, first) = app.admin("/api/clicks?limit=3").await;
    assert!(first["nextCursor"].is_string(), "one more click exists");
    let id = clicks["items"][0]["customerId"].as_str().unwrap();
    let (_, timeline) = app.admin(&format!("/api/customers/{id}/timeline?limit=4")).await;
    assert_eq!(timeline["items"].as_array().unwrap().len(), 4);
    assert_eq!(timeline["nextCursor"], Value::Null);
}

#[tokio::test]
async fn timestamps_in_answers_have_a_fixed_width() {
    let app = spawn().await;
    let (_, click) = app
        .post_json("/api/ingest/click", json!({"clickId": "TS", "operatorId": "rushbet"}))
        .await;
    let id = click["customerId"].as_str().unwrap();
    let profile = app.customer(id).await;
    let (_, clicks) = app.admin("/api/clicks").await;
    let (_, timeline) = app.admin(&format!("/api/customers/{id}/timeline")).await;
    for ts in [
        &profile["createdAt"],
        &profile["updatedAt"],
        &profile["journeys"][0]["since"],
        &profile["journeys"][0]["startedAt"],
        &clicks["items"][0]["at"],
        &timeline["items"][0]["at"],
    ] {
        let ts = ts.as_str().unwrap_or_else(|| panic!("a timestamp: {ts}"));
        assert_eq!(ts.len(), "2026-11-22T02:25:01.123Z".len(), "{ts}");
        assert!(ts.ends_with('Z') && ts.as_bytes()[19] == b'.', "{ts}");
    }
}

#[tokio::test]
async fn json_without_a_content_type_or_as_text_plain_is_read_and_other_types_are_415() {
    let app = spawn().await;
    for content_type in [None, Some("text/plain;charset=UTF-8")] {
        let mut req = Request::post("/api/ingest/click");
        if let Some(ct) = content_type {
            req = req.header(header::CONTENT_TYPE, ct);
        }
        let body = json!({"clickId": format!("SNIFF_{}", content_type.is_some())}).to_string();
        let (status, _, response) = app.send(req.body(Body::from(body)).unwrap()).await;
        assert_eq!(status, StatusCode::OK, "{content_type:?}: {response}");
    }
    let req = Request::post("/api/ingest/click")
        .header(header::CONTENT_TYPE, "multipart/form-data; boundary=x")
        .body(Body::from("--x"))
        .unwrap();
    let (status, _, _) = app.send(req).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
}
