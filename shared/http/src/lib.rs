//! HTTP plumbing shared by every HTTP function's router: state, errors, extractors,
//! authentication, the ingest handler body, finishing a router, and the Lambda entry.

mod caller;
mod error;
mod input;
pub mod lambda;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Json, routing::MethodRouter};
use crm_app::config::{Config, ConfigError, CorsOrigins};
use crm_app::metrics::{Metrics, Unit};
use crm_app::sources::KeyCache;
use crm_core::access::{Actor, AuditEntry};
use crm_core::plan::Ingest;
use crm_core::source::Route;
use crm_store::Store;
use serde_json::{Value, json};
use tower_http::cors::{AllowOrigin, CorsLayer};

pub use caller::{IngestRequest, admitted_source, client_ip};
/// What an `HttpFunction` declares it cannot serve without.
pub use crm_app::config::Needs;
pub use error::{ApiError, RETRY_AFTER_SECS};
pub use input::{ApiJson, MAX_BODY_BYTES, RequestFields};

/// What every HTTP function's router needs. `extensions` carries what only some functions
/// use (the messaging dependencies of the cron and test-send functions), so this crate, and
/// the ingest functions, never link them.
#[derive(Clone, Debug)]
pub struct AppState {
    pub store: Store,
    pub config: Arc<Config>,
    /// What this instance knows of ingest keys (shared by every router of the local server,
    /// so the admin API's revocations reach its ingest endpoints at once).
    pub sources: KeyCache,
    pub extensions: http::Extensions,
}

impl AppState {
    pub fn new(store: Store, config: Config) -> Self {
        Self {
            store,
            sources: KeyCache::new(config.source_cache),
            config: Arc::new(config),
            extensions: http::Extensions::new(),
        }
    }

    /// A dependency a function's `main` (or the local server) put in `extensions`; its
    /// absence is a wiring bug, caught when the router is built.
    pub fn extension<T: Clone + Send + Sync + 'static>(&self) -> T {
        self.extensions
            .get::<T>()
            .cloned()
            .unwrap_or_else(|| panic!("AppState lacks {}", std::any::type_name::<T>()))
    }

    /// Cold start: configuration from the environment, then the AWS client.
    pub async fn from_env() -> Result<Self, ConfigError> {
        let config = Config::from_env().await?;
        let store = config.store().await;
        Ok(Self::new(store, config))
    }
}

/// `bytes` gzipped (at the best level: assets are compressed once per instance).
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(bytes).expect("gzip into memory");
    gz.finish().expect("gzip into memory")
}

/// A file served from the binary (the landing-page tag, the console's script): gzipped to
/// a browser that accepts it, cached as `cache_control` says.
pub struct Asset<'a> {
    pub body: &'static [u8],
    pub gzipped: &'a [u8],
    pub content_type: &'static str,
    pub cache_control: &'static str,
}

impl Asset<'_> {
    pub fn serve(&self, headers: &http::HeaderMap) -> axum::response::Response {
        use axum::response::IntoResponse;
        use http::{HeaderValue, header};
        let gzip = headers
            .get(header::ACCEPT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').any(|e| e.trim().starts_with("gzip")));
        let mut response = if gzip {
            let mut r = self.gzipped.to_vec().into_response();
            r.headers_mut()
                .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            r
        } else {
            self.body.into_response()
        };
        let h = response.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(self.content_type));
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static(self.cache_control));
        h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
        h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
        response
    }
}

/// Where the API is reached from the internet (tracked links, unsubscribe pages):
/// `PUBLIC_BASE_URL`, else the request's own host.
pub fn public_base(state: &AppState, headers: &http::HeaderMap) -> String {
    if let Some(base) = &state.config.public_base_url {
        return base.clone();
    }
    let host = headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let local = host.starts_with("localhost") || host.starts_with("127.0.0.1");
    let scheme = headers
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
        .unwrap_or(if local { "http" } else { "https" });
    format!("{scheme}://{host}")
}

