use crm_tests::{identifiers, journey, spawn};
use http::StatusCode;
use serde_json::json;

#[tokio::test]
async fn replayed_postback_with_a_transaction_id_is_recorded_once() {
    let app = spawn().await;
    let pb =
        json!({"event": "deposit", "clickId": "TX_C", "amount": "100", "operator": "rushbet", "transactionId": "T-1"});
    let (_, first) = app.post_json("/api/postback", pb.clone()).await;
    for _ in 0..3 {
        let (status, again) = app.post_json("/api/postback", pb.clone()).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            (again["duplicate"].as_bool(), &again["eventId"]),
            (Some(true), &first["eventId"])
        );
    }
    // Zapier may replay hours later as a form post with the amount as a number: same txid.
    let (_, form) = app
        .post_form(
            "/api/postback",
            "event=deposit&clickId=TX_C&amount=100&operator=rushbet&txid=T-1",
        )
        .await;
    assert_eq!(form["duplicate"], true);
    let profile = app.customer(first["customerId"].as_str().unwrap()).await;
    assert_eq!(profile["revenue"], json!({"USD": "100"}));
    let (_, events) = app.admin("/api/events").await;
    assert_eq!(events["items"].as_array().unwrap().len(), 1);
    app.drain().await;
    let (_, brand) = app.admin("/api/brands/rushbet").await;
    assert_eq!(
        (
            &brand["deposits"],
            &brand["ftds"],
            &brand["conversions"],
            &brand["revenue"]
        ),
        (&json!(1), &json!(1), &json!(1), &json!({"USD": "100"})),
        "{brand}"
    );
}

#[tokio::test]
async fn postback_without_transaction_id_is_deduplicated_by_payload() {
    let app = spawn().await;
    let pb = json!({"eventType": "deposit", "clickId": "FP_C", "depositAmount": 40, "currency": "USD"});
    let (_, first) = app.post_json("/api/postback", pb.clone()).await;
    let (_, again) = app
        .post_json(
            "/api/postback",
            json!({"type": "Deposit", "cid": "FP_C", "sum": "40.00"}),
        )
        .await;
    assert_eq!(again["duplicate"], true, "same conversion spelled differently: {again}");
    let (_, other) = app
        .post_json(
            "/api/postback",
            json!({"eventType": "deposit", "clickId": "FP_C", "depositAmount": 41}),
        )
        .await;
    assert_eq!(other["duplicate"], false);
    let profile = app.customer(first["customerId"].as_str().unwrap()).await;
    assert_eq!(profile["revenue"]["USD"], "81");
}

#[tokio::test]
async fn amounts_add_up_exactly() {
    let app = spawn().await;
    for (i, amount) in ["0.1", "0.2", "19.99"].iter().enumerate() {
        app.post_json("/api/postback", json!({"event": "deposit", "userId": "u-exact", "operatorId": "stake", "amount": amount, "txid": i.to_string()}))
            .await;
    }
    let (_, found) = app.admin("/api/customers?userId=u-exact&operatorId=stake").await;
    assert_eq!(found["revenue"]["USD"], "20.29");
}

#[tokio::test]
async fn json_numbers_keep_every_digit_sent() {
    let app = spawn().await;
    // 17 significant digits: more than an f64 holds exactly.
    let body = r#"{"event": "deposit", "clickId": "DIGITS", "amount": 987654321.00000001, "txid": "d1"}"#;
    let req = http::Request::post("/api/postback")
        .header("content-type", "application/json")
        .body(axum::body::Body::from(body))
        .unwrap();
    let (status, _, response) = app.send(req).await;
    assert_eq!(status, StatusCode::OK, "{response}");
    let profile = app.customer(response["customerId"].as_str().unwrap()).await;
    assert_eq!(profile["revenue"]["USD"], "987654321.00000001");
}

#[tokio::test]
async fn postback_for_an_unknown_customer_creates_one_and_is_not_lost() {
    let app = spawn().await;
    let (status, body) = app
        .get("/api/postback?status=registration&userId=op-42&brand=roobet&email=new@example.com")
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["customerCreated"], true);
    let profile = app.customer(body["customerId"].as_str().unwrap()).await;
    assert_eq!(identifiers(&profile), ["EMAIL:new@example.com", "USER_ID:roobet:op-42"]);
    assert_eq!(journey(&profile, "roobet")["stage"], 0);
    assert_eq!(journey(&profile, "roobet")["type"], "acquisition");
}

#[tokio::test]
async fn an_ftd_arriving_before_the_registration_still_ends_in_retention() {
    let app = spawn().await;
    app.post_json(
        "/api/postback",
        json!({"event": "ftd", "clickId": "OOO", "operatorId": "rushbet", "amount": 20, "txid": "a"}),
    )
    .await;
    let (_, body) = app
        .post_json(
            "/api/postback",
            json!({"event": "registration", "clickId": "OOO", "operatorId": "rushbet", "txid": "b"}),
        )
        .await;
    let profile = app.customer(body["customerId"].as_str().unwrap()).await;
    let j = journey(&profile, "rushbet");
    assert_eq!((j["type"].as_str(), j["stage"].as_i64()), (Some("retention"), Some(1)));
}

#[tokio::test]
async fn other_event_types_are_kept_as_sent() {
    let app = spawn().await;
    let (status, body) = app.get("/api/postback?et=Approved&cid=OT_1&payout=5").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["eventType"], "Approved");
    let (_, events) = app.admin("/api/events").await;
    assert_eq!(events["items"][0]["eventType"], "Approved");
}

#[tokio::test]
async fn a_postback_for_a_known_customer_costs_at_most_two_round_trips() {
    let app = spawn().await;
    app.post_json("/api/ingest/click", json!({"clickId": "PB_BUDGET"}))
        .await;
    app.take_calls();
    let (status, _) = app
        .post_json(
            "/api/postback",
            json!({"event": "deposit", "clickId": "PB_BUDGET", "amount": 10, "operatorId": "rushbet", "userId": "u1"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let calls = app.take_calls();
    assert_eq!(calls.values().sum::<u64>(), 2, "{calls:?}");
}

#[tokio::test]
async fn sixty_simultaneous_postbacks_for_one_customer_each_answer_200_and_count_once() {
    let app = spawn().await;
    app.post_json("/api/ingest/click", json!({"clickId": "BURST"})).await;
    let requests = (0..60).map(|i| {
        app.post_json(
            "/api/postback",
            json!({"event": "deposit", "clickId": "BURST", "operatorId": "rushbet", "amount": "1.5", "txid": format!("burst-{i}")}),
        )
    });
    for (status, body) in futures::future::join_all(requests).await {
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["duplicate"], false, "{body}");
    }
    let (_, found) = app.admin("/api/customers?clickId=BURST").await;
    assert_eq!(found["revenue"]["USD"], "90");
    app.drain().await;
    let (_, brand) = app.admin("/api/brands/rushbet").await;
    assert_eq!(brand["deposits"], 60, "{brand}");
    assert_eq!(brand["ftds"], 1, "one customer, one first deposit: {brand}");
    assert_eq!(brand["revenue"]["USD"], "90");
}
