//! Shared helpers for the end-to-end tests: a local AWS emulator (started once per test
//! binary unless `AWS_ENDPOINT_URL` names one), a fresh table per test created from
//! `template.yaml`, and request helpers over the same composed app `make dev` serves.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::config::{Credentials, Region};
use axum::Router;
use axum::body::Body;
use http::{HeaderMap, Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

use std::sync::Arc;

use crm_app::config::Config;
pub use crm_http::AppState;
use crm_local::stream::StreamReader;
use crm_messaging::scheduler::TickReport;
use crm_messaging::{Deps, MessagingConfig};
use crm_store::Store;

pub mod browser;
pub mod laaffic;
pub mod mailbox;
pub mod redtrack;

pub const ADMIN_KEY: &str = "test-admin-key-0123456789";

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The emulator endpoint: `AWS_ENDPOINT_URL` if set, else a moto server started for this
/// test process. The emulator is never waited on: it lives as long as this process and
/// exits by itself when the process does (`--parent-pid`).
#[allow(clippy::zombie_processes)]
pub fn endpoint() -> &'static str {
    static ENDPOINT: OnceLock<String> = OnceLock::new();
    ENDPOINT.get_or_init(|| {
        if let Ok(url) = std::env::var("AWS_ENDPOINT_URL") {
            return url;
        }
        let python = workspace().join(".venv/bin/python");
        assert!(
            python.exists(),
            "no local emulator: run `make test` (it installs moto into .venv) or set AWS_ENDPOINT_URL"
        );
        let port = free_port();
        Command::new(python)
            .arg(workspace().join("infra/emulator.py"))
            .args([
                "--port",
                &port.to_string(),
                "--parent-pid",
                &std::process::id().to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the emulator");
        wait_for_port(port, "the emulator", Duration::from_secs(30));
        format!("http://127.0.0.1:{port}")
    })
}

/// A port on 127.0.0.1 nothing listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until a server started by the test (`what`) accepts connections on `port`.
pub fn wait_for_port(port: u16, what: &str, within: Duration) {
    let deadline = Instant::now() + within;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{what} did not start on port {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub async fn sdk_config(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "tests"))
        .load()
        .await
}

pub struct TestApp {
    pub state: AppState,
    pub app: Router,
    /// The messaging functions' dependencies (the same the cron and test-send routers use).
    pub messaging: Arc<Deps>,
    /// The attribution function's dependencies.
    pub attribution: Arc<crm_attribution::Deps>,
    /// One stream reader per stream function (journey, attribution), as Lambda has one
    /// event source mapping each.
    streams: tokio::sync::Mutex<Option<(StreamReader, StreamReader)>>,
}

/// The sender identity every test app sends from.
pub const FROM_EMAIL: &str = "crm@example.com";
pub const UNSUBSCRIBE_SECRET: &str = "test-unsubscribe-secret-0123456789abcdef";
pub const SOURCE_SECRET: &str = "test-source-secret-0123456789abcdefghij";
/// Unsubscribe links in test mails start here; tests call the path on the in-process app.
pub const PUBLIC_BASE_URL: &str = "https://crm.test";

/// `prefix` with a random suffix: ids and addresses no other test uses.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}

/// Seven random digits, never ending in 99 (the emulator's SNS reports such numbers as
/// opted out).
pub fn rand_digits() -> u32 {
    let n = (uuid::Uuid::new_v4().as_u128() % 9_000_000) as u32 + 1_000_000;
    if n % 100 == 99 { n - 1 } else { n }
}

/// A random Peruvian mobile number the emulator's SNS does not report as opted out.
pub fn phone() -> String {
    format!("+5198{:07}", rand_digits())
}

/// A fresh table and app with the default test configuration.
pub async fn spawn() -> TestApp {
    spawn_with(&[]).await
}

/// Like `spawn`, with extra configuration variables. Each app has its own table (with its
/// stream), its own send queue and dead-letter queue (`PARKED_QUEUE_URLS`); real sending is on (it reaches only the emulator).
pub async fn spawn_with(vars: &[(&str, &str)]) -> TestApp {
    let table = format!("test-{}", uuid::Uuid::new_v4());
    let shared = sdk_config(endpoint()).await;
    let store = Store::from_sdk_config(&shared, table.clone());
    crm_local::ensure_table(store.client(), &table)
        .await
        .expect("create the test table");
    let queue = crm_local::messaging::ensure_queue(&aws_sdk_sqs::Client::new(&shared), &format!("{table}-send"))
        .await
        .expect("create the test queue");
    crm_local::messaging::ensure_sender_identity(&aws_sdk_sesv2::Client::new(&shared), FROM_EMAIL)
        .await
        .expect("verify the sender identity");
    // A dead-letter queue like the SES events' one: erasure clears it.
    let parked = crm_local::messaging::ensure_queue(&aws_sdk_sqs::Client::new(&shared), &format!("{table}-parked"))
        .await
        .expect("create the test parked queue");
    let mut all = vec![
        ("SEND_QUEUE_URL", queue.as_str()),
        ("PARKED_QUEUE_URLS", parked.as_str()),
    ];
    all.extend_from_slice(vars);
    TestApp::new(store, &all).await
}

impl TestApp {
    pub async fn new(store: Store, vars: &[(&str, &str)]) -> Self {
        let table = store.table().to_owned();
        let lookup = |name: &str| -> Option<String> {
            if let Some((_, v)) = vars.iter().find(|(k, _)| *k == name) {
                return Some(v.to_string());
            }
            match name {
                "TABLE_NAME" => Some(table.clone()),
                "ADMIN_API_KEY" => Some(ADMIN_KEY.into()),
                "DEFAULT_FROM_EMAIL" => Some(FROM_EMAIL.into()),
                "ENABLE_REAL_SENDING" => Some("true".into()),
                "UNSUBSCRIBE_SECRET" => Some(UNSUBSCRIBE_SECRET.into()),
                // Most tests send the seed's requests without a key, as make dev accepts them;
                // the source tests turn authentication on.
                "INGEST_AUTH" => Some("off".into()),
                "SOURCE_SECRET" => Some(SOURCE_SECRET.into()),
                "PUBLIC_BASE_URL" => Some(PUBLIC_BASE_URL.into()),
                // Tests run at any time of day: quiet hours only where a test asks for them.
                "QUIET_HOURS_SMS" => Some("off".into()),
                _ => None,
            }
        };
        let messaging = MessagingConfig::from_lookup(lookup).expect("test messaging configuration");
        let config = Config::from_lookup(lookup).expect("test configuration");
        let store = store.with_retention(config.retention);
        let shared = sdk_config(endpoint()).await;
        let deps = Arc::new(Deps::new(&shared, store.clone(), messaging));
        let parked = lookup("PARKED_QUEUE_URLS").into_iter().collect();
        let import = crm_import_clicks::Deps::new(store.clone(), &config, lookup).expect("test import configuration");
        let mut state = AppState::new(store, config);
        crm_local::wire(&mut state, &shared, deps.clone(), parked, Arc::new(import));
        let app = crm_local::app(state.clone());
        let attribution = Arc::new(crm_attribution::Deps {
            store: state.store.clone(),
            reporting: state.config.reporting.clone(),
        });
        Self {
            state,
            app,
            messaging: deps,
            attribution,
            streams: tokio::sync::Mutex::new(None),
        }
    }

    /// What happens to messages due at `at`: the journey function schedules from the stream,
    /// a scheduler tick at `at` queues what is due, the sender sends it.
    pub async fn run_due(&self, at: time::OffsetDateTime) {
        self.drain().await;
        self.tick_at(at).await;
        self.drain().await;
    }

    /// Runs the event functions until nothing is left to do: the journey and attribution
    /// functions over the table's stream, the sender over the queue (what is visible now).
    /// Returns how many stream records (as the journey function saw them) and queue
    /// messages were handled.
    pub async fn drain(&self) -> (usize, usize) {
        let mut readers = self.streams.lock().await;
        let (journey, attribution) = self.readers(&mut readers).await;
        let sqs = aws_sdk_sqs::Client::new(&sdk_config(endpoint()).await);
        let url = self.messaging.config.queue_url.clone().expect("a test queue");
        let (mut records, mut jobs) = (0, 0);
        for _ in 0..50 {
            let r = journey
                .pump(async |e| crm_journey::handle(&self.messaging, e).await)
                .await
                .expect("journey over the stream");
            let a = attribution
                .pump(async |e| crm_attribution::handle(&self.attribution, e).await)
                .await
                .expect("attribution over the stream");
            let j = crm_local::messaging::pump_queue(&self.messaging, &sqs, &url, 0)
                .await
                .expect("sender over the queue");
            records += r;
            jobs += j;
            if r == 0 && j == 0 && a == 0 {
                return (records, jobs);
            }
        }
        panic!("the event functions did not settle");
    }

    /// The journey and attribution functions' readers of the table's stream.
    async fn readers<'a>(
        &self,
        readers: &'a mut Option<(StreamReader, StreamReader)>,
    ) -> &'a mut (StreamReader, StreamReader) {
        if readers.is_none() {
            let shared = sdk_config(endpoint()).await;
            let (client, table) = (self.state.store.client(), self.state.store.table());
            // Each filtered as its event source mapping filters in AWS.
            let open = async |function: &str| {
                StreamReader::open(&shared, client, table)
                    .await
                    .and_then(|r| r.filtered_as(function))
                    .expect("open the table's stream")
            };
            *readers = Some((open("JourneyFunction").await, open("AttributionFunction").await));
        }
        readers.as_mut().expect("opened")
    }

    /// The attribution function's reader moves past everything written so far, unread: what
    /// remains of stream records that failed until the stream (24 hours) dropped them.
    pub async fn lose_attribution_records(&self) -> usize {
        let mut readers = self.streams.lock().await;
        let (_, attribution) = self.readers(&mut readers).await;
        let mut lost = 0;
        loop {
            let n = attribution
                .pump(async |_| aws_lambda_events::streams::DynamoDbEventResponse::default())
                .await
                .expect("read the stream");
            if n == 0 {
                return lost;
            }
            lost += n;
        }
    }

    /// A new reader of the table's stream from its start, as a new event source mapping
    /// (or Lambda redelivering everything) would read it.
    pub async fn fresh_stream(&self) -> StreamReader {
        StreamReader::open(
            &sdk_config(endpoint()).await,
            self.state.store.client(),
            self.state.store.table(),
        )
        .await
        .expect("open the table's stream")
    }

    /// One scheduler tick at `now` (as EventBridge Scheduler would invoke it).
    pub async fn tick_at(&self, now: time::OffsetDateTime) -> TickReport {
        let tick = crm_scheduler::Tick {
            scheduled_time: Some(crm_core::values::format_ts(now)),
        };
        crm_scheduler::handle(&self.messaging, tick)
            .await
            .expect("scheduler tick")
    }

    /// One journey-advance tick at `now`.
    pub async fn advance_at(&self, now: time::OffsetDateTime) -> crm_messaging::advance::AdvanceReport {
        let tick = crm_messaging::Tick {
            scheduled_time: Some(crm_core::values::format_ts(now)),
        };
        crm_journey_advance::handle(&self.messaging, tick)
            .await
            .expect("journey-advance tick")
    }

    /// The customer's messages through the admin API, newest first.
    pub async fn messages(&self, customer: &str) -> Vec<Value> {
        let (status, body) = self.admin(&format!("/api/customers/{customer}/messages")).await;
        assert_eq!(status, StatusCode::OK, "messages of {customer}: {body}");
        body["items"].as_array().expect("items").clone()
    }

    /// Serves the app on a port of this machine, as `make dev` does (the client address is
    /// the connection's): its base URL.
    pub async fn serve(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let app = self
            .app
            .clone()
            .into_make_service_with_connect_info::<std::net::SocketAddr>();
        tokio::spawn(async move { axum::serve(listener, app).await });
        base
    }

    pub async fn admin_send(&self, method: Method, path: &str, body: Value) -> (StatusCode, Value) {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::AUTHORIZATION, format!("Bearer {ADMIN_KEY}"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        let (status, _, body) = self.send(req).await;
        (status, body)
    }

    pub async fn send(&self, req: Request<Body>) -> (StatusCode, HeaderMap, Value) {
        send(&self.app, req).await
    }

    pub async fn post_json(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let req = Request::post(path)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()));
        let (status, _, body) = self.send(req.unwrap()).await;
        (status, body)
    }

    pub async fn post_form(&self, path: &str, form: &str) -> (StatusCode, Value) {
        let req = Request::post(path)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(form.to_owned()));
        let (status, _, body) = self.send(req.unwrap()).await;
        (status, body)
    }

    pub async fn get(&self, path_and_query: &str) -> (StatusCode, Value) {
        let (status, _, body) = self
            .send(Request::get(path_and_query).body(Body::empty()).unwrap())
            .await;
        (status, body)
    }

    pub async fn admin(&self, path_and_query: &str) -> (StatusCode, Value) {
        let req = Request::builder()
            .method(Method::GET)
            .uri(path_and_query)
            .header(header::AUTHORIZATION, format!("Bearer {ADMIN_KEY}"))
            .body(Body::empty())
            .unwrap();
        let (status, _, body) = self.send(req).await;
        (status, body)
    }

    /// The profile of a customer through the admin API (asserting it exists).
    pub async fn customer(&self, id: &str) -> Value {
        let (status, body) = self.admin(&format!("/api/customers/{id}")).await;
        assert_eq!(status, StatusCode::OK, "customer {id}: {body}");
        body
    }

    /// DynamoDB requests sent since the last call.
    pub fn take_calls(&self) -> std::collections::BTreeMap<String, u64> {
        let calls = self.state.store.calls().snapshot();
        self.state.store.calls().reset();
        calls
    }
}

pub async fn send(router: &Router, req: Request<Body>) -> (StatusCode, HeaderMap, Value) {
    let response = router.clone().oneshot(req).await.expect("router is infallible");
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.expect("read body").to_bytes();
    let json = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into()))
    };
    (parts.status, parts.headers, json)
}

/// Identifiers of a profile as sorted `TYPE:value` strings.
pub fn identifiers(profile: &Value) -> Vec<String> {
    let mut ids: Vec<String> = profile["identifiers"]
        .as_array()
        .expect("identifiers")
        .iter()
        .map(|i| format!("{}:{}", i["type"].as_str().unwrap(), i["value"].as_str().unwrap()))
        .collect();
    ids.sort();
    ids
}

/// The journey of a brand in a profile.
pub fn journey<'a>(profile: &'a Value, brand: &str) -> &'a Value {
    profile["journeys"]
        .as_array()
        .expect("journeys")
        .iter()
        .find(|j| j["brand"] == brand)
        .unwrap_or_else(|| panic!("no {brand} journey in {profile}"))
}