/// An HTTP function as deployed: its resource in `template.yaml`, its binary, the API
/// Gateway routes it serves, its router. The dev server, the bench and the tests read these.
pub struct HttpFunction {
    pub logical_id: &'static str,
    pub binary: &'static str,
    /// Settings it cannot serve without: checked at cold start.
    pub needs: &'static [crm_app::config::Needs],
    pub routes: &'static [&'static str],
    pub router: fn(AppState) -> Router,
}

/// A list answer: `{"items": [...]}`.
#[derive(serde::Serialize)]
pub struct Items<T> {
    pub items: Vec<T>,
}

/// A page of a list: `{"items": [...], "nextCursor": "..." | null}`.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// `Query<T>` whose rejection is our JSON 400 instead of axum's plain text.
pub struct ApiQuery<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> axum::extract::FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Self(q.0))
            .map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))
    }
}

/// `Path<T>` whose rejection is our JSON error instead of axum's plain text.
pub struct ApiPath<T>(pub T);

impl<T: serde::de::DeserializeOwned + Send, S: Send + Sync> axum::extract::FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Self(p.0))
            .map_err(|_| ApiError::NotFound)
    }
}

/// Completes a function's router: JSON 404 (`no_route`, distinct from a missing resource's
/// `not_found`) and 405, access log. Every function calls it, so Lambda, the local server
/// and tests see the same behaviour.
pub fn finish(router: Router) -> Router {
    logged(
        router
            .fallback(|| async { ApiError::NoRoute })
            .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed }),
    )
}

/// The access log and `Cache-Control: no-store` unless a handler said otherwise: for a
/// router with fallbacks of its own (the console's pages).
pub fn logged(router: Router) -> Router {
    router
        .layer(middleware::map_response(no_store))
        .layer(middleware::from_fn(access_log))
}

/// What a careful page sends: no script, no framing, nothing loaded from elsewhere, forms
/// only back here, no referrer (the URL holds a token), never cached.
pub async fn page_headers(mut response: axum::response::Response) -> axum::response::Response {
    let headers = response.headers_mut();
    for (name, value) in [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
    ] {
        headers.insert(name, header::HeaderValue::from_static(value));
    }
    response
}

/// A manual trigger's check: with `secret` set, the request must carry
/// `Authorization: Bearer <secret>`; without, it is open (the seed's cron curl).
pub fn require_bearer(headers: &http::HeaderMap, secret: Option<&crm_app::config::Secret>) -> Result<(), ApiError> {
    let Some(secret) = secret else { return Ok(()) };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")));
    if given.is_some_and(|g| secret.matches(g.trim())) {
        Ok(())
    } else {
        Err(ApiError::BAD_CREDENTIALS)
    }
}

/// Answers carry personal data (profiles, feeds, exports) or say something about a
/// request: no cache, proxy or browser keeps them, unless a route says otherwise.
async fn no_store(mut response: axum::response::Response) -> axum::response::Response {
    response
        .headers_mut()
        .entry(header::CACHE_CONTROL)
        .or_insert(header::HeaderValue::from_static("no-store"));
    response
}

/// An ingest function's router: its one path, as `route` for the sources' rules (which
/// `IngestRequest` checks), finished.
pub fn ingest_router(state: AppState, path: &str, route: Route, handlers: MethodRouter<AppState>) -> Router {
    let routes = Router::new()
        .route(path, handlers)
        .route_layer(axum::Extension(route))
        .with_state(state);
    finish(routes)
}

/// CORS for endpoints that browsers call (a landing page's lead form and clicks): the
/// origins of `CORS_ALLOWED_ORIGINS`; a `landing` key is further held to its own origins.
pub fn browser_cors(origins: &CorsOrigins, methods: &[axum::http::Method]) -> CorsLayer {
    let allow = match origins {
        CorsOrigins::Any => AllowOrigin::any(),
        // Configuration checked each origin at cold start.
        CorsOrigins::List(list) => AllowOrigin::list(list.iter().filter_map(|o| o.parse().ok())),
    };
    let mut methods = methods.to_vec();
    methods.push(axum::http::Method::OPTIONS);
    CorsLayer::new()
        .allow_origin(allow)
        .allow_methods(methods)
        .allow_headers([header::CONTENT_TYPE, axum::http::HeaderName::from_static("x-api-key")])
        .max_age(std::time::Duration::from_secs(86_400))
}

