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
    // API Gateway v2 carries cookies beside the headers.
    let mut headers = response["headers"].clone();
    if let Some(cookie) = response["cookies"].get(0) {
        headers["set-cookie"] = cookie.clone();
    }
    (response["statusCode"].as_u64().unwrap() as u16, headers, body)
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

/// `docs/openapi.yaml` describes exactly the routes `template.yaml` deploys (which the
/// next test holds to the routers): none undocumented, none documented that does not exist.
#[test]
fn the_openapi_document_describes_every_route_and_only_those() {
    let doc: serde_norway::Value = serde_norway::from_str(include_str!("../../docs/openapi.yaml")).unwrap();
    assert_eq!(doc["openapi"].as_str(), Some("3.1.0"));
    let mut documented = std::collections::BTreeSet::new();
    for (path, item) in doc["paths"].as_mapping().expect("paths") {
        let path = path.as_str().unwrap().to_owned();
        for method in ["get", "put", "post", "delete", "options", "patch", "head"] {
            if let Some(op) = item.get(method) {
                assert!(
                    op["responses"].as_mapping().is_some_and(|r| !r.is_empty()),
                    "{method} {path} has no responses"
                );
                documented.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    let deployed: std::collections::BTreeSet<(String, String)> = FUNCTIONS
        .iter()
        .flat_map(|f| template_routes(f.logical_id).unwrap())
        .collect();
    let undocumented: Vec<_> = deployed.difference(&documented).collect();
    let phantom: Vec<_> = documented.difference(&deployed).collect();
    assert!(
        undocumented.is_empty(),
        "deployed but not in docs/openapi.yaml: {undocumented:?}"
    );
    assert!(phantom.is_empty(), "in docs/openapi.yaml but not deployed: {phantom:?}");
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

/// The journey sample: a customer's first profile write. Committed (put in the table), then
/// the stream event through the journey function schedules the welcome, once however often
/// the record is delivered.
#[tokio::test]
async fn journey_sample_event_schedules_the_welcome_once() {
    let app = spawn().await;
    let sample = include_str!("../../events/journey/profile-insert.json");
    let raw: Value = serde_json::from_str(sample).unwrap();
    let image: std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue> =
        serde_dynamo_item(&raw["Records"][0]["dynamodb"]["NewImage"]);
    app.state
        .store
        .client()
        .put_item()
        .table_name(app.state.store.table())
        .set_item(Some(image))
        .send()
        .await
        .unwrap();
    for _ in 0..2 {
        let event: aws_lambda_events::dynamodb::Event = serde_json::from_str(sample).unwrap();
        let response = crm_journey::handle(&app.messaging, event).await;
        assert!(response.batch_item_failures.is_empty());
    }
    let messages = app.messages("0192f0c1-7b7e-7cc0-9b1a-3c3f2d6e8a10").await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(
        (
            messages[0]["stepId"].as_str(),
            messages[0]["brand"].as_str(),
            messages[0]["status"].as_str()
        ),
        (Some("welcome"), Some("rushbet"), Some("PENDING"))
    );
    assert_eq!(messages[0]["dueAt"], "2026-11-22T10:05:00.000Z");
}

/// The attribution sample: a committed click through the attribution function, delivered
/// twice, is counted once, and the campaign and influencer it names appear.
#[tokio::test]
async fn attribution_sample_event_counts_the_click_once() {
    let app = spawn().await;
    let sample = include_str!("../../events/attribution/click-insert.json");
    let raw: Value = serde_json::from_str(sample).unwrap();
    app.state
        .store
        .client()
        .put_item()
        .table_name(app.state.store.table())
        .set_item(Some(serde_dynamo_item(&raw["Records"][0]["dynamodb"]["NewImage"])))
        .send()
        .await
        .unwrap();
    for _ in 0..2 {
        // What the runtime decodes a stream batch as.
        let event: crm_attribution::Invocation = serde_json::from_str(sample).unwrap();
        match crm_attribution::invoke(&app.attribution, event, std::time::Duration::from_secs(10)).await {
            Ok(crm_attribution::Reply::Stream(response)) => assert!(response.batch_item_failures.is_empty()),
            other => panic!("{other:?}"),
        }
    }
    let (_, influencer) = app
        .admin("/api/influencers/sample-influencer?from=2026-11-22&to=2026-11-22")
        .await;
    assert_eq!(influencer["autoCreated"], true, "{influencer}");
    assert_eq!(influencer["stats"]["clicks"], 1);
    let (_, campaigns) = app.admin("/api/campaigns").await;
    assert_eq!(campaigns["items"][0]["name"], "sample-campaign");
}

fn serde_dynamo_item(image: &Value) -> std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue> {
    let item: serde_dynamo::Item = serde_json::from_value(image.clone()).unwrap();
    item.into()
}

/// The scheduler sample (EventBridge Scheduler's input) and the sender sample (an SQS
/// event) through their functions: the scheduler queues the welcome, the sender sample,
/// carrying that job, sends it; the same sample again sends nothing.
#[tokio::test]
async fn scheduler_and_sender_sample_events_send_a_due_message_once() {
    let app = spawn().await;
    let email = format!("{}@example.com", uuid::Uuid::new_v4().simple());
    let (status, body) = app
        .post_json(
            "/api/ingest/lead",
            serde_json::json!({"email": email, "firstName": "Ana", "operatorId": "rushbet"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let customer = body["customerId"].as_str().unwrap().to_owned();
    // Journey function only (the queue is left for the sample).
    let mut stream = app.fresh_stream().await;
    stream
        .pump(async |e| crm_journey::handle(&app.messaging, e).await)
        .await
        .unwrap();

    let tick: crm_scheduler::Tick = serde_json::from_str(include_str!("../../events/scheduler/tick.json")).unwrap();
    assert_eq!(tick.scheduled_time.as_deref(), Some("2026-11-22T10:05:00Z"));
    let report = crm_scheduler::handle(&app.messaging, tick).await.unwrap();
    assert_eq!(report.enqueued, 1, "{report:?}");
    let messages = app.messages(&customer).await;
    let job = serde_json::json!({"customerId": customer, "messageId": messages[0]["messageId"]});
    let mut sample: Value = serde_json::from_str(include_str!("../../events/sender/send-job.json")).unwrap();
    sample["Records"][0]["body"] = Value::String(job.to_string());
    for _ in 0..2 {
        let event: aws_lambda_events::sqs::SqsEvent = serde_json::from_value(sample.clone()).unwrap();
        let response = crm_sender::handle(&app.messaging, event).await;
        assert!(response.batch_item_failures.is_empty());
    }
    assert_eq!(crm_tests::mailbox::emails_to(&email).len(), 1);
    assert_eq!(app.messages(&customer).await[0]["status"], "SENT");

    // The sample as shipped names a message that does not exist: acknowledged, nothing sent.
    let event: aws_lambda_events::sqs::SqsEvent =
        serde_json::from_str(include_str!("../../events/sender/send-job.json")).unwrap();
    assert!(
        crm_sender::handle(&app.messaging, event)
            .await
            .batch_item_failures
            .is_empty()
    );
}

/// The journey-advance sample (EventBridge Scheduler's input) through its function.
#[tokio::test]
async fn journey_advance_sample_event_runs_a_tick() {
    let app = spawn().await;
    let tick: crm_messaging::Tick =
        serde_json::from_str(include_str!("../../events/journey-advance/tick.json")).unwrap();
    let report = crm_journey_advance::handle(&app.messaging, tick).await.unwrap();
    assert_eq!(
        report,
        crm_messaging::advance::AdvanceReport::default(),
        "nothing due in a new table"
    );
}

/// With `CRON_SECRET` set, the manual trigger needs it as a bearer token.
#[tokio::test]
async fn the_cron_trigger_requires_its_secret_when_one_is_set() {
    let secret = "cron-secret-0123456789";
    let app = crm_tests::spawn_with(&[("CRON_SECRET", secret)]).await;
    let (status, _) = app.get("/api/cron/process-messages").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let req = http::Request::post("/api/cron/process-messages")
        .header(http::header::AUTHORIZATION, format!("Bearer {secret}"))
        .body(axum::body::Body::empty())
        .unwrap();
    let (status, _, body) = app.send(req).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["enqueued"], 0);
}

/// The HTTP functions' other sample events, each through its Lambda entry path: the cron
/// triggers with their secret, both test sends, an unsubscribe link that is not ours, an SMS
/// reply saying STOP, a tracked link's visit and the console's login page.
#[tokio::test]
async fn the_cron_test_send_unsubscribe_sms_inbound_link_and_console_samples_are_served() {
    let app = crm_tests::spawn_with(&[("CRON_SECRET", "test-cron-secret-0123456789")]).await;
    let router = |id: &str| (crm_local::function(id).router)(app.state.clone());

    let (status, _, body) = invoke(
        router("CronFunction"),
        include_str!("../../events/cron/process-messages.json"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["enqueued"], 0, "{body}");
    let (status, _, body) = invoke(
        router("ImportClicksCronFunction"),
        include_str!("../../events/import-clicks-cron/run-now.json"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["sources"],
        serde_json::json!([]),
        "no Redtrack source here: {body}"
    );

    let (status, _, body) = invoke(
        router("TestSendFunction"),
        include_str!("../../events/test-send/send-email.json"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["messageId"].is_string(), "{body}");
    let (status, _, body) = invoke(
        router("TestSendFunction"),
        include_str!("../../events/test-send/send-sms.json"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["messageId"].is_string(), "{body}");

    // A token we never signed, clicked in a mail app: a page that says the link is not ours.
    let (status, headers, _) = invoke(
        router("UnsubscribeFunction"),
        include_str!("../../events/unsubscribe/invalid-token.json"),
    )
    .await;
    assert_eq!(status, 404);
    assert!(
        headers["content-type"].as_str().unwrap().starts_with("text/html"),
        "{headers}"
    );

    let (status, _, body) = invoke(
        router("SmsInboundFunction"),
        include_str!("../../events/sms-inbound/stop.json"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (_, listed) = app.admin("/api/suppressions?channel=sms&address=%2B525598765432").await;
    assert_eq!(listed["items"].as_array().map(Vec::len), Some(1), "{listed}");

    // The link the sample visits, made first; the visit redirects to its destination.
    let (status, _) = app
        .admin_send(
            http::Method::POST,
            "/api/influencers",
            serde_json::json!({"influencerId": "inf-sample", "name": "Sample"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, link) = app
        .admin_send(
            http::Method::POST,
            "/api/links",
            serde_json::json!({"code": "SAMPLE1", "influencerId": "inf-sample", "destination": "https://rushbet.example/register"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{link}");
    let (status, headers, _) = invoke(router("LinkFunction"), include_str!("../../events/link/visit.json")).await;
    assert_eq!(status, 302, "{headers}");
    assert!(
        headers["location"]
            .as_str()
            .unwrap()
            .starts_with("https://rushbet.example/register"),
        "{headers}"
    );

    let (status, headers, _) = invoke(
        router("ConsoleFunction"),
        include_str!("../../events/console/login-page.json"),
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        headers["set-cookie"].as_str().unwrap().starts_with("__Host-crm_login="),
        "{headers}"
    );
}

/// Every function of `template.yaml` has sample events in `events/<name>/` (its logical id
/// without `Function`, in kebab case), each a JSON document.
#[test]
fn every_function_has_sample_events() {
    let t: serde_norway::Value = serde_norway::from_str(crm_local::TEMPLATE).unwrap();
    let events = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../events");
    let mut missing = Vec::new();
    for (id, resource) in t["Resources"].as_mapping().unwrap() {
        if resource["Type"].as_str() != Some("AWS::Serverless::Function") {
            continue;
        }
        let id = id.as_str().unwrap().trim_end_matches("Function");
        let mut name = String::new();
        for (i, c) in id.chars().enumerate() {
            if c.is_ascii_uppercase() && i > 0 {
                name.push('-');
            }
            name.push(c.to_ascii_lowercase());
        }
        let dir = events.join(&name);
        let samples: Vec<_> = std::fs::read_dir(&dir)
            .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default();
        if samples.is_empty() {
            missing.push(name);
        }
        for sample in samples {
            let text = std::fs::read_to_string(&sample).unwrap();
            serde_json::from_str::<Value>(&text).unwrap_or_else(|e| panic!("{}: {e}", sample.display()));
        }
    }
    assert!(missing.is_empty(), "functions without a sample event: {missing:?}");
}

/// The configuration variables named in the first column of the README's table.
fn readme_variables() -> std::collections::BTreeSet<String> {
    let readme = include_str!("../../README.md");
    readme
        .lines()
        .filter(|l| l.starts_with("| `"))
        .filter_map(|l| l.split('|').nth(1))
        .flat_map(|cell| {
            cell.split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .filter(|name| {
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        })
        .collect()
}

/// `.env.example` lists exactly the variables the README's table documents, and every
/// variable `template.yaml` sets is documented there.
#[test]
fn env_example_readme_and_template_name_the_same_variables() {
    let documented = readme_variables();
    assert!(documented.len() > 40, "{documented:?}");
    let example: std::collections::BTreeSet<String> = include_str!("../../.env.example")
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('=').map(|(k, _)| k.trim().to_owned()))
        .collect();
    let undocumented: Vec<_> = example.difference(&documented).collect();
    let unlisted: Vec<_> = documented.difference(&example).collect();
    assert!(
        undocumented.is_empty(),
        ".env.example names what the README does not: {undocumented:?}"
    );
    assert!(unlisted.is_empty(), ".env.example misses: {unlisted:?}");
    let t: serde_norway::Value = serde_norway::from_str(crm_local::TEMPLATE).unwrap();
    let mut set_by_template = std::collections::BTreeSet::new();
    fn variables(v: &serde_norway::Value, out: &mut std::collections::BTreeSet<String>) {
        match v {
            serde_norway::Value::Mapping(m) => {
                for (k, child) in m {
                    match (k.as_str(), child) {
                        (Some("Variables"), serde_norway::Value::Mapping(vars)) => {
                            out.extend(vars.keys().filter_map(|k| k.as_str().map(str::to_owned)));
                        }
                        _ => variables(child, out),
                    }
                }
            }
            serde_norway::Value::Sequence(items) => items.iter().for_each(|i| variables(i, out)),
            serde_norway::Value::Tagged(t) => variables(&t.value, out),
            _ => {}
        }
    }
    variables(&t, &mut set_by_template);
    assert!(set_by_template.len() > 20, "{set_by_template:?}");
    let missing: Vec<_> = set_by_template.difference(&documented).collect();
    assert!(
        missing.is_empty(),
        "template.yaml sets what the README does not document: {missing:?}"
    );
}

/// The template's resources with each `Fn::ForEach` fragment expanded (its identifier
/// replaced by each item of its collection), as the LanguageExtensions transform does.
fn expanded_resources(t: &serde_norway::Value) -> Vec<(String, serde_norway::Value)> {
    let mut all = Vec::new();
    for (key, value) in t["Resources"].as_mapping().unwrap() {
        let key = key.as_str().unwrap();
        let Some(_) = key.strip_prefix("Fn::ForEach::") else {
            all.push((key.to_owned(), value.clone()));
            continue;
        };
        let loop_ = value.as_sequence().unwrap();
        let identifier = format!("${{{}}}", loop_[0].as_str().unwrap());
        let fragment = serde_norway::to_string(&loop_[2]).unwrap();
        for item in loop_[1].as_sequence().unwrap() {
            let text = fragment.replace(&identifier, item.as_str().unwrap());
            let expanded: serde_norway::Value = serde_norway::from_str(&text).unwrap();
            for (name, resource) in expanded.as_mapping().unwrap() {
                all.push((name.as_str().unwrap().to_owned(), resource.clone()));
            }
        }
    }
    all
}

/// The resource a value names: `!Ref X`, `{Ref: X}`, `{Ref: {Fn::Sub: X}}`, `!GetAtt X.Attr`.
fn named(v: &serde_norway::Value) -> Option<String> {
    match v {
        serde_norway::Value::Tagged(t) if t.tag == "Ref" => t.value.as_str().map(str::to_owned),
        serde_norway::Value::Tagged(t) if t.tag == "GetAtt" => t
            .value
            .as_str()
            .map(|s| s.split('.').next().unwrap_or_default().to_owned()),
        serde_norway::Value::Mapping(m) => match m.get("Ref")? {
            serde_norway::Value::String(s) => Some(s.clone()),
            sub => sub.get("Fn::Sub").and_then(|s| s.as_str()).map(str::to_owned),
        },
        _ => None,
    }
}

/// A panic, a timeout and a missing configuration variable are invocation errors, which a
/// function cannot report itself: every function of the template has an `Errors` and a
/// `Throttles` alarm on AWS's own metrics, every queue an alarm on its own `AWS/SQS`
/// metrics, the two stream functions one on their iterator age, and each alarm notifies
/// the alarm topic.
#[test]
fn every_function_and_queue_has_an_alarm_on_aws_own_metrics() {
    let t: serde_norway::Value = serde_norway::from_str(crm_local::TEMPLATE).unwrap();
    let resources = expanded_resources(&t);
    let of_type = |ty: &str| -> Vec<String> {
        resources
            .iter()
            .filter(|(_, r)| r["Type"].as_str() == Some(ty))
            .map(|(id, _)| id.clone())
            .collect()
    };
    // (namespace, metric, resource its dimension names)
    let mut alarms: Vec<(String, String, Option<String>)> = Vec::new();
    // (metric, route) of API Gateway's per-route metrics some alarm reads
    let mut routes_alarmed: Vec<(String, String)> = Vec::new();
    for (id, r) in resources
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some("AWS::CloudWatch::Alarm"))
    {
        let p = &r["Properties"];
        let actions = p["AlarmActions"]
            .as_sequence()
            .map(|a| a.iter().filter_map(named).collect::<Vec<_>>());
        assert_eq!(
            actions,
            Some(vec!["AlarmTopic".to_owned()]),
            "{id} notifies the alarm topic"
        );
        let dimension = p["Dimensions"]
            .as_sequence()
            .and_then(|d| d.first())
            .and_then(|d| named(&d["Value"]));
        if let (Some(ns), Some(metric)) = (p["Namespace"].as_str(), p["MetricName"].as_str()) {
            alarms.push((ns.to_owned(), metric.to_owned(), dimension));
        }
        // Metric math: each metric it reads, by the route it names (API Gateway's per-route
        // metrics).
        for m in p["Metrics"].as_sequence().into_iter().flatten() {
            let metric = &m["MetricStat"]["Metric"];
            let route = metric["Dimensions"]
                .as_sequence()
                .into_iter()
                .flatten()
                .find(|d| d["Name"].as_str() == Some("Route"))
                .and_then(|d| d["Value"].as_str());
            if let (Some(name), Some(route)) = (metric["MetricName"].as_str(), route) {
                routes_alarmed.push((name.to_owned(), route.to_owned()));
            }
        }
    }
    let has = |ns: &str, metric: Option<&str>, resource: &str| {
        alarms
            .iter()
            .any(|(n, m, d)| n == ns && metric.is_none_or(|x| x == m) && d.as_deref() == Some(resource))
    };
    let functions = of_type("AWS::Serverless::Function");
    assert!(functions.len() >= 21, "{functions:?}");
    for f in &functions {
        assert!(has("AWS/Lambda", Some("Errors"), f), "{f} has no Errors alarm");
        assert!(has("AWS/Lambda", Some("Throttles"), f), "{f} has no Throttles alarm");
    }
    for f in ["JourneyFunction", "AttributionFunction"] {
        assert!(
            has("AWS/Lambda", Some("IteratorAge"), f),
            "{f} has no IteratorAge alarm"
        );
    }
    let queues = of_type("AWS::SQS::Queue");
    assert!(queues.len() >= 6, "{queues:?}");
    for q in &queues {
        assert!(has("AWS/SQS", None, q), "{q} has no alarm on its own metrics");
    }
    assert!(has("AWS/SQS", Some("ApproximateAgeOfOldestMessage"), "SendQueue"));
    assert!(has("AWS/ApiGateway", Some("5xx"), "HttpApi") && has("AWS/ApiGateway", Some("Latency"), "HttpApi"));
    // The ingest group: every route that carries a click, a lead or a postback has per-route
    // metrics and is in both ingest alarms.
    let settings = &t["Resources"]["HttpApi"]["Properties"]["RouteSettings"];
    for f in ["ClickFunction", "LeadFunction", "PostbackFunction", "LinkFunction"] {
        for (method, path) in template_routes(f).unwrap() {
            if matches!(method.as_str(), "OPTIONS" | "HEAD") || path.starts_with("/c.") {
                continue;
            }
            let route = format!("{method} {path}");
            assert_eq!(
                settings[route.as_str()]["DetailedMetricsEnabled"].as_bool(),
                Some(true),
                "{route}: per-route metrics"
            );
            for metric in ["5xx", "Latency"] {
                assert!(
                    routes_alarmed.contains(&(metric.to_owned(), route.clone())),
                    "{route}: no {metric} alarm"
                );
            }
        }
    }
}

/// Whoever an alarm wakes finds its runbook: every alarm's description names an entry of
/// docs/operations.md (`docs/operations.md#<anchor>`) that exists, and every alarm the
/// template names one by one is named in that file (the per-function ones as `<Fn>…Alarm`).
#[test]
fn every_alarm_points_at_its_runbook_entry() {
    let runbook = include_str!("../../docs/operations.md");
    let t: serde_norway::Value = serde_norway::from_str(crm_local::TEMPLATE).unwrap();
    let mut checked = 0;
    for (id, r) in t["Resources"].as_mapping().unwrap() {
        let id = id.as_str().unwrap();
        // One alarm resource, or a `Fn::ForEach` fragment of them (`${Fn}ErrorsAlarm`).
        let alarms: Vec<(String, &serde_norway::Value)> = match id.strip_prefix("Fn::ForEach::") {
            Some(_) => r.as_sequence().unwrap()[2]
                .as_mapping()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.as_str().unwrap().replace("${Fn}", "<Fn>"), v))
                .collect(),
            None => vec![(id.to_owned(), r)],
        };
        for (name, alarm) in alarms {
            if alarm["Type"].as_str() != Some("AWS::CloudWatch::Alarm") {
                continue;
            }
            let description = &alarm["Properties"]["AlarmDescription"];
            let text = description
                .as_str()
                .or_else(|| match description {
                    serde_norway::Value::Tagged(t) => t.value.as_str(),
                    _ => None,
                })
                .unwrap_or_else(|| panic!("{name} has no description"));
            let entry = text
                .split("docs/operations.md#")
                .nth(1)
                .map(|rest| rest.trim_end_matches('.'))
                .unwrap_or_else(|| panic!("{name}'s description names no runbook entry: {text}"));
            assert!(
                runbook.contains(&format!("<a id=\"{entry}\"></a>")),
                "{name} points at docs/operations.md#{entry}, which does not exist"
            );
            assert!(
                runbook.contains(&format!("`{name}`")),
                "docs/operations.md does not name {name}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 23, "{checked} alarms");
}

/// Every `(Effect, Action, Resource)` statement under `v`, with the resource it belongs to.
fn statements<'a>(owner: &str, v: &'a serde_norway::Value, out: &mut Vec<(String, &'a serde_norway::Value)>) {
    match v {
        serde_norway::Value::Mapping(m) => {
            for (k, child) in m {
                if k.as_str() == Some("Statement") {
                    for s in child.as_sequence().into_iter().flatten() {
                        out.push((owner.to_owned(), s));
                    }
                } else {
                    statements(owner, child, out);
                }
            }
        }
        serde_norway::Value::Sequence(items) => items.iter().for_each(|i| statements(owner, i, out)),
        serde_norway::Value::Tagged(t) => statements(owner, &t.value, out),
        _ => {}
    }
}

fn strings(v: &serde_norway::Value) -> Vec<String> {
    match v {
        serde_norway::Value::String(s) => vec![s.clone()],
        serde_norway::Value::Sequence(items) => items.iter().flat_map(strings).collect(),
        _ => Vec::new(),
    }
}

/// Least privilege, checked: `Resource: "*"` only where AWS requires it (SMS to phone
/// numbers and SNS's opt-out list have no ARN), each such statement commented with why; no
/// wildcard action; every topic but the SES events topic's own policy denied to publish.
#[test]
fn the_template_grants_no_wildcard_it_does_not_explain() {
    let t: serde_norway::Value = serde_norway::from_str(crm_local::TEMPLATE).unwrap();
    let mut found = Vec::new();
    for (id, resource) in t["Resources"].as_mapping().unwrap() {
        statements(id.as_str().unwrap(), resource, &mut found);
    }
    assert!(found.len() > 30, "{} statements found", found.len());
    let mut wildcards: Vec<(String, Vec<String>)> = found
        .iter()
        .filter(|(_, s)| s["Effect"].as_str() == Some("Allow") && strings(&s["Resource"]).iter().any(|r| r == "*"))
        .map(|(id, s)| {
            let mut actions = strings(&s["Action"]);
            actions.sort();
            (id.clone(), actions)
        })
        .collect();
    wildcards.sort();
    assert_eq!(
        wildcards,
        vec![
            // A template's test send from the console.
            ("ConsoleFunction".to_owned(), vec!["sns:Publish".to_owned()]),
            (
                "SenderFunction".to_owned(),
                vec!["sns:CheckIfPhoneNumberIsOptedOut".to_owned(), "sns:Publish".to_owned()]
            ),
            ("TestSendFunction".to_owned(), vec!["sns:Publish".to_owned()]),
        ],
        "a new Resource \"*\": scope it, or add it here with the reason AWS requires it"
    );
    for (id, s) in &found {
        for action in strings(&s["Action"]) {
            assert!(!action.contains('*'), "{id} grants the wildcard action {action}");
        }
    }
    // Each wildcard is explained where it is written.
    let lines: Vec<&str> = crm_local::TEMPLATE.lines().collect();
    for (n, line) in lines.iter().enumerate() {
        if line.trim() == "Resource: \"*\"" {
            let explained = lines[n.saturating_sub(8)..n]
                .iter()
                .any(|l| l.trim_start().starts_with('#') && l.contains("AWS requires"));
            assert!(
                explained,
                "template.yaml line {}: Resource \"*\" without a comment saying why AWS requires it",
                n + 1
            );
        }
    }
    // Whoever may send SMS may publish to no topic (the SES events topic is SES's alone).
    for (id, _) in &wildcards {
        let denied = found.iter().any(|(owner, s)| {
            owner == id
                && s["Effect"].as_str() == Some("Deny")
                && strings(&s["Action"]).contains(&"sns:Publish".to_owned())
        });
        assert!(denied, "{id} may publish SMS but is not denied topics");
    }
}

/// No function's environment holds a secret: each that needs one names the deployment's
/// secret (`SECRETS_ID`) and may read that secret alone.
#[test]
fn no_secret_is_in_an_environment_variable() {
    let t: serde_norway::Value = serde_norway::from_str(crm_local::TEMPLATE).unwrap();
    let mut environments = vec![(
        "Globals".to_owned(),
        &t["Globals"]["Function"]["Environment"]["Variables"],
    )];
    for (id, r) in t["Resources"].as_mapping().unwrap() {
        environments.push((
            id.as_str().unwrap().to_owned(),
            &r["Properties"]["Environment"]["Variables"],
        ));
    }
    let mut readers = 0;
    for (id, vars) in environments {
        let Some(vars) = vars.as_mapping() else { continue };
        for name in vars.keys().filter_map(|k| k.as_str()) {
            assert!(
                !crm_app::secrets::SECRET_NAMES.contains(&name),
                "{id} has the secret {name} in its environment"
            );
        }
        if vars.keys().any(|k| k.as_str() == Some("SECRETS_ID")) {
            readers += 1;
            let mut found = Vec::new();
            statements(&id, &t["Resources"][id.as_str()], &mut found);
            let may_read = found
                .iter()
                .any(|(_, s)| strings(&s["Action"]).contains(&"secretsmanager:GetSecretValue".to_owned()));
            assert!(may_read, "{id} names SECRETS_ID but may not read it");
        }
    }
    assert!(readers >= 10, "{readers} functions read the secret");
}

/// The path a cold start takes, against the emulator's Secrets Manager: the secret written
/// as an operator would, read back, and configuration built from it.
#[tokio::test]
async fn configuration_reads_its_secrets_from_secrets_manager() {
    let shared = crm_tests::sdk_config(crm_tests::endpoint()).await;
    let client = aws_sdk_secretsmanager::Client::new(&shared);
    let id = format!("crm-test-{}", uuid::Uuid::new_v4().simple());
    let values = std::collections::BTreeMap::from([
        ("ADMIN_API_KEY", "admin-key-from-secrets-manager".to_owned()),
        (
            "UNSUBSCRIBE_SECRET",
            "an unsubscribe secret of 32 characters or more".to_owned(),
        ),
    ]);
    crm_app::secrets::Env::store(&client, &id, &values).await.unwrap();
    let env = crm_app::secrets::Env::fetch(&client, &id).await.unwrap();
    let config = crm_app::config::Config::from_lookup(|name| match name {
        "TABLE_NAME" => Some("t".into()),
        other => env.get(other),
    })
    .unwrap();
    assert!(config.admin_api_key.unwrap().matches("admin-key-from-secrets-manager"));
    assert!(config.unsubscribe.is_some());
    // A new version (a rotation) is what the next cold start reads.
    let rotated = std::collections::BTreeMap::from([("ADMIN_API_KEY", "admin-key-rotated-0123".to_owned())]);
    crm_app::secrets::Env::store(&client, &id, &rotated).await.unwrap();
    let env = crm_app::secrets::Env::fetch(&client, &id).await.unwrap();
    assert_eq!(env.get("ADMIN_API_KEY").as_deref(), Some("admin-key-rotated-0123"));
    let missing = crm_app::secrets::Env::fetch(&client, "crm-no-such-secret")
        .await
        .unwrap_err();
    assert_eq!(missing.var, "SECRETS_ID");
}
