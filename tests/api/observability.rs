//! Operator observability: the CloudWatch metrics (Embedded Metric Format) functions write.

use crm_tests::{spawn, unique};
use http::StatusCode;
use serde_json::{Value, json};

/// Captured metric documents with `name` whose dimensions include `dims`.
fn points(name: &str, dims: &[(&str, &str)]) -> Vec<Value> {
    crm_app::metrics::captured()
        .into_iter()
        .filter(|doc| doc.get(name).is_some() && dims.iter().all(|(k, v)| doc[*k] == *v))
        .collect()
}

#[tokio::test]
async fn functions_publish_requests_conversions_revenue_and_attribution_as_metrics() {
    crm_app::metrics::capture();
    let app = spawn().await;
    let brand = unique("metricbet").to_lowercase();
    let email = format!("{}@example.com", unique("metric"));
    let click = unique("mc");
    app.post_json(
        "/api/ingest/click",
        json!({"clickId": click, "brand": brand, "email": email}),
    )
    .await;
    let (status, _) = app
        .post_json(
            "/api/postback",
            json!({"event": "deposit", "clickId": click, "operator": brand, "amount": "12.5", "currency": "EUR"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    app.drain().await;

    let conversions = points("Conversions", &[("Brand", &brand)]);
    assert_eq!(conversions.len(), 1, "{conversions:?}");
    assert_eq!(conversions[0]["Conversions"], 1.0);
    let revenue = points("Revenue", &[("Brand", &brand), ("Currency", "EUR")]);
    assert_eq!(revenue[0]["Revenue"], 12.5);
    let spec = &revenue[0]["_aws"]["CloudWatchMetrics"][0];
    assert_eq!(spec["Namespace"], "CRM");
    assert_eq!(spec["Dimensions"], json!([["Brand", "Currency"], ["Brand"], []]));

    let requests = points("Requests", &[("Endpoint", "POST /api/postback"), ("Status", "200")]);
    assert!(!requests.is_empty());
    assert!(requests[0]["Latency"].as_f64().unwrap() > 0.0);
    assert!(!points("Attributable", &[]).is_empty());
    // An address in a path stays out of the metrics: they name the route, not the path.
    let (status, _) = app.admin(&format!("/api/customers/{email}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        !points(
            "Requests",
            &[("Endpoint", "GET /api/customers/{id}"), ("Status", "404")]
        )
        .is_empty()
    );
    let all = serde_json::to_string(&crm_app::metrics::captured()).unwrap();
    assert!(!all.contains(&email), "no personal data in metrics");
}

/// Metric names of namespace CRM that `template.yaml` (dashboard and alarms) reads.
fn template_metric_names() -> std::collections::BTreeSet<String> {
    let t = crm_local::TEMPLATE;
    let mut names = std::collections::BTreeSet::new();
    let patterns = [
        ("[\"CRM\", \"", "\""),
        ("MetricName=\\\"", "\\\""),
        ("Namespace: CRM, MetricName: ", "}"),
        ("\\\"MessagesSent\\\" OR \\\"", "\\\""),
    ];
    for (start, end) in patterns {
        for piece in t.split(start).skip(1) {
            if let Some(name) = piece.split(end).next() {
                names.insert(name.trim().to_owned());
            }
        }
    }
    for line in t.lines().filter(|l| l.trim_start().starts_with("MetricName:")) {
        let name = line.trim_start().trim_start_matches("MetricName:").trim();
        names.insert(name.to_owned());
    }
    // The AWS namespaces' own metrics are not ours.
    for aws in [
        "ApproximateNumberOfMessagesVisible",
        "ApproximateAgeOfOldestMessage",
        "Duration",
        "IteratorAge",
        "Errors",
        "Throttles",
        "5xx",
    ] {
        names.remove(aws);
    }
    names
}

#[tokio::test]
async fn every_metric_the_dashboard_and_alarms_read_is_one_the_functions_write() {
    crm_app::metrics::capture();
    let app = spawn().await;
    // A lead whose welcome email is scheduled, queued and sent; a click; a deposit.
    let email = format!("{}@example.com", unique("dash"));
    let click = unique("dc");
    app.post_json("/api/ingest/click", json!({"clickId": click, "brand": "dashbet"}))
        .await;
    app.post_json(
        "/api/ingest/lead",
        json!({"clickId": click, "email": email, "firstName": "Ana", "brand": "dashbet"}),
    )
    .await;
    app.post_json(
        "/api/postback",
        json!({"event": "deposit", "clickId": click, "operator": "dashbet", "amount": 3}),
    )
    .await;
    app.run_due(time::OffsetDateTime::now_utc() + time::Duration::minutes(1))
        .await;
    // An audit line that cannot be written (a table that is not there) is counted.
    let nowhere = crm_store::Store::connect(format!("missing-{}", unique("t"))).await;
    let line = crm_core::access::AuditEntry {
        id: unique("a"),
        at: time::OffsetDateTime::now_utc(),
        actor: crm_core::access::Actor::break_glass(),
        action: "test".into(),
        target: "nothing".into(),
        ip: None,
        status: 200,
    };
    crm_http::record_audit(&nowhere, &line).await;
    let written: std::collections::BTreeSet<String> = crm_app::metrics::captured()
        .iter()
        .flat_map(|doc| {
            doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter_map(|m| m["Name"].as_str().map(str::to_owned))
        .collect();
    let read = template_metric_names();
    assert!(read.len() >= 10, "the template reads our metrics: {read:?}");
    // Failures and held messages this flow does not provoke: the sender writes them by the
    // same code path (a limit reached: the messaging tests hold messages by velocity), and
    // the compliance tests see ses-events write the bounces and complaints. (This list
    // used to pass without `NewAddressesHeld` only when another test held a message in the
    // same process meanwhile.)
    let on_failure_only = [
        "NewAddressesHeld",
        "MessagesFailed",
        "MessagesDeferred",
        "MessagesSkipped",
        "EmailBounces",
        "EmailComplaints",
        "EmailDeliveries",
        // The import tick's silence watch (the sources tests run it).
        "SilentOperatorSources",
    ];
    let missing: Vec<&String> = read
        .iter()
        .filter(|n| !written.contains(*n) && !on_failure_only.contains(&n.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "read by template.yaml, never written: {missing:?} (written: {written:?})"
    );
}