/// The body of every ingest handler: parse (with the source's brand as the default, a
/// bound source refusing any other), record, log, answer. The answer is sent only once the
/// write has committed (or was recognised as a repeat of one that had); to a public key it
/// says only that the request was accepted.
pub async fn ingest<C: Ingest>(
    state: &AppState,
    req: &IngestRequest,
    id_field: &'static str,
) -> Result<(C, Value), ApiError> {
    let own_brand = req.source.as_ref().and_then(|s| s.rules.brand.clone());
    let defaults = match &own_brand {
        Some(brand) => &crm_core::input::Defaults {
            brand: Some(brand.clone()),
            ..state.config.defaults.clone()
        },
        None => &state.config.defaults,
    };
    let cmd = C::parse(&req.fields, defaults)?;
    let cmd = if req.sender.provenance.test {
        cmd.into_test()?
    } else {
        cmd
    };
    if let Some(source) = &req.source {
        source
            .rules
            .brand_for(cmd.brand())
            .map_err(|refusal| ApiError::Forbidden {
                message: refusal.to_string(),
                field: Some("operatorId"),
            })?;
    }
    let now = time::OffsetDateTime::now_utc();
    cmd.check_at(now)?;
    let outcome = crm_app::ingest::run(&state.store, &cmd, &req.sender, now, state.config.dedupe_window).await?;
    tracing::info!(
        kind = C::KIND,
        customer_id = %outcome.customer,
        record_id = %outcome.record_id,
        duplicate = outcome.duplicate,
        created = outcome.customer_created,
        merged = outcome.merged.len(),
        source_id = req.sender.provenance.source_id.as_deref(),
        test = req.sender.provenance.test,
        "ingested"
    );
    Metrics::new()
        .dimension("Kind", C::KIND)
        .count("Ingested", 1)
        .count("Duplicates", usize::from(outcome.duplicate))
        .count("Merges", outcome.merged.len())
        .emit();
    if req.is_public() {
        let body = json!({"status": "accepted", "warnings": cmd.warnings()});
        return Ok((cmd, body));
    }
    let mut body = json!({
        "status": if outcome.duplicate { "duplicate" } else { "accepted" },
        "customerId": outcome.customer,
        id_field: outcome.record_id,
        "duplicate": outcome.duplicate,
        "customerCreated": outcome.customer_created,
        "warnings": cmd.warnings(),
    });
    if !outcome.merged.is_empty() {
        body["mergedCustomerIds"] = json!(outcome.merged);
    }
    Ok((cmd, body))
}

/// One line per request: method, path (never the query: it may hold tokens or emails; an
/// email or phone number in the path is redacted), status, latency.
async fn access_log(req: Request, next: Next) -> Response {
    let (method, started) = (req.method().clone(), Instant::now());
    let path = crm_core::values::redact_personal(req.uri().path());
    // The route template (`/api/customers/{id}`): no personal data, few distinct values.
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or("unmatched", |m| m.as_str())
        .to_owned();
    let response = next.run(req).await;
    let status = response.status().as_u16();
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    if status >= 500 {
        tracing::warn!(%method, %path, %route, status, ms, "request");
    } else {
        tracing::info!(%method, %path, %route, status, ms, "request");
    }
    Metrics::new()
        .dimension("Endpoint", format!("{method} {route}"))
        .dimension("Status", status.to_string())
        .count("Requests", 1)
        .count("ServerErrors", usize::from(status >= 500))
        .value("Latency", ms, Unit::Milliseconds)
        .emit();
    response
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token.trim())
}

