//! Reading JSON request bodies field by field, so each bad field is a 400 naming it.

use axum::body::Bytes;
use crm_core::values::Invalid;
use crm_http::ApiError;
use serde_json::{Map, Value};

use crate::field_error;

pub fn object(bytes: &Bytes) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice(bytes) {
        Ok(Value::Object(o)) => Ok(o),
        _ => Err(ApiError::bad_request("invalid_json", "the body must be a JSON object")),
    }
}

/// A string field; absent and `null` are `None`.
pub fn text(body: &Map<String, Value>, field: &'static str) -> Result<Option<String>, ApiError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(field_error(
            field,
            Invalid::new("invalid_type", format!("{field} must be a string")),
        )),
    }
}

/// A string field that must be there and not blank.
pub fn required(body: &Map<String, Value>, field: &'static str) -> Result<String, ApiError> {
    text(body, field)?
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| field_error(field, Invalid::new("missing", format!("{field} is required"))))
}

/// An optional string field checked by `parse`.
pub fn parsed<T>(
    body: &Map<String, Value>,
    field: &'static str,
    parse: impl FnOnce(&str) -> Result<T, Invalid>,
) -> Result<Option<T>, ApiError> {
    text(body, field)?
        .map(|raw| parse(&raw).map_err(|e| field_error(field, e)))
        .transpose()
}
