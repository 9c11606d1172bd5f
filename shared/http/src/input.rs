//! Reads an ingest request into `Fields`: the query string, then the body (JSON object or
//! form-encoded; body values win). Size is checked before reading; the `token` parameter is
//! removed so it is never stored or logged.

use axum::http::header;
use crm_core::input::Fields;

use crate::ApiError;

/// Largest request body accepted by any endpoint.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

fn parse_pairs(text: &str, into: &mut Fields) -> Result<(), ApiError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(text)
        .map_err(|_| ApiError::bad_request("invalid_body", "form or query string is not valid URL encoding"))?;
    for (k, v) in pairs {
        into.insert(k, v);
    }
    Ok(())
}

/// Reads a JSON object's top-level values as text. Numbers keep the exact digits that were
/// sent (`100.10`, `123456789.12345678`): they never pass through a float.
fn parse_json(bytes: &[u8], into: &mut Fields) -> Result<(), ApiError> {
    let invalid = |e: serde_json::Error| ApiError::bad_request("invalid_json", format!("body is not valid JSON: {e}"));
    let value: &serde_json::value::RawValue = serde_json::from_slice(bytes).map_err(invalid)?;
    let map: std::collections::BTreeMap<String, &serde_json::value::RawValue> = serde_json::from_str(value.get())
        .map_err(|_| ApiError::bad_request("invalid_json", "body must be a JSON object"))?;
    for (k, v) in map {
        let raw = v.get();
        match raw.as_bytes().first() {
            Some(b'"') => into.insert(k, serde_json::from_str::<String>(raw).map_err(invalid)?),
            _ if raw == "null" => continue,
            // Never text: the reader answers 400 if a field it reads holds one.
            Some(b'{' | b'[') => into.insert_structured(k),
            // Numbers and booleans: their JSON text.
            _ => into.insert(k, raw),
        }
    }
    Ok(())
}

/// The query and body fields of a request authenticated otherwise (test-send, behind the
/// admin key), read as ingest requests are.
pub struct RequestFields(pub Fields);

impl<S: Send + Sync> axum::extract::FromRequest<S> for RequestFields {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, _state: &S) -> Result<Self, ApiError> {
        let (parts, body) = req.into_parts();
        let bytes = body_bytes(&parts, body).await?;
        Ok(Self(fields_of(&parts, &bytes)?))
    }
}

/// A JSON object body read once into the request type `T`: serde checks each field's JSON
/// type (a wrong one is a 400 `invalid_type` naming it, `rates.EUR` or `routes[1]` deep
/// down), then handlers turn `T` into the domain's values with `TryFrom`, each refusal a 400
/// naming its field. Unknown fields are ignored; `null` is absent.
pub struct ApiJson<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> axum::extract::FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, _state: &S) -> Result<Self, ApiError> {
        let (parts, body) = req.into_parts();
        let bytes = body_within(&parts, body, MAX_JSON_BODY_BYTES).await?;
        let Ok(object @ serde_json::Value::Object(_)) = serde_json::from_slice(&bytes) else {
            return Err(ApiError::bad_request("invalid_json", "the body must be a JSON object"));
        };
        serde_path_to_error::deserialize(object)
            .map(Self)
            .map_err(|e| ApiError::WrongType {
                field: e.path().to_string(),
                message: e.inner().to_string(),
            })
    }
}

/// Largest admin API body (a template's 64 KiB body, escaped, with its other fields).
pub const MAX_JSON_BODY_BYTES: usize = 256 * 1024;

/// Reads the body (64 KiB at most, checked before reading) as raw bytes.
pub(crate) async fn body_bytes(
    parts: &axum::http::request::Parts,
    body: axum::body::Body,
) -> Result<axum::body::Bytes, ApiError> {
    body_within(parts, body, MAX_BODY_BYTES).await
}

/// Reads the body, `limit` bytes at most (checked before reading when declared).
async fn body_within(
    parts: &axum::http::request::Parts,
    body: axum::body::Body,
    limit: usize,
) -> Result<axum::body::Bytes, ApiError> {
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| ApiError::PayloadTooLarge { limit })
}

/// The query string's fields, then the body's (JSON or form; body values win); `token` is
/// removed so it is never stored or logged.
pub(crate) fn fields_of(parts: &axum::http::request::Parts, bytes: &[u8]) -> Result<Fields, ApiError> {
    let mut fields = Fields::new();
    if let Some(query) = parts.uri.query() {
        parse_pairs(query, &mut fields)?;
    }
    if !bytes.iter().all(u8::is_ascii_whitespace) {
        let content_type = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase());
        let text =
            || std::str::from_utf8(bytes).map_err(|_| ApiError::bad_request("invalid_body", "body is not UTF-8"));
        match content_type.as_deref() {
            Some("application/json") => parse_json(bytes, &mut fields)?,
            Some(ct) if ct.ends_with("+json") => parse_json(bytes, &mut fields)?,
            Some("application/x-www-form-urlencoded") => parse_pairs(text()?, &mut fields)?,
            // Some senders omit or mislabel the type (navigator.sendBeacon sends
            // text/plain, some webhook tools send none): sniff JSON or form encoding.
            // Every other type is a 415.
            None | Some("text/plain") => {
                let t = text()?;
                if t.trim_start().starts_with('{') {
                    parse_json(bytes, &mut fields)?
                } else {
                    parse_pairs(t, &mut fields)?
                }
            }
            Some(_) => return Err(ApiError::UnsupportedMediaType),
        }
    }
    fields.remove("token");
    Ok(fields)
}
