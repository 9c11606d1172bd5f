//! Tracked links: the admin API creates them, `GET /l/{code}` records a visit as a click and
//! redirects with the influencer and the visit appended.

use crm_tests::{PUBLIC_BASE_URL, TestApp, spawn, unique};
use http::{Method, Request, StatusCode, header};
use serde_json::{Value, json};

const PHONE_BROWSER: &str =
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148";

/// An influencer, a campaign of a brand, and a link crediting both.
async fn a_link(app: &TestApp, destination: &str) -> (String, String, Value) {
    let influencer = unique("inf");
    let (status, body) = app
        .admin_send(
            Method::POST,
            "/api/influencers",
            json!({"influencerId": influencer, "name": "Carlos"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (_, campaign) = app
        .admin_send(
            Method::POST,
            "/api/campaigns",
            json!({"name": unique("Bio link"), "brand": "rushbet", "influencerId": influencer}),
        )
        .await;
    let campaign_id = campaign["campaignId"].as_str().unwrap().to_owned();
    let (status, link) = app
        .admin_send(
            Method::POST,
            "/api/links",
            json!({"influencerId": influencer, "campaignId": campaign_id, "destination": destination}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{link}");
    (influencer, campaign_id, link)
}

fn visit(path: &str, method: Method, user_agent: &str) -> Request<axum::body::Body> {
    Request::builder()
        .method(method)
        .uri(path)
        .header(header::USER_AGENT, user_agent)
        .header(header::REFERER, "https://www.instagram.com/")
        .body(axum::body::Body::empty())
        .unwrap()
}

/// The redirect's target and the visit id it carries as `sub10`.
fn followed(headers: &http::HeaderMap) -> (String, String) {
    let location = headers[header::LOCATION].to_str().unwrap().to_owned();
    let visit = location
        .split(['?', '&'])
        .find_map(|p| p.strip_prefix("sub10="))
        .unwrap_or_else(|| panic!("no sub10 in {location}"))
        .to_owned();
    (location, visit)
}

async fn clicks_of(app: &TestApp, influencer: &str) -> Vec<Value> {
    let (_, feed) = app.admin("/api/clicks").await;
    feed["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["influencerId"] == influencer)
        .cloned()
        .collect()
}

#[tokio::test]
async fn a_visit_through_a_link_is_one_click_credited_to_its_influencer_and_redirected_with_sub9_and_sub10() {
    let app = spawn().await;
    let (influencer, campaign, link) = a_link(&app, "https://trk.example.com/cmp1?cmpid=64f").await;
    let code = link["code"].as_str().unwrap();
    assert_eq!(link["url"], format!("{PUBLIC_BASE_URL}/l/{code}").as_str(), "{link}");

    // A person: one click, redirected to the destination with the credit appended and the
    // visitor's own parameters passed through (a forged sub10 is not).
    let path =
        format!("/l/{code}?utm_source=instagram&sub1=bio&sub10=forged&fbclid=IwAR0&occurredAt=1&utm_campaign=other");
    let _ = app.take_calls();
    let (status, headers, _) = app.send(visit(&path, Method::GET, PHONE_BROWSER)).await;
    assert_eq!(status, StatusCode::FOUND);
    let (location, visit_id) = followed(&headers);
    assert!(
        location.starts_with(&format!(
            "https://trk.example.com/cmp1?cmpid=64f&sub9={influencer}&sub10=v"
        )),
        "{location}"
    );
    assert!(
        location.ends_with("&utm_source=instagram&sub1=bio&fbclid=IwAR0&occurredAt=1&utm_campaign=other"),
        "{location}"
    );
    assert!(!location.contains("forged"));
    let calls = app.take_calls();
    assert_eq!(
        calls.values().sum::<u64>(),
        2,
        "the link's read (then cached) and one transaction: {calls:?}"
    );

    // The same browser again within 30 s: the same visit, no second click (and an id of
    // its own, so two people behind one address never share a customer).
    let (status, headers, _) = app.send(visit(&path, Method::GET, PHONE_BROWSER)).await;
    assert_eq!(status, StatusCode::FOUND);
    assert_ne!(followed(&headers).1, visit_id);
    // Link previews, crawlers and HEAD requests are redirected and not counted.
    for (method, agent) in [
        (
            Method::GET,
            "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
        ),
        (Method::GET, "facebookexternalhit/1.1"),
        (Method::HEAD, PHONE_BROWSER),
    ] {
        let (status, headers, _) = app.send(visit(&path, method, agent)).await;
        assert_eq!(status, StatusCode::FOUND, "{agent}");
        let location = headers[header::LOCATION].to_str().unwrap();
        assert!(
            location.contains("sub9=") && !location.contains("sub10="),
            "not a recorded visit: {location}"
        );
    }
    // Another person: with the link cached, the hot path is one DynamoDB request.
    let _ = app.take_calls();
    let other = format!("{PHONE_BROWSER} Instagram 320.0");
    let (status, headers, _) = app.send(visit(&path, Method::GET, &other)).await;
    assert_eq!(status, StatusCode::FOUND);
    assert_ne!(followed(&headers).1, visit_id);
    let calls = app.take_calls();
    assert_eq!(calls.values().sum::<u64>(), 1, "{calls:?}");

    app.drain().await;
    let clicks = clicks_of(&app, &influencer).await;
    assert_eq!(clicks.len(), 2, "{clicks:?}");
    let click = clicks.iter().find(|c| c["clickId"] == visit_id.as_str()).unwrap();
    assert_eq!(click["clickId"], visit_id.as_str());
    assert_eq!(
        (click["campaign"].as_str(), click["brand"].as_str()),
        (Some(campaign.as_str()), Some("rushbet"))
    );
    assert!(
        click["at"]
            .as_str()
            .unwrap()
            .starts_with(&time::OffsetDateTime::now_utc().date().to_string()),
        "the visitor's occurredAt is not the click's time: {click}"
    );
    assert_eq!(click["source"], "instagram");
    assert_eq!(click["subs"]["sub1"], "bio");
    assert_eq!(click["referrer"], "https://www.instagram.com/");
    assert_eq!(click["userAgent"], PHONE_BROWSER);
    let (_, stats) = app.admin(&format!("/api/influencers/{influencer}")).await;
    assert_eq!(stats["stats"]["clicks"], 2, "{stats}");

    // The lead that comes back with the visit id as its click id is the same customer.
    let (_, lead) = app
        .post_json(
            "/api/ingest/lead",
            json!({"clickId": visit_id, "email": format!("{}@example.com", unique("v")), "brand": "rushbet"}),
        )
        .await;
    assert_eq!(lead["customerId"], click["customerId"], "{lead}");
    // Redtrack's conversion postback carries its own click id and our visit as sub10: the
    // same customer too.
    let (_, postback) = app
        .get(&format!(
            "/api/postback?clickid={}&sub10={visit_id}&type=registration&brand=rushbet",
            unique("rt")
        ))
        .await;
    assert_eq!(postback["customerId"], click["customerId"], "{postback}");
    // The landing page reports Redtrack's click of the same visit (sub10 came along): the
    // same customer, and the brand still counts two clicks, one per visit.
    let (status, tagged) = app
        .get(&format!(
            "/api/ingest/click?clickid={}&sub10={visit_id}&brand=rushbet",
            unique("rtk")
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{tagged}");
    assert_eq!(tagged["customerId"], click["customerId"], "{tagged}");
    app.drain().await;
    let (_, brand) = app.admin("/api/brands/rushbet").await;
    assert_eq!(brand["clicks"], 2, "{brand}");
}

#[tokio::test]
async fn placeholders_decide_what_the_destination_gets_and_an_unknown_code_is_a_404_page() {
    let app = spawn().await;
    let (influencer, _, link) = a_link(&app, "https://op.example/r?aff={influencerId}&click={visitId}").await;
    let (status, headers, _) = app
        .send(visit(
            &format!("/l/{}", link["code"].as_str().unwrap()),
            Method::GET,
            PHONE_BROWSER,
        ))
        .await;
    assert_eq!(status, StatusCode::FOUND);
    let location = headers[header::LOCATION].to_str().unwrap();
    assert!(
        location.starts_with(&format!("https://op.example/r?aff={influencer}&click=v")),
        "{location}"
    );
    assert!(!location.contains("sub9"), "{location}");

    let (status, headers, body) = app.send(visit("/l/nosuchcode", Method::GET, PHONE_BROWSER)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(headers[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/html"));
    assert!(body.as_str().unwrap().contains("does not exist"));
}

#[tokio::test]
async fn links_are_listed_edited_and_archived_and_an_archived_link_still_redirects() {
    let app = spawn().await;
    let (influencer, _, link) = a_link(&app, "https://trk.example.com/a").await;
    let code = link["code"].as_str().unwrap().to_owned();
    for (body, field) in [
        (json!({"destination": "https://x.example"}), "influencerId"),
        (
            json!({"influencerId": "nobody-here", "destination": "https://x.example"}),
            "influencerId",
        ),
        (json!({"influencerId": influencer}), "destination"),
        (
            json!({"influencerId": influencer, "destination": "javascript:alert(1)"}),
            "destination",
        ),
        (
            json!({"influencerId": influencer, "destination": "https://x.example", "code": "a/b"}),
            "code",
        ),
    ] {
        let (status, err) = app.admin_send(Method::POST, "/api/links", body).await;
        assert_eq!(
            (status, err["error"]["field"].as_str()),
            (StatusCode::BAD_REQUEST, Some(field)),
            "{err}"
        );
    }
    let (status, _) = app
        .admin_send(
            Method::POST,
            "/api/links",
            json!({"influencerId": influencer, "destination": "https://x.example", "code": code}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "a chosen code that is taken");

    let (status, edited) = app
        .admin_send(
            Method::PUT,
            &format!("/api/links/{code}"),
            json!({"influencerId": influencer, "destination": "https://trk.example.com/b"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{edited}");
    assert_eq!(edited["destination"], "https://trk.example.com/b");
    let listed = |v: &Value| {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["code"] == code.as_str())
    };
    let (_, list) = app.admin(&format!("/api/links?influencerId={influencer}")).await;
    assert!(listed(&list), "{list}");

    let (status, _) = app
        .admin_send(Method::DELETE, &format!("/api/links/{code}"), json!({}))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, list) = app.admin("/api/links").await;
    assert!(!listed(&list), "archived links leave the list");
    let (_, list) = app.admin("/api/links?archived=true").await;
    assert!(listed(&list));
    let (status, headers, _) = app.send(visit(&format!("/l/{code}"), Method::GET, PHONE_BROWSER)).await;
    assert_eq!(status, StatusCode::FOUND, "a printed link keeps working");
    assert!(
        headers[header::LOCATION]
            .to_str()
            .unwrap()
            .starts_with("https://trk.example.com/b?sub9=")
    );
}
