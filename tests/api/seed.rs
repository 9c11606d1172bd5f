//! The seed's contract (`crm-integration-todo.md` §1.1, §1.2, §1.3, §6.2, §6.4), with its
//! curl payloads verbatim, observed through the admin API.

use crm_tests::{identifiers, journey, spawn};
use http::StatusCode;
use serde_json::json;

fn seed_click() -> serde_json::Value {
    json!({
        "clickId": "TEST_CLICK_001",
        "ip": "192.168.1.100",
        "userAgent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64)",
        "campaign": "test-campaign",
        "source": "youtube",
        "medium": "carlos-gaming",
        "landingPage": "https://rushbet.com/register",
        "referrer": "https://youtube.com"
    })
}

fn seed_lead() -> serde_json::Value {
    json!({
        "clickId": "TEST_CLICK_001",
        "email": "testuser@example.com",
        "phone": "+51999888777",
        "firstName": "Juan",
        "lastName": "Pérez",
        "campaign": "test-campaign"
    })
}

fn seed_deposit() -> serde_json::Value {
    json!({
        "eventType": "deposit",
        "clickId": "TEST_CLICK_001",
        "email": "testuser@example.com",
        "depositAmount": 100,
        "currency": "USD",
        "operatorId": "rushbet",
        "userId": "rush_test_001"
    })
}

#[tokio::test]
async fn seed_1_1_click_creates_customer_click_and_click_id_identifier() {
    let app = spawn().await;
    let (status, body) = app.post_json("/api/ingest/click", seed_click()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["clickId"], "TEST_CLICK_001");
    assert_eq!(body["customerCreated"], true);
    let customer = body["customerId"].as_str().unwrap();

    let profile = app.customer(customer).await;
    assert_eq!(identifiers(&profile), ["CLICK_ID:TEST_CLICK_001"]);
    let j = journey(&profile, "unbranded");
    assert_eq!(
        (j["type"].as_str(), j["stage"].as_i64()),
        (Some("acquisition"), Some(-1))
    );

    let (status, clicks) = app.admin("/api/clicks").await;
    assert_eq!(status, StatusCode::OK);
    let click = &clicks["items"][0];
    assert_eq!(click["clickId"], "TEST_CLICK_001");
    assert_eq!(click["customerId"], customer);
    assert_eq!(click["ip"], "192.168.1.100");
    assert_eq!(click["userAgent"], "Mozilla/5.0 (Windows NT 10.0; Win64; x64)");
    assert_eq!(click["campaign"], "test-campaign");
    assert_eq!(click["source"], "youtube");
    assert_eq!(click["medium"], "carlos-gaming");
    assert_eq!(click["landingPage"], "https://rushbet.com/register");
    assert_eq!(click["referrer"], "https://youtube.com");
}

#[tokio::test]
async fn seed_1_2_lead_attaches_email_and_phone_to_the_click_customer() {
    let app = spawn().await;
    let (_, click) = app.post_json("/api/ingest/click", seed_click()).await;
    let (status, lead) = app.post_json("/api/ingest/lead", seed_lead()).await;
    assert_eq!(status, StatusCode::OK, "{lead}");
    assert_eq!(
        lead["customerId"], click["customerId"],
        "the lead joins the click's customer"
    );
    assert_eq!(lead["customerCreated"], false);

    let profile = app.customer(click["customerId"].as_str().unwrap()).await;
    assert_eq!(
        identifiers(&profile),
        [
            "CLICK_ID:TEST_CLICK_001",
            "EMAIL:testuser@example.com",
            "PHONE:+51999888777"
        ]
    );
    assert_eq!(
        (profile["firstName"].as_str(), profile["lastName"].as_str()),
        (Some("Juan"), Some("Pérez"))
    );

    let (_, leads) = app.admin("/api/leads").await;
    assert_eq!(leads["items"].as_array().unwrap().len(), 1);
    assert_eq!(leads["items"][0]["leadId"], lead["leadId"]);
    assert_eq!(leads["items"][0]["email"], "testuser@example.com");
}

