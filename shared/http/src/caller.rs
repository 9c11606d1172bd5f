//! The one extractor every ingest function uses: who is calling (the source of the key the
//! request presents, checked against its rules), from which address, and what they sent.
//! The order is that of the answers: no key or an unknown key (401), a key used where it may
//! not be (403), the body (413, 415, 400), its signature (401).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequest, Request};
use axum::http::{HeaderMap, Method, header};
use crm_app::config::IngestAuth;
use crm_app::ingest::Sender;
use crm_core::input::Fields;
use crm_core::records::Provenance;
use crm_core::source::{Call, Route, Source, SourceKind, verify_signature};

use crate::input::{body_bytes, fields_of};
use crate::{ApiError, AppState};

/// An ingest request: its fields and its sender.
pub struct IngestRequest {
    pub fields: Fields,
    /// The source of the key presented; `None` only when `INGEST_AUTH=off` and no key came.
    pub source: Option<Arc<Source>>,
    pub sender: Sender,
}

impl IngestRequest {
    /// Whether answers must reveal nothing about customers (a public `landing` key).
    pub fn is_public(&self) -> bool {
        self.source
            .as_ref()
            .is_some_and(|s| s.rules.kind == SourceKind::Landing)
    }
}

/// The client address as API Gateway reports it (Lambda), or the socket's peer (the local
/// server). Never a header: `X-Forwarded-For` is whatever the client wrote.
pub fn client_ip(extensions: &http::Extensions) -> Option<IpAddr> {
    if let Some(lambda_http::request::RequestContext::ApiGatewayV2(ctx)) =
        extensions.get::<lambda_http::request::RequestContext>()
    {
        return ctx.http.source_ip.as_deref().and_then(|ip| ip.parse().ok());
    }
    extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip())
}

fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query?).ok()?;
    pairs.into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

fn query_keys(query: Option<&str>) -> Vec<String> {
    let pairs: Vec<(String, String)> = query
        .and_then(|q| serde_urlencoded::from_str(q).ok())
        .unwrap_or_default();
    pairs.into_iter().map(|(k, _)| k).collect()
}

/// The key a request presents: `X-Api-Key`, else `?token=` (trackers and operators can
/// only put it in the URL).
fn presented_key(headers: &HeaderMap, query: Option<&str>) -> Option<String> {
    headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_owned())
        .or_else(|| query_param(query, "token"))
        .filter(|k| !k.is_empty())
}

/// `test=true` (query or body) marks a request as test traffic.
fn is_test(fields: &Fields) -> bool {
    fields
        .pick(&["test"])
        .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "true" | "1" | "yes"))
}

fn forbidden(refusal: crm_core::source::Refusal) -> ApiError {
    ApiError::Forbidden {
        message: refusal.to_string(),
        field: None,
    }
}

/// The source whose key the request presents, if the source may make this call (route,
/// network, origin); `None` only when `INGEST_AUTH=off` and no key came.
pub async fn admitted_source(
    state: &AppState,
    parts: &axum::http::request::Parts,
    route: Route,
) -> Result<Option<Arc<Source>>, ApiError> {
    let now = time::OffsetDateTime::now_utc();
    let source = match presented_key(&parts.headers, parts.uri.query()) {
        Some(key) => state
            .sources
            .source(&state.store, &key, now)
            .await?
            .ok_or(ApiError::Unauthorized("unknown or revoked key"))?,
        None if state.config.ingest_auth == IngestAuth::Off => return Ok(None),
        None => {
            return Err(ApiError::Unauthorized(
                "an ingest key is required: ?token= or X-Api-Key",
            ));
        }
    };
    let call = Call {
        route,
        is_get: parts.method == Method::GET,
        ip: client_ip(&parts.extensions),
        origin: parts.headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()),
    };
    source.rules.admit(&call).map_err(forbidden)?;
    Ok(Some(source))
}

impl FromRequest<AppState> for IngestRequest {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let (parts, body) = req.into_parts();
        let route = *parts
            .extensions
            .get::<Route>()
            .expect("ingest_router puts the route in the request");
        let ip = client_ip(&parts.extensions);
        let now = time::OffsetDateTime::now_utc();
        let source = admitted_source(state, &parts, route).await?;
        let bytes = body_bytes(&parts, body).await?;
        let signature = match source.as_deref() {
            Some(s) if s.rules.require_signature => {
                // The signature covers the body: fields in the URL would be unsigned.
                if query_keys(parts.uri.query()).iter().any(|k| k != "token") {
                    return Err(ApiError::bad_request(
                        "unsigned_field",
                        "a signed request carries its fields in the signed body: only token may be in the URL",
                    ));
                }
                let secret = crm_app::sources::signing_secret_of(state.config.source_secret.as_ref(), s)
                    .map_err(|e| ApiError::Internal(e.to_string()))?
                    .ok_or_else(|| ApiError::Internal("a signing source without a signing salt".into()))?;
                let header = parts.headers.get("x-signature").and_then(|v| v.to_str().ok());
                let signed = verify_signature(&secret, header, &bytes, now.unix_timestamp())
                    .map_err(|e| ApiError::Unauthorized(bad_signature_message(e)))?;
                Some(signed)
            }
            _ => None,
        };
        let fields = fields_of(&parts, &bytes)?;
        let test = is_test(&fields) || source.as_ref().is_some_and(|s| s.rules.test);
        let sender = Sender {
            provenance: Provenance {
                source_id: source.as_ref().map(|s| s.source_id.clone()),
                client_ip: ip.map(|ip| ip.to_string()),
                test,
            },
            claims_as: source
                .as_ref()
                .filter(|s| s.rules.brand.is_none())
                .map(|s| s.source_id.clone()),
            signature,
            kind: source.as_ref().map(|s| s.rules.kind),
        };
        Ok(Self { fields, source, sender })
    }
}

fn bad_signature_message(e: crm_core::source::BadSignature) -> &'static str {
    use crm_core::source::BadSignature::*;
    match e {
        Missing => "X-Signature is required for this source",
        Malformed => "X-Signature must look like t=<unix seconds>,v1=<hex HMAC-SHA256>",
        Stale => "X-Signature's t is more than 300 seconds from now",
        Mismatch => "X-Signature does not match the body",
        Replayed => "this signature was already used: sign each attempt with a new t",
    }
}
