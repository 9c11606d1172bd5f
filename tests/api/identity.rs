//! Merges: deterministic survivor, journeys keep the most advanced state, revenue adds up,
//! the merge is recorded, and concurrent merges still converge on one customer.

use crm_tests::{identifiers, journey, spawn};
use http::StatusCode;
use serde_json::json;

#[tokio::test]
async fn merge_keeps_the_older_customer_the_most_advanced_journey_and_all_revenue() {
    let app = spawn().await;
    let (_, a) = app
        .post_json("/api/ingest/click", json!({"clickId": "M_A", "operatorId": "rushbet"}))
        .await;
    let (_, b) = app.post_json("/api/ingest/click", json!({"clickId": "M_B"})).await;
    app.post_json("/api/postback", json!({"event": "ftd", "clickId": "M_B", "operatorId": "rushbet", "amount": 50, "currency": "EUR", "txid": "1"}))
        .await;
    app.post_json(
        "/api/postback",
        json!({"event": "deposit", "clickId": "M_A", "operatorId": "stake", "amount": 10, "txid": "2"}),
    )
    .await;

    let (status, lead) = app
        .post_json("/api/ingest/lead", json!({"clickId": "M_B", "email": "m@example.com"}))
        .await;
    assert_eq!(lead["customerId"], b["customerId"], "no merge yet: {lead}");
    let (status2, link) = app
        .post_json(
            "/api/ingest/lead",
            json!({"clickId": "M_A", "email": "m@example.com", "firstName": "Lia"}),
        )
        .await;
    assert_eq!((status, status2), (StatusCode::OK, StatusCode::OK));
    assert_eq!(link["customerId"], a["customerId"], "the older customer survives");
    assert_eq!(link["mergedCustomerIds"], json!([b["customerId"]]));

    let p = app.customer(a["customerId"].as_str().unwrap()).await;
    assert_eq!(identifiers(&p), ["CLICK_ID:M_A", "CLICK_ID:M_B", "EMAIL:m@example.com"]);
    assert_eq!(p["revenue"], json!({"EUR": "50", "USD": "10"}));
    assert_eq!(journey(&p, "rushbet")["stage"], 1, "B's FTD with rushbet is kept");
    assert_eq!(journey(&p, "stake")["stage"], 1);
    assert_eq!(p["firstName"], "Lia");
    assert_eq!(p["mergedFrom"], json!([b["customerId"]]));

    // The merge is auditable: who, when, why, and what moved.
    let (_, timeline) = app
        .admin(&format!(
            "/api/customers/{}/timeline",
            a["customerId"].as_str().unwrap()
        ))
        .await;
    let merge = timeline["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["type"] == "merge")
        .expect("merge on the timeline");
    assert_eq!(merge["absorbed"], json!([b["customerId"]]));
    assert_eq!(
        merge["reason"],
        format!("lead {} linked CLICK_ID, EMAIL", link["leadId"].as_str().unwrap())
    );
    assert_eq!(
        merge["absorbedIdentifiers"][b["customerId"].as_str().unwrap()],
        json!(["CLICK_ID#M_B", "EMAIL#m@example.com"])
    );
    // B's own events stay visible from the survivor.
    assert!(
        timeline["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["type"] == "event" && i["customerId"] == b["customerId"])
    );

    // Later activity on B's identifiers lands on A directly.
    let (_, later) = app
        .post_json(
            "/api/postback",
            json!({"event": "deposit", "clickId": "M_B", "operatorId": "rushbet", "amount": 5, "txid": "3"}),
        )
        .await;
    assert_eq!(later["customerId"], a["customerId"]);
}

#[tokio::test]
async fn concurrent_leads_merging_many_customers_converge_on_the_oldest() {
    let app = spawn().await;
    let mut customers = Vec::new();
    for i in 0..10 {
        let (_, c) = app
            .post_json("/api/ingest/click", json!({"clickId": format!("CM_{i}")}))
            .await;
        customers.push(c["customerId"].as_str().unwrap().to_owned());
    }
    // Every lead links its click to the shared email; senders retry a 503 as webhooks do.
    let requests = (0..10).map(|i| {
        let app = &app;
        async move {
            for _ in 0..5 {
                let (status, body) = app
                    .post_json(
                        "/api/ingest/lead",
                        json!({"clickId": format!("CM_{i}"), "email": "merge-race@example.com"}),
                    )
                    .await;
                if status != StatusCode::SERVICE_UNAVAILABLE {
                    assert_eq!(status, StatusCode::OK, "{body}");
                    return;
                }
            }
            panic!("lead CM_{i} kept failing");
        }
    });
    futures::future::join_all(requests).await;
    let (_, found) = app.admin("/api/customers?email=merge-race@example.com").await;
    assert_eq!(found["customerId"], customers[0], "all merged into the oldest");
    assert_eq!(identifiers(&found).len(), 11);
    for (i, c) in customers.iter().enumerate() {
        let (_, by_click) = app.admin(&format!("/api/customers?clickId=CM_{i}")).await;
        assert_eq!(by_click["customerId"], customers[0]);
        assert_eq!(app.customer(c).await["customerId"], customers[0]);
    }
}

/// A flood of clicks carrying one email cannot grow the customer's item without bound:
/// the profile lists at most `MAX_LISTED_IDENTIFIERS`, keeping the newest click ids, every
/// click id stays claimed (a lookup finds the customer), a later phone and deposit still
/// land, and erasure removes the identifiers the profile did not list too.
#[tokio::test]
async fn a_click_flood_with_one_email_leaves_the_profile_bounded_and_writable() {
    use crm_core::plan::MAX_LISTED_IDENTIFIERS;
    let app = spawn().await;
    let email = format!("{}@example.com", crm_tests::unique("flood"));
    let flood = MAX_LISTED_IDENTIFIERS + 50;
    let mut customer = String::new();
    for n in 0..flood {
        let (status, body) = app
            .post_json(
                "/api/ingest/click",
                json!({"clickId": format!("FLOOD_{n}_{email}").replace('@', "_"), "email": email}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "click {n}: {body}");
        customer = body["customerId"].as_str().unwrap().to_owned();
    }
    let profile = app.customer(&customer).await;
    let listed = profile["identifiers"].as_array().unwrap().len();
    assert!(listed <= MAX_LISTED_IDENTIFIERS + 1, "listed {listed}");
    let click = |n: usize| format!("FLOOD_{n}_{email}").replace('@', "_");
    let (first, last) = (click(0), click(flood - 1));
    let ids = identifiers(&profile);
    assert!(
        ids.contains(&format!("CLICK_ID:{last}")),
        "the newest click id is listed"
    );
    assert!(!ids.contains(&format!("CLICK_ID:{first}")), "the oldest made room");
    assert!(ids.contains(&format!("EMAIL:{email}")), "the email stays");
    for id in [&first, &last] {
        let (status, found) = app.admin(&format!("/api/customers?clickId={id}")).await;
        assert_eq!(
            (status, found["customerId"].as_str()),
            (StatusCode::OK, Some(customer.as_str())),
            "{found}"
        );
    }

    let phone = crm_tests::phone();
    let (status, body) = app
        .post_json(
            "/api/ingest/lead",
            json!({"email": email, "phone": phone, "firstName": "Ana"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app
        .post_json(
            "/api/postback",
            json!({"eventType": "deposit", "email": email, "depositAmount": 10, "operatorId": "rushbet"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let profile = app.customer(&customer).await;
    assert!(
        identifiers(&profile).contains(&format!("PHONE:{phone}")),
        "a new phone still reaches the profile"
    );
    assert_eq!(journey(&profile, "rushbet")["type"], "retention");

    let (status, _) = app
        .admin_send(http::Method::DELETE, &format!("/api/customers/{customer}"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    for id in [&first, &last] {
        let (status, _) = app.admin(&format!("/api/customers?clickId={id}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "listed or not, every click id is erased");
    }
}