#[tokio::test]
async fn seed_1_3_deposit_moves_journey_to_retention_and_tracks_revenue() {
    let app = spawn().await;
    let (_, click) = app.post_json("/api/ingest/click", seed_click()).await;
    app.post_json("/api/ingest/lead", seed_lead()).await;
    let customer = click["customerId"].as_str().unwrap();
    let before = app.customer(customer).await;
    assert_eq!(before["journeys"].as_array().unwrap().len(), 1);
    assert_eq!(before["journeys"][0]["stage"], -1);
    assert_eq!(before["journeys"][0]["type"], "acquisition");

    let (status, event) = app.post_json("/api/postback", seed_deposit()).await;
    assert_eq!(status, StatusCode::OK, "{event}");
    assert_eq!(event["customerId"], customer);
    assert_eq!(event["duplicate"], false);

    let after = app.customer(customer).await;
    assert_eq!(after["journeys"].as_array().unwrap().len(), 1, "{after}");
    let j = journey(&after, "rushbet");
    assert_eq!((j["type"].as_str(), j["stage"].as_i64()), (Some("retention"), Some(1)));
    assert_eq!(after["revenue"], json!({"USD": "100"}));
    assert!(identifiers(&after).contains(&"USER_ID:rushbet:rush_test_001".to_owned()));

    let (_, events) = app.admin("/api/events").await;
    let e = &events["items"][0];
    assert_eq!(
        (e["eventType"].as_str(), e["amount"].as_str(), e["currency"].as_str()),
        (Some("deposit"), Some("100"), Some("USD"))
    );
    assert_eq!(e["customerId"], customer);
}

#[tokio::test]
async fn seed_6_2_brands_have_independent_journeys_for_one_customer() {
    let app = spawn().await;
    let (_, rush) = app
        .post_json(
            "/api/ingest/click",
            json!({"clickId": "MB_RUSH", "email": "multi@example.com", "operatorId": "rushbet"}),
        )
        .await;
    let (_, roo) = app
        .post_json(
            "/api/ingest/click",
            json!({"clickId": "MB_ROO", "email": "multi@example.com", "operatorId": "roobet"}),
        )
        .await;
    assert_eq!(rush["customerId"], roo["customerId"], "same email, same customer");
    let (status, _) = app
        .post_json(
            "/api/postback",
            json!({"eventType": "deposit", "email": "multi@example.com", "depositAmount": 50, "operatorId": "rushbet"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    let profile = app.customer(rush["customerId"].as_str().unwrap()).await;
    assert_eq!(journey(&profile, "rushbet")["stage"], 1);
    assert_eq!(journey(&profile, "rushbet")["type"], "retention");
    assert_eq!(journey(&profile, "roobet")["stage"], -1);
    assert_eq!(journey(&profile, "roobet")["type"], "acquisition");
}

#[tokio::test]
async fn seed_6_4_identity_graph_links_devices_and_emails_to_one_customer() {
    let app = spawn().await;
    let (s1, mobile) = app
        .post_json(
            "/api/ingest/click",
            json!({"clickId": "IDENTITY_001", "deviceId": "device_mobile_123", "ip": "192.168.1.100"}),
        )
        .await;
    let (s2, desktop) = app
        .post_json(
            "/api/ingest/click",
            json!({"clickId": "IDENTITY_002", "deviceId": "device_desktop_456", "email": "user@example.com"}),
        )
        .await;
    assert_eq!((s1, s2), (StatusCode::OK, StatusCode::OK));
    assert_ne!(mobile["customerId"], desktop["customerId"], "nothing links them yet");

    let (s3, lead) = app
        .post_json(
            "/api/ingest/lead",
            json!({"clickId": "IDENTITY_001", "email": "user@example.com", "phone": "+51999888777"}),
        )
        .await;
    assert_eq!(s3, StatusCode::OK, "{lead}");
    // The first customer is the older one, so it survives.
    assert_eq!(lead["customerId"], mobile["customerId"]);
    assert_eq!(lead["mergedCustomerIds"], json!([desktop["customerId"]]));

    let profile = app.customer(mobile["customerId"].as_str().unwrap()).await;
    assert_eq!(
        identifiers(&profile),
        [
            "CLICK_ID:IDENTITY_001",
            "CLICK_ID:IDENTITY_002",
            "DEVICE_ID:device_desktop_456",
            "DEVICE_ID:device_mobile_123",
            "EMAIL:user@example.com",
            "PHONE:+51999888777",
        ]
    );
    // One profile: the merged-away id resolves to the survivor, lookups agree.
    let old = app.customer(desktop["customerId"].as_str().unwrap()).await;
    assert_eq!(old["customerId"], mobile["customerId"]);
    assert_eq!(old["resolvedFrom"], desktop["customerId"]);
    for q in [
        "deviceId=device_desktop_456",
        "clickId=IDENTITY_002",
        "email=user@example.com",
        "phone=%2B51999888777",
    ] {
        let (status, found) = app.admin(&format!("/api/customers?{q}")).await;
        assert_eq!(status, StatusCode::OK, "{q}");
        assert_eq!(found["customerId"], mobile["customerId"], "{q}");
    }
    // Activity from both devices shows in one timeline.
    let (_, timeline) = app
        .admin(&format!(
            "/api/customers/{}/timeline",
            mobile["customerId"].as_str().unwrap()
        ))
        .await;
    let kinds: Vec<&str> = timeline["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.iter().filter(|k| **k == "click").count(), 2, "{timeline}");
    assert!(kinds.contains(&"lead") && kinds.contains(&"merge"), "{kinds:?}");
}
