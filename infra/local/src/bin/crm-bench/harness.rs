//! The app under measurement: a fresh table and the composed router over it (the same as
//! `make dev`'s), and requests through it.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use crm_app::config::Config;
use crm_http::AppState;
use crm_store::Store;
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

pub const ADMIN_KEY: &str = "test-admin-key-0123456789";

/// A request as the scenarios build them: method, URI, JSON body.
pub type Request = (&'static str, String, Option<Value>);

/// A new table and the composed app over it.
pub async fn fresh() -> anyhow::Result<(Router, Store)> {
    let table = format!("bench-{}", uuid::Uuid::new_v4());
    fresh_on(Store::connect(table).await).await
}

/// The composed app over `store`'s (new) table. Ingest requests are sent without keys, as
/// `make dev` takes them (a warm key costs no DynamoDB request; the flood section uses keys).
pub async fn fresh_on(store: Store) -> anyhow::Result<(Router, Store)> {
    fresh_app(store, "off").await
}

/// The composed app over `store`'s (new) table, its SDK calls metered.
pub async fn fresh_app(store: Store, ingest_auth: &'static str) -> anyhow::Result<(Router, Store)> {
    let store = store.with_interceptor(crate::meter::meter());
    let table = store.table().to_owned();
    crm_local::ensure_table(store.client(), &table).await?;
    let config = Config::from_lookup(|k| match k {
        "TABLE_NAME" => Some(table.clone()),
        "ADMIN_API_KEY" => Some(ADMIN_KEY.into()),
        "INGEST_AUTH" => Some(ingest_auth.into()),
        _ => crate::messaging::setting(k),
    })?;
    let mut state = AppState::new(store.clone(), config);
    let shared = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let messaging = crm_messaging::MessagingConfig::from_lookup(crate::messaging::setting)?;
    let deps = Arc::new(crm_messaging::Deps::new(&shared, store.clone(), messaging));
    let import = crm_import_clicks::Deps::new(store.clone(), &state.config, |_| None)?;
    crm_local::wire(&mut state, &shared, deps, Vec::new(), Arc::new(import));
    Ok((crm_local::app(state), store))
}

/// Drops a finished scenario's table.
pub async fn done(store: &Store) -> anyhow::Result<()> {
    store.client().delete_table().table_name(store.table()).send().await?;
    Ok(())
}

/// A request to the app as the admin.
pub fn request(method: &str, uri: &str, body: Option<Value>) -> anyhow::Result<http::Request<Body>> {
    let mut req = http::Request::builder()
        .method(method)
        .uri(uri)
        .header("authorization", format!("Bearer {ADMIN_KEY}"));
    if body.is_some() {
        req = req.header("content-type", "application/json");
    }
    Ok(req.body(body.map(|b| Body::from(b.to_string())).unwrap_or_default())?)
}

/// `req` through the app: the answer's body, or an error unless 2xx. (Collecting the body
/// is what Lambda's adapter does with every answer; parsing it is the caller's.)
pub async fn send(app: &Router, req: http::Request<Body>) -> anyhow::Result<axum::body::Bytes> {
    let (method, uri) = (req.method().clone(), req.uri().clone());
    let res = app.clone().oneshot(req).await?;
    let status = res.status();
    let bytes = res.into_body().collect().await?.to_bytes();
    anyhow::ensure!(
        status.is_success(),
        "{method} {uri} answered {status}: {}",
        String::from_utf8_lossy(&bytes)
    );
    Ok(bytes)
}

/// One request through the app as the admin; its JSON answer, or an error unless 2xx.
pub async fn call(app: &Router, method: &str, uri: &str, body: Option<Value>) -> anyhow::Result<Value> {
    let bytes = send(app, request(method, uri, body)?).await?;
    Ok(serde_json::from_slice(&bytes)?)
}

/// Unmeasured preparation: `count` requests built by `make`.
pub async fn setup(app: &Router, count: usize, make: &dyn Fn(usize) -> Request) -> anyhow::Result<()> {
    for i in 0..count {
        let (method, uri, body) = make(i);
        call(app, method, &uri, body).await?;
    }
    Ok(())
}

/// The customer id the app answers for a click id.
pub async fn customer_of(app: &Router, click_id: &str) -> anyhow::Result<String> {
    let found = call(app, "GET", &format!("/api/customers?clickId={click_id}"), None).await?;
    Ok(found["customerId"].as_str().unwrap_or_default().to_owned())
}
