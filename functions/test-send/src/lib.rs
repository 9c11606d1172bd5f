//! Test sends (seed §5.3, §5.4; admin bearer): `POST /api/test/send-email {to, subject, html}`
//! and `POST /api/test/send-sms {to, message}` send one message through the real adapters,
//! whatever `ENABLE_REAL_SENDING` says, and answer with the provider's message id or its
//! error (502).

use std::sync::Arc;

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router, middleware};
use crm_core::input::Fields;
use crm_core::send::SmsProvider;
use crm_core::values::{Email, PhoneE164};
use crm_http::{ApiError, AppState, HttpFunction, JsonResult, RequestFields};
use crm_messaging::Deps;
use crm_providers::ProviderError;
use crm_providers::ses::OutboundEmail;
use crm_providers::sns::OutboundSms;
use serde_json::json;

pub const EMAIL_PATH: &str = "/api/test/send-email";
pub const SMS_PATH: &str = "/api/test/send-sms";

pub const FUNCTION: HttpFunction = HttpFunction {
    logical_id: "TestSendFunction",
    binary: "test-send",
    routes: &[EMAIL_PATH, SMS_PATH],
    router,
};

#[derive(Clone)]
struct TestState {
    app: AppState,
    deps: Arc<Deps>,
}

pub fn router(state: AppState) -> Router {
    let deps: Arc<Deps> = state.extension();
    let routes = Router::new()
        .route(EMAIL_PATH, post(send_email))
        .route(SMS_PATH, post(send_sms))
        .route_layer(middleware::from_fn_with_state(state.clone(), crm_http::require_admin))
        .with_state(TestState { app: state, deps });
    crm_http::finish(routes)
}

fn field<'a>(fields: &'a Fields, name: &'static str) -> Result<&'a str, ApiError> {
    fields
        .pick(&[name])
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ApiError::bad_request_field(name, "missing", format!("{name} is required")))
}

fn answer(result: Result<crm_providers::Receipt, ProviderError>) -> JsonResult {
    match result {
        Ok(receipt) => Ok(Json(json!({
            "status": "sent",
            "provider": receipt.provider,
            "messageId": receipt.message_id,
        }))),
        Err(e) => {
            tracing::warn!(error = %e, "test send failed");
            Err(ApiError::Provider(e.to_string()))
        }
    }
}

async fn send_email(State(s): State<TestState>, RequestFields(fields): RequestFields) -> JsonResult {
    let to = Email::parse(field(&fields, "to")?).map_err(|e| ApiError::invalid("to", e))?;
    let subject = crm_core::values::clean_text(field(&fields, "subject")?);
    let html = field(&fields, "html")?.to_owned();
    let settings = &s.deps.config.defaults;
    let email = OutboundEmail {
        from: settings.from_email.clone(),
        from_name: settings.from_name.clone(),
        to,
        subject,
        text: crm_render::html_to_text(&html),
        html,
        message_id: format!("test_{}", uuid::Uuid::now_v7().simple()),
        headers: Vec::new(),
        tags: Vec::new(),
    };
    answer(s.deps.ses.send(&email).await)
}

async fn send_sms(State(s): State<TestState>, RequestFields(fields): RequestFields) -> JsonResult {
    let region = s.app.config.defaults.phone_region;
    let to = PhoneE164::parse(field(&fields, "to")?, region).map_err(|e| ApiError::invalid("to", e))?;
    let text = field(&fields, "message")?.to_owned();
    let settings = &s.deps.config.defaults;
    let mut sms = OutboundSms {
        to,
        text,
        sender_id: s.deps.config.sns_sender_id.clone(),
        message_id: format!("test_{}", uuid::Uuid::now_v7().simple()),
        transactional: true,
    };
    let result = match settings.sms_provider {
        SmsProvider::Sns => s.deps.sns.send(&sms).await,
        SmsProvider::Laaffic => {
            sms.sender_id = settings.laaffic_sender_id.clone();
            let laaffic = s
                .deps
                .laaffic
                .as_ref()
                .expect("configuration requires Laaffic settings");
            laaffic
                .send(&sms, time::OffsetDateTime::now_utc().unix_timestamp())
                .await
        }
    };
    answer(result)
}
