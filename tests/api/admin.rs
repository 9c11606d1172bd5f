use crm_tests::spawn;
use http::StatusCode;
use serde_json::json;

#[tokio::test]
async fn recent_clicks_paginate_newest_first_without_gaps() {
    let app = spawn().await;
    for i in 0..5 {
        app.post_json("/api/ingest/click", json!({"clickId": format!("PAGE_{i}")}))
            .await;
    }
    let mut seen = Vec::new();
    let mut url = "/api/clicks?limit=2".to_owned();
    loop {
        let (status, page) = app.admin(&url).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        seen.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["clickId"].as_str().unwrap().to_owned()),
        );
        match page["nextCursor"].as_str() {
            Some(c) => url = format!("/api/clicks?limit=2&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen, ["PAGE_4", "PAGE_3", "PAGE_2", "PAGE_1", "PAGE_0"]);
}

#[tokio::test]
async fn a_day_with_no_activity_is_an_empty_list() {
    let app = spawn().await;
    app.post_json("/api/ingest/click", json!({"clickId": "TODAY"})).await;
    let (status, page) = app.admin("/api/clicks?day=2001-01-01").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page, json!({"items": [], "nextCursor": null}));
}

#[tokio::test]
async fn timeline_paginates_newest_first() {
    let app = spawn().await;
    let (_, click) = app.post_json("/api/ingest/click", json!({"clickId": "TL"})).await;
    app.post_json("/api/ingest/lead", json!({"clickId": "TL", "email": "tl@example.com"}))
        .await;
    app.post_json(
        "/api/postback",
        json!({"event": "registration", "clickId": "TL", "operatorId": "rushbet"}),
    )
    .await;
    let id = click["customerId"].as_str().unwrap();
    let (_, first) = app.admin(&format!("/api/customers/{id}/timeline?limit=2")).await;
    let kinds: Vec<&str> = first["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["event", "lead"]);
    let cursor = first["nextCursor"].as_str().unwrap();
    let (_, second) = app
        .admin(&format!("/api/customers/{id}/timeline?limit=2&cursor={cursor}"))
        .await;
    assert_eq!(second["items"].as_array().unwrap().len(), 1);
    assert_eq!(second["items"][0]["type"], "click");
    assert_eq!(second["nextCursor"], json!(null));
}

#[tokio::test]
async fn lookup_by_each_identifier_type_finds_the_customer() {
    let app = spawn().await;
    let (_, body) = app
        .post_json("/api/postback", json!({"event": "registration", "clickId": "LK", "email": "LK@Example.com", "phone": "+1 201 555 0123", "userId": "u-9", "operatorId": "rushbet", "deviceId": "dev-9"}))
        .await;
    for q in [
        "clickId=LK",
        "email=lk%40example.com",
        "phone=%2B12015550123",
        "phone=(201)%20555-0123",
        "deviceId=dev-9",
        "userId=u-9&operatorId=rushbet",
    ] {
        let (status, found) = app.admin(&format!("/api/customers?{q}")).await;
        assert_eq!(status, StatusCode::OK, "{q}: {found}");
        assert_eq!(found["customerId"], body["customerId"], "{q}");
    }
    let (status, _) = app.admin("/api/customers?email=nobody@example.com").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
