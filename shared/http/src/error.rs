//! The one error type of the HTTP layer and its stable JSON body:
//! `{"error": {"code": "...", "message": "...", "field": "..."}}`.
//! Internal details are logged, never sent.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use crm_core::input::FieldError;
use serde_json::json;

use crm_app::compliance::{EraseError, SuppressionError};
use crm_app::ingest::IngestError;
use crm_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("invalid field {}: {}", .0.field, .0.message)]
    Field(FieldError),
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    /// 400 `invalid_type`: a JSON body's field (its path, `rates.EUR`) has the wrong JSON type.
    #[error("{field}: {message}")]
    WrongType { field: String, message: String },
    /// 401: no credentials, or ones we do not accept; the message says which, never echoes them.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// 403: good credentials used where they may not be (route, brand, network, origin).
    #[error("{message}")]
    Forbidden {
        message: String,
        field: Option<&'static str>,
    },
    #[error("no such resource")]
    NotFound,
    /// No route matches the path: distinct from a route whose resource does not exist.
    #[error("no such route")]
    NoRoute,
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The resource exists, or its unique name is taken: 409 with the message.
    #[error("{0}")]
    Conflict(String),
    #[error("request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("unsupported content type")]
    UnsupportedMediaType,
    /// A dependency failed: the caller should retry (503 with Retry-After).
    #[error("service temporarily unavailable: {0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
    /// A journey definition refused: `step` names the step (its id, or `steps[i]`).
    #[error("{step}: {message}")]
    Step {
        step: String,
        code: &'static str,
        message: String,
    },
    /// A provider (SES, SNS, Laaffic) refused or failed a test send: 502 with its message.
    #[error("{0}")]
    Provider(String),
}

/// Seconds a caller should wait before retrying a 503.
pub const RETRY_AFTER_SECS: u32 = 2;

impl ApiError {
    /// The 401 of the admin and cron APIs.
    pub const BAD_CREDENTIALS: Self = Self::Unauthorized("missing or invalid credentials");

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::BadRequest {
            code,
            message: message.into(),
        }
    }

    /// 400 naming `field`, from a value that failed to parse.
    pub fn invalid(field: &'static str, invalid: crm_core::values::Invalid) -> Self {
        Self::Field(FieldError {
            field,
            code: invalid.code,
            message: invalid.message,
        })
    }

    pub fn bad_request_field(field: &'static str, code: &'static str, message: impl Into<String>) -> Self {
        Self::Field(FieldError {
            field,
            code,
            message: message.into(),
        })
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::Field(_) | Self::BadRequest { .. } | Self::WrongType { .. } | Self::Step { .. } => {
                StatusCode::BAD_REQUEST
            }
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden { .. } => StatusCode::FORBIDDEN,
            Self::NotFound | Self::NoRoute => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Provider(_) => StatusCode::BAD_GATEWAY,
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(m) => Self::Unavailable(m),
            StoreError::Rejected(m) => Self::Internal(m),
            e @ StoreError::Corrupt { .. } => Self::Internal(e.to_string()),
        }
    }
}

impl From<EraseError> for ApiError {
    fn from(e: EraseError) -> Self {
        match e {
            EraseError::Store(s) => s.into(),
            EraseError::Parked(m) => Self::Unavailable(m),
        }
    }
}

impl From<SuppressionError> for ApiError {
    fn from(e: SuppressionError) -> Self {
        match e {
            SuppressionError::Invalid { field, invalid } => Self::invalid(field, invalid),
            SuppressionError::Erased => Self::bad_request(
                "erased",
                "this address belongs to an erased person and stays suppressed as erased",
            ),
            SuppressionError::NotFound => Self::NotFound,
            SuppressionError::Store(e) => e.into(),
        }
    }
}

impl From<IngestError> for ApiError {
    fn from(e: IngestError) -> Self {
        match e {
            IngestError::Store(s) => s.into(),
            IngestError::Contended => Self::Unavailable(e.to_string()),
            IngestError::Replayed => {
                Self::Unauthorized("this signature was already used: sign each attempt with a new t")
            }
        }
    }
}

impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> Self {
        Self::Field(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = match &self {
            Self::Field(f) => json!({"error": {"code": f.code, "message": f.message, "field": f.field}}),
            Self::BadRequest { code, message } => json!({"error": {"code": code, "message": message}}),
            Self::WrongType { field, message } => {
                json!({"error": {"code": "invalid_type", "message": format!("{field}: {message}"), "field": field}})
            }
            Self::Step { step, code, message } => {
                json!({"error": {"code": code, "message": format!("step {step}: {message}"), "field": "steps", "step": step}})
            }
            Self::Unavailable(detail) => {
                tracing::error!(error = %detail, "dependency unavailable");
                json!({"error": {"code": "unavailable", "message": "a dependency is unavailable; the request may or may not have been recorded, and retrying it is safe"}})
            }
            Self::Internal(detail) => {
                tracing::error!(error = %detail, "internal error");
                json!({"error": {"code": "internal", "message": "internal error"}})
            }
            Self::Provider(message) => json!({"error": {"code": "provider_error", "message": message}}),
            Self::Conflict(message) => json!({"error": {"code": "conflict", "message": message}}),
            Self::Forbidden {
                message,
                field: Some(f),
            } => {
                json!({"error": {"code": "forbidden", "message": message, "field": f}})
            }
            Self::Forbidden { message, field: None } => json!({"error": {"code": "forbidden", "message": message}}),
            other => {
                let code = match other {
                    Self::Unauthorized(_) => "unauthorized",
                    Self::NotFound => "not_found",
                    Self::NoRoute => "no_route",
                    Self::MethodNotAllowed => "method_not_allowed",
                    Self::PayloadTooLarge { .. } => "payload_too_large",
                    _ => "unsupported_media_type",
                };
                json!({"error": {"code": code, "message": other.to_string()}})
            }
        };
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
        }
        response
    }
}
