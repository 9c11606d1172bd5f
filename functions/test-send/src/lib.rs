//! Test sends (seed §5.3, §5.4; admin bearer): `POST /api/test/send-email {to, subject, html}`
//! and `POST /api/test/send-sms {to, message}` send one message through the real adapters and
//! answer with the provider's message id or its error (502). They obey what every other
//! send obeys: a suppressed address is refused (400, `suppressed`), an SMS to a line or
//! country the brand never texts too (`number_type`, `country_not_allowed`), and with
//! `ENABLE_REAL_SENDING` off nothing leaves: the answer is a dry run saying what would have
//! gone. `brand` (optional) names whose rules apply: without it, an entry for any brand
//! refuses.

use std::sync::Arc;

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router, middleware};
use crm_core::compliance::suppressed;
use crm_core::definition::Channel;
use crm_core::input::Fields;
use crm_core::send::{Provider, sms_refused};
use crm_core::values::{Brand, Email, PhoneE164};
use crm_http::{ApiError, AppState, HttpFunction, JsonResult, RequestFields};
use crm_messaging::Deps;
use crm_providers::ses::OutboundEmail;
use crm_providers::sns::OutboundSms;
use crm_providers::{Outbound, ProviderError};
use serde_json::{Value, json};

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

/// The rules a test send obeys before any provider call: suppression of the address (for
/// the brand named, or any), and `ENABLE_REAL_SENDING`. `Ok(Some(answer))`: answered
/// without sending (a dry run).
async fn gate(
    s: &TestState,
    fields: &Fields,
    channel: Channel,
    address: &str,
) -> Result<Option<Json<Value>>, ApiError> {
    let keys = s.deps.config.keys().map_err(|e| ApiError::Internal(e.to_string()))?;
    let brand = match fields.pick(&["brand"]) {
        Some(b) => Some(Brand::parse(b).map_err(|e| ApiError::invalid("brand", e))?),
        None => None,
    };
    let entries = s
        .deps
        .store
        .suppressions(channel, &keys.address_hash(channel, address))
        .await?;
    let refused = match &brand {
        Some(b) => suppressed(&entries, channel, b),
        None => entries.iter().any(|e| e.channel == channel),
    };
    if refused {
        return Err(ApiError::bad_request_field(
            "to",
            "suppressed",
            "the address is on the suppression list (unsubscribed, bounced or complained)",
        ));
    }
    if !s.deps.config.real_sending {
        tracing::info!(
            channel = channel.as_str(),
            "test send: dry run (ENABLE_REAL_SENDING is off)"
        );
        return Ok(Some(Json(json!({
            "status": "dry_run",
            "channel": channel.as_str(),
            "to": crm_core::values::mask(address),
            "message": "ENABLE_REAL_SENDING is off: nothing was sent",
        }))));
    }
    Ok(None)
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
    if let Some(dry_run) = gate(&s, &fields, Channel::Email, to.as_str()).await? {
        return Ok(dry_run);
    }
    let settings = &s.deps.config.defaults;
    let email = Outbound::Email(OutboundEmail {
        from: settings.from_email.clone(),
        from_name: settings.from_name.clone(),
        to,
        subject,
        text: crm_render::html_to_text(&html),
        html,
        message_id: format!("test_{}", uuid::Uuid::now_v7().simple()),
        headers: Vec::new(),
        tags: Vec::new(),
    });
    send(&s.deps, settings.provider(Channel::Email), &email).await
}

/// Hands the message to the brand's provider for its channel, as the sender does.
async fn send(deps: &Deps, provider: Provider, message: &Outbound) -> JsonResult {
    match deps.provider(provider) {
        Ok(p) => answer(p.send(message).await),
        Err(e) => answer(Err(e)),
    }
}

async fn send_sms(State(s): State<TestState>, RequestFields(fields): RequestFields) -> JsonResult {
    let region = s.app.config.defaults.phone_region;
    let to = PhoneE164::parse(field(&fields, "to")?, region).map_err(|e| ApiError::invalid("to", e))?;
    let text = field(&fields, "message")?.to_owned();
    let settings = &s.deps.config.defaults;
    if let Some(reason) = sms_refused(&to, settings) {
        return Err(ApiError::bad_request_field(
            "to",
            reason.as_str(),
            "this number is never texted (its line type, or a country outside DEFAULT_SMS_COUNTRIES)",
        ));
    }
    if let Some(dry_run) = gate(&s, &fields, Channel::Sms, to.as_str()).await? {
        return Ok(dry_run);
    }
    let provider = settings.provider(Channel::Sms);
    let sms = Outbound::Sms(OutboundSms {
        to,
        text,
        sender_id: crm_messaging::sender::sms_sender_id(&s.deps, settings, provider),
        message_id: format!("test_{}", uuid::Uuid::now_v7().simple()),
        transactional: true,
    });
    send(&s.deps, provider, &sms).await
}