/// Admin authentication: `Authorization: Bearer <key>`, a user's key (`POST
/// /api/users/{id}/keys`, acting with the user's role) or the deployment's `ADMIN_API_KEY`
/// (the break-glass owner). What follows from who it is: an analyst only reads, and reads
/// personal data masked (an export with `includePii` is refused); every change, and every
/// read of a customer or an export with personal data, is in the audit log with the
/// authenticated actor. Handlers find the [`Actor`] in the request's extensions.
pub async fn require_admin(State(state): State<AppState>, mut req: Request, next: Next) -> Result<Response, ApiError> {
    let given = bearer(req.headers())
        .map(str::to_owned)
        .ok_or(ApiError::BAD_CREDENTIALS)?;
    let actor = match state.config.admin_api_key.as_ref() {
        Some(key) if key.matches(&given) => Actor::break_glass(),
        _ => crm_app::access::actor_for_key(&state.store, &given)
            .await?
            .ok_or(ApiError::BAD_CREDENTIALS)?,
    };
    let reading = matches!(*req.method(), axum::http::Method::GET | axum::http::Method::HEAD);
    let pii_asked = req
        .uri()
        .query()
        .and_then(|q| serde_urlencoded::from_str::<Vec<(String, String)>>(q).ok())
        .is_some_and(|pairs| pairs.iter().any(|(k, v)| k == "includePii" && v != "false"));
    let sees_personal = actor.role.sees_personal_data();
    if !actor.role.may_change() && !reading {
        return Err(ApiError::Forbidden {
            message: format!("a {} reads only", actor.role),
            field: None,
        });
    }
    if !sees_personal && pii_asked {
        return Err(ApiError::Forbidden {
            message: format!("a {}'s exports are masked: leave out includePii", actor.role),
            field: Some("includePii"),
        });
    }
    // An address may be in the path (a suppression's): the audit line keeps ids, not people.
    let path = crm_core::values::redact_personal(req.uri().path());
    let audited = !reading || (sees_personal && (path.starts_with("/api/customers") || pii_asked));
    let action = format!(
        "{} {}",
        req.method(),
        req.extensions()
            .get::<axum::extract::MatchedPath>()
            .map_or(path.as_str(), |m| m.as_str())
    );
    let ip = client_ip(req.extensions()).map(|ip| ip.to_string());
    req.extensions_mut().insert(actor.clone());
    let response = next.run(req).await;
    let response = if sees_personal {
        response
    } else {
        masked(response).await
    };
    let status = response.status();
    if audited && (status.is_success() || status.is_redirection()) {
        let entry = AuditEntry {
            id: uuid::Uuid::now_v7().simple().to_string(),
            at: time::OffsetDateTime::now_utc(),
            actor,
            action,
            target: path,
            ip,
            status: status.as_u16(),
        };
        record_audit(&state.store, &entry).await;
    }
    Ok(response)
}

/// Appends a line to the audit log (the admin API's requests, the console's pages). A line
/// that cannot be written is logged and counted (`AuditLinesLost`, alarmed), never dropped
/// silently; the answer already given stands.
pub async fn record_audit(store: &crm_store::Store, entry: &AuditEntry) {
    if let Err(e) = store.append_audit(entry).await {
        tracing::error!(error = %e, action = %entry.action, target = %entry.target, "audit line lost");
        Metrics::new().count("AuditLinesLost", 1).emit();
    }
}

/// A JSON answer with its personal data masked (`crm_core::personal::mask_personal`).
async fn masked(response: Response) -> Response {
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return ApiError::Internal("reading an answer to mask it".into()).into_response();
    };
    let Ok(mut value) = serde_json::from_slice::<Value>(&bytes) else {
        return ApiError::Internal("an answer to mask is not JSON".into()).into_response();
    };
    crm_core::personal::mask_personal(&mut value);
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, axum::body::Body::from(value.to_string()))
}

/// Shorthand for handlers answering JSON.
pub type JsonResult = Result<Json<Value>, ApiError>;
