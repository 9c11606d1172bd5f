use crm_tests::{identifiers, spawn, spawn_with};
use http::{Request, StatusCode};
use serde_json::json;

#[tokio::test]
async fn lead_with_a_malformed_phone_keeps_the_email_and_warns() {
    let app = spawn().await;
    let (status, body) = app
        .post_json(
            "/api/ingest/lead",
            json!({"email": "Good@Example.com", "phone": "12345"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["warnings"][0]["field"], "phone");
    let profile = app.customer(body["customerId"].as_str().unwrap()).await;
    assert_eq!(identifiers(&profile), ["EMAIL:good@example.com"]);
}

/// São Paulo's mobiles (area 11, Brazil's largest market) were refused as invalid: a lead
/// with only such a phone was lost. Now it is kept, and a possible number in a range the
/// metadata does not know is kept too, with a warning.
#[tokio::test]
async fn a_sao_paulo_mobile_lead_is_kept() {
    let app = spawn().await;
    for (raw, stored, warnings) in [
        ("+55 11 96123-4567", "+5511961234567", json!([])),
        ("+55 11 56123-4567", "+5511561234567", json!(["unverified_phone"])),
    ] {
        let (status, body) = app.post_json("/api/ingest/lead", json!({"phone": raw})).await;
        assert_eq!(status, StatusCode::OK, "{raw}: {body}");
        let codes: Vec<&serde_json::Value> = body["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| &w["code"])
            .collect();
        assert_eq!(json!(codes), warnings, "{raw}");
        let profile = app.customer(body["customerId"].as_str().unwrap()).await;
        assert_eq!(identifiers(&profile), [format!("PHONE:{stored}")]);
    }
}

#[tokio::test]
async fn replayed_lead_is_recognised_and_recorded_once() {
    let app = spawn().await;
    let lead = json!({"clickId": "RL_1", "email": "replay@example.com", "firstName": "Ana"});
    let (_, first) = app.post_json("/api/ingest/lead", lead.clone()).await;
    let (status, second) = app.post_json("/api/ingest/lead", lead).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (second["duplicate"].as_bool(), &second["leadId"]),
        (Some(true), &first["leadId"])
    );
    let (_, leads) = app.admin("/api/leads").await;
    assert_eq!(leads["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_lead_costs_at_most_two_dynamodb_round_trips() {
    let app = spawn().await;
    app.post_json("/api/ingest/click", json!({"clickId": "LB_1"})).await;
    app.take_calls();
    let (status, _) = app
        .post_json(
            "/api/ingest/lead",
            json!({"clickId": "LB_1", "email": "b@example.com", "phone": "+51999888777"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let calls = app.take_calls();
    assert_eq!(calls.values().sum::<u64>(), 2, "{calls:?}");
}

#[tokio::test]
async fn cors_allows_only_configured_origins() {
    let app = spawn_with(&[(
        "CORS_ALLOWED_ORIGINS",
        "https://lp.example.com,https://promo.example.com",
    )])
    .await;
    let preflight = |origin: &str| {
        Request::options("/api/ingest/lead")
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .body(axum::body::Body::empty())
            .unwrap()
    };
    let (status, headers, _) = app.send(preflight("https://promo.example.com")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["access-control-allow-origin"], "https://promo.example.com");
    let (_, headers, _) = app.send(preflight("https://evil.example.net")).await;
    assert!(headers.get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn fifty_simultaneous_leads_with_one_email_make_exactly_one_customer() {
    let app = spawn().await;
    let requests = (0..50).map(|i| {
        app.post_json(
            "/api/ingest/lead",
            json!({"clickId": format!("CONC_{i}"), "email": "race@example.com"}),
        )
    });
    let responses = futures::future::join_all(requests).await;
    let customers: std::collections::BTreeSet<String> = responses
        .iter()
        .map(|(status, body)| {
            assert_eq!(*status, StatusCode::OK, "{body}");
            body["customerId"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(customers.len(), 1, "{customers:?}");
    let id = customers.first().unwrap();
    let (_, found) = app.admin("/api/customers?email=race@example.com").await;
    assert_eq!(found["customerId"], id.as_str());
    let ids = identifiers(&found);
    assert_eq!(ids.len(), 51, "50 click ids and one email");
    assert_eq!(
        responses.iter().filter(|(_, b)| b["customerCreated"] == true).count(),
        1
    );
}

/// A name that is a phishing link (issue 17's attack) never reaches the profile, and so
/// never a brand's email; the rest of the lead is kept.
#[tokio::test]
async fn a_name_that_is_markup_or_a_link_is_dropped_and_the_lead_kept() {
    let app = spawn().await;
    let (status, body) = app
        .post_json(
            "/api/ingest/lead",
            json!({"email": "victim@example.com", "firstName": "<a href=\"https://evil.example/x\">Claim bonus</a>", "lastName": "Pérez"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["warnings"][0]["field"], "firstName");
    assert_eq!(body["warnings"][0]["code"], "not_a_name");
    let profile = app.customer(body["customerId"].as_str().unwrap()).await;
    assert!(profile["firstName"].is_null(), "{profile}");
    assert_eq!(profile["lastName"], "Pérez");
}
