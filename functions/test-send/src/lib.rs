//! Test sends (seed §5.3, §5.4; admin bearer): `POST /api/test/send-email {to, subject, html}`
//! and `POST /api/test/send-sms {to, message}` send one message through the real adapters and
//! answer with the provider's message id or its error (502). They obey what every other
//! send obeys: a suppressed address is refused (400, `suppressed`), an SMS to a line or
//! country the brand never texts too (`number_type`, `country_not_allowed`), and with
//! `ENABLE_REAL_SENDING` off nothing leaves: the answer is a dry run saying what would have
//! gone. `brand` (optional) names whose rules and sender apply: without it, an entry for
//! any brand refuses and the deployment's sender sends. The rules are
//! `crm_messaging::test_send`'s, which the console's "Send a test" uses too.

use std::sync::Arc;

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router, middleware};
use crm_core::definition::Channel;
use crm_core::input::Fields;
use crm_core::values::{Brand, Email, PhoneE164};
use crm_http::{ApiError, AppState, HttpFunction, JsonResult, RequestFields};
use crm_messaging::Deps;
use crm_messaging::test_send::{self, TestSendError, TestSent};
use serde_json::json;

pub const EMAIL_PATH: &str = "/api/test/send-email";
pub const SMS_PATH: &str = "/api/test/send-sms";

pub const FUNCTION: HttpFunction = HttpFunction {
    logical_id: "TestSendFunction",
    binary: "test-send",
    needs: &[crm_app::config::Needs::UnsubscribeSecret],
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

fn brand(fields: &Fields) -> Result<Option<Brand>, ApiError> {
    fields
        .pick(&["brand"])
        .map(|b| Brand::parse(b).map_err(|e| ApiError::invalid("brand", e)))
        .transpose()
}

/// The use case's outcome as the API answers it.
fn answer(outcome: Result<TestSent, TestSendError>, channel: Channel, to: &str) -> JsonResult {
    match outcome {
        Ok(TestSent::DryRun { .. }) => Ok(Json(json!({
            "status": "dry_run",
            "channel": channel.as_str(),
            "to": crm_core::values::mask(to),
            "message": "ENABLE_REAL_SENDING is off: nothing was sent",
        }))),
        Ok(TestSent::Sent { provider, message_id }) => Ok(Json(json!({
            "status": "sent",
            "provider": provider,
            "messageId": message_id,
        }))),
        Err(e @ TestSendError::Suppressed) => Err(ApiError::bad_request_field("to", "suppressed", e.to_string())),
        Err(e @ TestSendError::NeverTexted(reason)) => Err(ApiError::bad_request_field("to", reason, e.to_string())),
        Err(TestSendError::Provider(e)) => Err(ApiError::Provider(e.to_string())),
        Err(TestSendError::Config(m)) => Err(ApiError::Internal(m)),
        Err(TestSendError::Store(e)) => Err(e.into()),
    }
}

async fn send_email(State(s): State<TestState>, RequestFields(fields): RequestFields) -> JsonResult {
    let to = Email::parse(field(&fields, "to")?).map_err(|e| ApiError::invalid("to", e))?;
    let subject = field(&fields, "subject")?.to_owned();
    let html = field(&fields, "html")?.to_owned();
    let brand = brand(&fields)?;
    let outcome = test_send::email(&s.deps, brand.as_ref(), &to, &subject, &html).await;
    answer(outcome, Channel::Email, to.as_str())
}

async fn send_sms(State(s): State<TestState>, RequestFields(fields): RequestFields) -> JsonResult {
    let region = s.app.config.defaults.phone_region;
    let to = PhoneE164::parse(field(&fields, "to")?, region).map_err(|e| ApiError::invalid("to", e))?;
    let text = field(&fields, "message")?.to_owned();
    let brand = brand(&fields)?;
    let outcome = test_send::sms(&s.deps, brand.as_ref(), &to, &text).await;
    answer(outcome, Channel::Sms, to.as_str())
}
