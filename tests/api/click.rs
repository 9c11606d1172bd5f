use crm_tests::{identifiers, spawn};
use http::StatusCode;
use serde_json::json;
use std::collections::BTreeMap;

#[tokio::test]
async fn repeated_click_id_is_idempotent() {
    let app = spawn().await;
    let (_, first) = app
        .post_json("/api/ingest/click", json!({"clickId": "DUP_1", "campaign": "a"}))
        .await;
    let (status, second) = app.get("/api/ingest/click?clickid=DUP_1&campaign=b").await;
    assert_eq!(status, StatusCode::OK, "{second}");
    assert_eq!(second["duplicate"], true);
    assert_eq!(second["customerId"], first["customerId"]);
    let (_, clicks) = app.admin("/api/clicks").await;
    assert_eq!(clicks["items"].as_array().unwrap().len(), 1, "no second click");
    assert_eq!(clicks["items"][0]["campaign"], "a", "the first click is kept as it was");
}

#[tokio::test]
async fn a_new_click_costs_one_dynamodb_round_trip() {
    let app = spawn().await;
    app.take_calls();
    let (status, _) = app
        .post_json("/api/ingest/click", json!({"clickId": "BUDGET_1", "deviceId": "d1"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(app.take_calls(), BTreeMap::from([("TransactWriteItems".to_owned(), 1)]));
}

#[tokio::test]
async fn click_accepts_every_click_id_alias_and_form_posts() {
    let app = spawn().await;
    for (i, alias) in ["clickId", "clickid", "click_id", "cid", "subid"].iter().enumerate() {
        let (status, body) = app
            .post_form("/api/ingest/click", &format!("{alias}=ALIAS_{i}&source=tiktok"))
            .await;
        assert_eq!(status, StatusCode::OK, "{alias}: {body}");
        assert_eq!(body["clickId"], format!("ALIAS_{i}"));
    }
}

#[tokio::test]
async fn click_arriving_after_a_lead_with_its_id_joins_the_leads_customer() {
    let app = spawn().await;
    let (_, lead) = app
        .post_json(
            "/api/ingest/lead",
            json!({"clickId": "LATE_CLICK", "email": "late@example.com"}),
        )
        .await;
    let (status, click) = app.get("/api/ingest/click?clickid=LATE_CLICK&campaign=late").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(click["duplicate"], false, "the click itself was never recorded before");
    assert_eq!(click["customerId"], lead["customerId"]);
    let (_, clicks) = app.admin("/api/clicks").await;
    assert_eq!(clicks["items"][0]["campaign"], "late");
}

#[tokio::test]
async fn click_with_a_malformed_optional_field_is_kept_with_a_warning() {
    let app = spawn().await;
    let (status, body) = app.get("/api/ingest/click?clickid=W_1&ip=not-an-ip&email=broken").await;
    assert_eq!(status, StatusCode::OK);
    let fields: Vec<&str> = body["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["ip", "email"]);
    let profile = app.customer(body["customerId"].as_str().unwrap()).await;
    assert_eq!(identifiers(&profile), ["CLICK_ID:W_1"]);
}

/// A click reported late (a tracker's click log) is recorded, and counted, when it
/// happened; a time in the future or past what reports keep open is refused.
#[tokio::test]
async fn a_click_reported_late_is_recorded_when_it_happened() {
    let app = spawn().await;
    let then = (time::OffsetDateTime::now_utc() - time::Duration::days(2))
        .replace_nanosecond(0)
        .unwrap();
    // Redtrack's `track_time`: `YYYY-MM-DD HH:MM:SS`, UTC.
    let track_time = format!(
        "{} {:02}:{:02}:{:02}",
        then.date(),
        then.hour(),
        then.minute(),
        then.second()
    );
    let (status, body) = app
        .get(&format!(
            "/api/ingest/click?clickid=LATE_1&track_time={}&brand=rushbet",
            track_time.replace(' ', "%20")
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, clicks) = app.admin(&format!("/api/clicks?day={}", then.date())).await;
    assert_eq!(clicks["items"][0]["clickId"], "LATE_1", "{clicks}");
    assert_eq!(clicks["items"][0]["at"], crm_core::values::format_ts(then).as_str());
    for refused in [
        time::OffsetDateTime::now_utc() + time::Duration::hours(1),
        time::OffsetDateTime::now_utc() - time::Duration::days(91),
    ] {
        let (status, err) = app
            .get(&format!(
                "/api/ingest/click?clickid=LATE_2&occurredAt={}",
                refused.unix_timestamp()
            ))
            .await;
        assert_eq!(
            (status, err["error"]["field"].as_str()),
            (StatusCode::BAD_REQUEST, Some("occurredAt")),
            "{err}"
        );
    }
}
