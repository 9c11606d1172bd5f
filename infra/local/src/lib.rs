//! Local development support: the table bootstrap (derived from `template.yaml`, so the
//! local table cannot drift from the deployed one) and the composed app that routes each
//! path to its function's router, as API Gateway does.

use anyhow::{Context, anyhow};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType, StreamSpecification, StreamViewType, TimeToLiveSpecification,
};
use std::sync::Arc;

use axum::Router;
use axum::response::IntoResponse;
use crm_http::{AppState, HttpFunction};
use serde_norway::Value;
use tower::ServiceExt;

/// The SAM template, embedded at build time.
pub const TEMPLATE: &str = include_str!("../../../template.yaml");

/// Every HTTP function, as deployed. The dev server serves them, the bench measures them,
/// the tests check each against `template.yaml`.
pub const FUNCTIONS: [HttpFunction; 12] = [
    crm_click::FUNCTION,
    crm_console::FUNCTION,
    crm_link::FUNCTION,
    crm_lead::FUNCTION,
    crm_postback::FUNCTION,
    crm_health::FUNCTION,
    crm_admin::FUNCTION,
    crm_scheduler::FUNCTION,
    crm_test_send::FUNCTION,
    crm_unsubscribe::FUNCTION,
    crm_sms_inbound::FUNCTION,
    crm_import_clicks::FUNCTION,
];

/// The event functions (`template.yaml` logical id, binary), driven by `messaging`'s loops
/// (SES events and SMS replies come from SNS topics: locally only their sample events run
/// them).
pub const EVENT_FUNCTIONS: [(&str, &str); 9] = [
    ("JourneyFunction", "journey"),
    ("AttributionFunction", "attribution"),
    ("DailyReportFunction", "daily-report"),
    ("SchedulerFunction", "scheduler"),
    ("SenderFunction", "sender"),
    ("JourneyAdvanceFunction", "journey-advance"),
    ("SesEventsFunction", "ses-events"),
    ("SmsRepliesFunction", "sms-replies"),
    ("ImportClicksFunction", "import-clicks"),
];

/// The function deployed as `logical_id` in `template.yaml`.
pub fn function(logical_id: &str) -> &'static HttpFunction {
    FUNCTIONS
        .iter()
        .find(|f| f.logical_id == logical_id)
        .unwrap_or_else(|| panic!("no function {logical_id}"))
}

pub mod account;
pub mod messaging;
pub mod runtime;
pub mod stream;

/// Whether an API Gateway route template (`/api/customers/{id}`) matches a request path.
pub fn route_matches(template: &str, path: &str) -> bool {
    // `{name+}` (API Gateway's greedy parameter) takes the rest of the path, one segment or more.
    if let Some(prefix) = template.strip_suffix("{proxy+}") {
        return path.strip_prefix(prefix).is_some_and(|rest| !rest.is_empty());
    }
    let (t, p): (Vec<&str>, Vec<&str>) = (template.split('/').collect(), path.split('/').collect());
    t.len() == p.len()
        && t.iter()
            .zip(&p)
            .all(|(t, p)| (t.starts_with('{') && !p.is_empty()) || t == p)
}

/// What the functions' `main`s put in `AppState::extensions` at cold start: the messaging
/// dependencies (cron, test sends, unsubscribe), the dead-letter queues erasure clears
/// (admin), both for the console, and the click-log import (its manual trigger).
pub fn wire(
    state: &mut AppState,
    shared: &aws_config::SdkConfig,
    deps: Arc<crm_messaging::Deps>,
    parked: Vec<String>,
    import: Arc<crm_import_clicks::Deps>,
) {
    let parked = Arc::new(crm_providers::parked::ParkedQueues::new(shared, parked));
    state.extensions.insert(Arc::new(crm_console::Dependencies {
        parked: parked.clone(),
        messaging: deps.clone(),
    }));
    state.extensions.insert(deps);
    state.extensions.insert(import);
    state.extensions.insert(parked);
}

/// All endpoints on one server. Like API Gateway, a path is matched against each
/// function's route templates and handed, untouched, to that function's router.
pub fn app(state: AppState) -> Router {
    let table: Arc<Vec<(&'static str, Router)>> = Arc::new(
        FUNCTIONS
            .iter()
            .flat_map(|f| {
                let router = (f.router)(state.clone());
                f.routes.iter().map(move |route| (*route, router.clone()))
            })
            .collect(),
    );
    let dispatch = tower::service_fn(move |req: axum::extract::Request| {
        let target = table
            .iter()
            .find(|(t, _)| route_matches(t, req.uri().path()))
            .map(|(_, r)| r.clone());
        async move {
            match target {
                Some(router) => router.oneshot(req).await,
                None => Ok(crm_http::ApiError::NoRoute.into_response()),
            }
        }
    });
    Router::new().fallback_service(dispatch)
}

