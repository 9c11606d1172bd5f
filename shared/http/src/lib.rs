//! HTTP plumbing shared by every function's router.

mod error;
mod input;

use std::time::Instant;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::{self, Next};
use axum::response::Response;

use crate::AppState;
use crate::config::Secret;
pub use error::{ApiError, RETRY_AFTER_SECS};
pub use input::{IngestFields, MAX_BODY_BYTES};

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

/// Completes a function's router: JSON 404/405, access log. Every function calls it, so
/// Lambda, the local server and tests see the same behaviour.
pub fn finish(router: Router) -> Router {
    router
        .fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(middleware::from_fn(access_log))
}

/// An ingest function's router: its one path, behind the ingest token, finished.
pub fn ingest_router(state: AppState, path: &str, handlers: axum::routing::MethodRouter<AppState>) -> Router {
    let routes = Router::new()
        .route(path, handlers)
        .route_layer(middleware::from_fn_with_state(state.clone(), require_ingest_token))
        .with_state(state);
    finish(routes)
}

/// One line per request: method, path (never the query: it may hold tokens or emails),
/// status, latency.
async fn access_log(req: Request, next: Next) -> Response {
    let (method, path, started) = (req.method().clone(), req.uri().path().to_owned(), Instant::now());
    let response = next.run(req).await;
    let status = response.status().as_u16();
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    if status >= 500 {
        tracing::warn!(%method, %path, status, ms, "request");
    } else {
        tracing::info!(%method, %path, status, ms, "request");
    }
    response
}

fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query?).ok()?;
    pairs.into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

/// Ingest authentication: when `INGEST_TOKEN` is set, the request must carry it as
/// `X-Api-Key` or `?token=` (trackers and operators can only put it in the URL).
pub async fn require_ingest_token(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    if let Some(expected) = &state.config.ingest_token {
        let header = req
            .headers()
            .get("x-api-key")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let given = header.or_else(|| query_param(req.uri().query(), "token"));
        if !given.is_some_and(|g| expected.matches(&g)) {
            return Err(ApiError::Unauthorized);
        }
    }
    Ok(next.run(req).await)
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token.trim())
}

/// Admin authentication: `Authorization: Bearer <ADMIN_API_KEY>`. Without a configured key
/// every request is refused.
pub async fn require_admin(State(state): State<AppState>, req: Request, next: Next) -> Result<Response, ApiError> {
    let key: Option<&Secret> = state.config.admin_api_key.as_ref();
    match (key, bearer(req.headers())) {
        (Some(key), Some(given)) if key.matches(given) => Ok(next.run(req).await),
        _ => Err(ApiError::Unauthorized),
    }
}

/// The body every ingest endpoint answers with once its write has committed (or was
/// recognised as a repeat of one that had).
pub fn ingest_response(
    outcome: &crate::ingest::Outcome,
    id_field: &'static str,
    warnings: &[crm_core::input::Warning],
) -> axum::Json<serde_json::Value> {
    let mut body = serde_json::json!({
        "status": if outcome.duplicate { "duplicate" } else { "accepted" },
        "customerId": outcome.customer,
        id_field: outcome.record_id,
        "duplicate": outcome.duplicate,
        "customerCreated": outcome.customer_created,
        "warnings": warnings,
    });
    if !outcome.merged.is_empty() {
        body["mergedCustomerIds"] = serde_json::json!(outcome.merged);
    }
    axum::Json(body)
}
