//! The sample events in `events/` through each function's real Lambda entry path
//! (API Gateway v2 event → lambda_http → the function's router → API Gateway response),
//! and the routes of `template.yaml` against the routers that serve them.

use axum::Router;
use crm_local::{FUNCTIONS, template_routes};
use crm_tests::{ADMIN_KEY, spawn};
use http::StatusCode;
use lambda_http::request::LambdaRequest;
use lambda_http::{Adapter, Context, LambdaEvent, Service};
use serde_json::Value;

/// Invokes `router` the way the Lambda runtime does; returns (status, headers, JSON body).
async fn invoke(router: Router, event: &str) -> (u16, Value, Value) {
    let request: LambdaRequest = serde_json::from_str(event).expect("a valid API Gateway v2 event");
    let mut adapter = Adapter::from(router);
    let response = adapter
        .call(LambdaEvent::new(request, Context::default()))
        .await
        .expect("infallible router");
    let response = serde_json::to_value(response).unwrap();
    let body = response["body"]
        .as_str()
        .map(|b| serde_json::from_str(b).unwrap_or(Value::Null))
        .unwrap_or(Value::Null);
    (
        response["statusCode"].as_u64().unwrap() as u16,
        response["headers"].clone(),
        body,
    )
}

#[tokio::test]
async fn redtrack_get_event_records_the_click_without_unreplaced_macros() {
    let app = spawn().await;
    let (status, _, body) = invoke(
        (crm_local::function("ClickFunction").router)(app.state.clone()),
        include_str!("../../events/click/redtrack-get.json"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["clickId"], "rt_5f2a9c1e8b7d");
    let (_, clicks) = app.admin("/api/clicks").await;
    let click = &clicks["items"][0];
    assert_eq!(click["campaign"], "spring-promo");
    assert_eq!(click["landingPage"], "https://rushbet.com/register");
    assert_eq!(
        click["subs"],
        serde_json::json!({"sub1": "video42"}),
        "{{sub2}} was never replaced, so it is absent"
    );
    assert!(
        click.get("userAgent").is_none(),
        "{{user_agent}} was never replaced, so it is absent: {click}"
    );
}

#[tokio::test]
async fn seed_events_flow_through_click_lead_and_postback_lambdas() {
    let app = spawn().await;
    let (s1, _, click) = invoke(
        (crm_local::function("ClickFunction").router)(app.state.clone()),
        include_str!("../../events/click/seed-post.json"),
    )
    .await;
    let (s2, headers, lead) = invoke(
        (crm_local::function("LeadFunction").router)(app.state.clone()),
        include_str!("../../events/lead/seed-post.json"),
    )
    .await;
    let (s3, _, event) = invoke(
        (crm_local::function("PostbackFunction").router)(app.state.clone()),
        include_str!("../../events/postback/seed-deposit.json"),
    )
    .await;
    assert_eq!((s1, s2, s3), (200, 200, 200), "{click} {lead} {event}");
    assert_eq!(headers["access-control-allow-origin"], "*");
    assert_eq!(click["customerId"], lead["customerId"]);
    assert_eq!(lead["customerId"], event["customerId"]);
    let profile = app.customer(click["customerId"].as_str().unwrap()).await;
    assert_eq!(profile["revenue"]["USD"], "100");
}

#[tokio::test]
async fn zapier_form_and_voluum_get_postbacks_are_accepted() {
    let app = spawn().await;
    let (s1, _, zap) = invoke(
        (crm_local::function("PostbackFunction").router)(app.state.clone()),
        include_str!("../../events/postback/zapier-form.json"),
    )
    .await;
    assert_eq!(s1, 200, "{zap}");
    assert_eq!(
        (zap["eventType"].as_str(), zap["brand"].as_str()),
        (Some("deposit"), Some("rushbet"))
    );
    let (s2, _, voluum) = invoke(
        (crm_local::function("PostbackFunction").router)(app.state.clone()),
        include_str!("../../events/postback/voluum-get.json"),
    )
    .await;
    assert_eq!(s2, 200, "{voluum}");
    let profile = app.customer(voluum["customerId"].as_str().unwrap()).await;
    assert_eq!(profile["revenue"]["EUR"], "25.5");
    assert_eq!(crm_tests::journey(&profile, "roobet")["stage"], 1);
}

#[tokio::test]
async fn landing_form_event_and_cors_preflight_are_served_by_the_lead_lambda() {
    let app = spawn().await;
    let (status, _, lead) = invoke(
        (crm_local::function("LeadFunction").router)(app.state.clone()),
        include_str!("../../events/lead/landing-form-post.json"),
    )
    .await;
    assert_eq!(status, 200, "{lead}");
    let profile = app.customer(lead["customerId"].as_str().unwrap()).await;
    assert!(crm_tests::identifiers(&profile).contains(&"PHONE:+51999888111".to_owned()));
    let (status, headers, _) = invoke(
        (crm_local::function("LeadFunction").router)(app.state.clone()),
        include_str!("../../events/lead/cors-preflight.json"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(headers["access-control-allow-origin"], "*");
    assert!(
        headers["access-control-allow-methods"]
            .as_str()
            .unwrap()
            .contains("POST")
    );
}

#[tokio::test]
async fn health_and_admin_events_are_served_by_their_lambdas() {
    let app = spawn().await;
    let (status, _, health) = invoke(
        (crm_local::function("HealthFunction").router)(app.state.clone()),
        include_str!("../../events/health/get.json"),
    )
    .await;
    assert_eq!((status, health["status"].as_str()), (200, Some("healthy")));
    let event = include_str!("../../events/admin/recent-clicks.json");
    assert!(event.contains(ADMIN_KEY), "the sample admin event carries the test key");
    let (status, _, body) = invoke((crm_local::function("AdminFunction").router)(app.state.clone()), event).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["items"], serde_json::json!([]));
}

#[tokio::test]
async fn every_template_route_is_served_by_its_function_and_every_route_is_in_the_template() {
    let app = spawn().await;
    for f in &FUNCTIONS {
        let routes = template_routes(f.logical_id).unwrap();
        assert!(!routes.is_empty(), "{} has no routes in template.yaml", f.logical_id);
        for route in f.routes {
            assert!(
                routes.iter().any(|(_, p)| p == route),
                "{route} is not routed to {} in template.yaml",
                f.logical_id
            );
        }
        for (method, path) in routes {
            assert!(
                f.routes.contains(&path.as_str()),
                "template routes {method} {path} to {} which does not serve it",
                f.logical_id
            );
            let concrete = path
                .replace("{id}", "0192f0c1-7b7e-7cc0-9b1a-3c3f2d6e8a10")
                .replace("{brand}", "rushbet");
            let req = http::Request::builder()
                .method(method.as_str())
                .uri(&concrete)
                .header("origin", "https://lp.example.com")
                .header("access-control-request-method", "POST")
                .header("authorization", format!("Bearer {ADMIN_KEY}"))
                .body(axum::body::Body::empty())
                .unwrap();
            let (status, _, body) = crm_tests::send(&(f.router)(app.state.clone()), req).await;
            // A missing customer or brand is fine (`not_found`); a missing route is not.
            assert!(
                status != StatusCode::METHOD_NOT_ALLOWED && body["error"]["code"] != "no_route",
                "{method} {path} → {status} {body}"
            );
        }
    }
}