fn template() -> anyhow::Result<Value> {
    serde_norway::from_str(TEMPLATE).context("template.yaml is not valid YAML")
}

/// `(method, path)` of every HttpApi event of a function in `template.yaml`.
pub fn template_routes(logical_id: &str) -> anyhow::Result<Vec<(String, String)>> {
    let t = template()?;
    let events = t["Resources"][logical_id]["Properties"]["Events"]
        .as_mapping()
        .ok_or_else(|| anyhow!("{logical_id} has no Events in template.yaml"))?;
    Ok(events
        .values()
        .filter(|e| e["Type"].as_str() == Some("HttpApi"))
        .filter_map(|e| {
            Some((
                e["Properties"]["Method"].as_str()?.to_uppercase(),
                e["Properties"]["Path"].as_str()?.to_owned(),
            ))
        })
        .collect())
}

fn text<'a>(v: &'a Value, what: &str) -> anyhow::Result<&'a str> {
    v.as_str().ok_or_else(|| anyhow!("template.yaml Table: {what} missing"))
}

fn key_schema(v: &Value) -> anyhow::Result<Vec<KeySchemaElement>> {
    v.as_sequence()
        .ok_or_else(|| anyhow!("KeySchema must be a list"))?
        .iter()
        .map(|k| {
            Ok(KeySchemaElement::builder()
                .attribute_name(text(&k["AttributeName"], "AttributeName")?)
                .key_type(KeyType::from(text(&k["KeyType"], "KeyType")?))
                .build()?)
        })
        .collect()
}

/// Creates `table` with exactly the key schema, GSIs and TTL of the `Table` resource in
/// `template.yaml`; an existing table is left as it is.
pub async fn ensure_table(client: &Client, table: &str) -> anyhow::Result<()> {
    let t = template()?;
    let props = &t["Resources"]["Table"]["Properties"];
    let attributes = props["AttributeDefinitions"]
        .as_sequence()
        .ok_or_else(|| anyhow!("AttributeDefinitions must be a list"))?
        .iter()
        .map(|a| {
            Ok(AttributeDefinition::builder()
                .attribute_name(text(&a["AttributeName"], "AttributeName")?)
                .attribute_type(ScalarAttributeType::from(text(&a["AttributeType"], "AttributeType")?))
                .build()?)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let gsis = props["GlobalSecondaryIndexes"]
        .as_sequence()
        .map(|list| list.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|g| {
            Ok(GlobalSecondaryIndex::builder()
                .index_name(text(&g["IndexName"], "IndexName")?)
                .set_key_schema(Some(key_schema(&g["KeySchema"])?))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::from(text(
                            &g["Projection"]["ProjectionType"],
                            "ProjectionType",
                        )?))
                        .set_non_key_attributes(
                            g["Projection"]["NonKeyAttributes"]
                                .as_sequence()
                                .map(|attrs| attrs.iter().filter_map(|a| a.as_str().map(str::to_owned)).collect()),
                        )
                        .build(),
                )
                .build()?)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let created = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .set_attribute_definitions(Some(attributes))
        .set_key_schema(Some(key_schema(&props["KeySchema"])?))
        .set_global_secondary_indexes((!gsis.is_empty()).then_some(gsis))
        .set_stream_specification(props["StreamSpecification"]["StreamViewType"].as_str().map(|view| {
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::from(view))
                .build()
                .expect("stream_enabled is set")
        }))
        .send()
        .await;
    match created {
        Ok(_) => {}
        Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_in_use_exception()) => return Ok(()),
        Err(e) => return Err(anyhow!(aws_sdk_dynamodb::error::DisplayErrorContext(e)).context("CreateTable")),
    }
    if let Some(ttl) = props["TimeToLiveSpecification"]["AttributeName"].as_str() {
        client
            .update_time_to_live()
            .table_name(table)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name(ttl)
                    .enabled(true)
                    .build()?,
            )
            .send()
            .await
            .map_err(|e| anyhow!(aws_sdk_dynamodb::error::DisplayErrorContext(e)).context("UpdateTimeToLive"))?;
    }
    Ok(())
}

/// `GET /_emulator/stats` of our emulator at `endpoint` (`residentBytes`,
/// `trackedInstances`, `streamRecords`, `shardIterators`); `None` for any other endpoint.
pub fn emulator_stats(endpoint: &str) -> Option<serde_json::Value> {
    serde_json::from_str(&emulator_get(endpoint, "/_emulator/stats")?).ok()
}

/// The body of a plain `GET` of the emulator (its own pages: stats, moto's `data.json`).
pub fn emulator_get(endpoint: &str, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let host = endpoint.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = std::net::TcpStream::connect(host).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    (head.split(' ').nth(1) == Some("200")).then(|| body.to_owned())
}
