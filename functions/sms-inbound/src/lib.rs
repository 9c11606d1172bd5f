//! `POST /api/webhooks/sms-inbound` (a key of an `sms` source): replies to our SMS, as the SMS
//! provider forwards them (JSON or form-encoded; Twilio-style `From`/`Body`, Laaffic- and
//! SNS-style `msisdn`/`originator`/`message` are read too). A message starting with STOP,
//! STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT, BAJA, ALTO, PARAR or CANCELAR (any case, any
//! accents) suppresses the number's marketing SMS; START, UNSTOP or ALTA lifts its own
//! opt-outs. With `brand` (e.g. `?brand=rushbet` in the webhook URL of a brand's own
//! number) the opt-out covers that brand, else every brand.

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use crm_app::compliance::sms_inbound;
use crm_core::source::Route;
use crm_core::values::{Brand, PhoneE164};
use crm_http::{ApiError, AppState, HttpFunction, IngestRequest, JsonResult};
use serde_json::json;

pub const PATH: &str = "/api/webhooks/sms-inbound";

pub const FUNCTION: HttpFunction = HttpFunction {
    logical_id: "SmsInboundFunction",
    binary: "sms-inbound",
    needs: &[
        crm_app::config::Needs::UnsubscribeSecret,
        crm_app::config::Needs::SourceSecret,
    ],
    routes: &[PATH],
    router,
};

/// Field aliases, canonical name first.
const FROM: &[&str] = &["from", "From", "msisdn", "originator", "sender", "phone", "mobile"];
const TEXT: &[&str] = &["text", "Text", "Body", "body", "message", "content", "msg"];
const BRAND: &[&str] = &["brand", "operatorId"];

pub fn router(state: AppState) -> Router {
    // Its requests carry phone numbers: their metadata loads now, at cold start.
    crm_core::values::PhoneE164::warm_up();
    if state.config.unsubscribe.is_none() {
        tracing::error!("UNSUBSCRIBE_SECRET is not set: every inbound SMS will be refused");
    }
    crm_http::ingest_router(state, PATH, Route::SmsInbound, post(inbound))
}

/// Only a source of kind `sms` may call this route (its rules say so), so only the SMS
/// provider changes an opt-out; with `INGEST_AUTH=off` (make dev) anyone may.
async fn inbound(State(state): State<AppState>, req: IngestRequest) -> JsonResult {
    let IngestRequest { fields, source, sender } = req;
    let missing = |field: &'static str| ApiError::bad_request_field(field, "missing", format!("{field} is required"));
    let raw_from = fields.pick(FROM).ok_or_else(|| missing("from"))?;
    let from = PhoneE164::parse(raw_from, state.config.defaults.phone_region)
        .map_err(|e| ApiError::bad_request_field("from", e.code, e.message))?;
    let text = fields.pick(TEXT).ok_or_else(|| missing("text"))?;
    let named = fields
        .pick(BRAND)
        .map(Brand::parse)
        .transpose()
        .map_err(|e| ApiError::bad_request_field("brand", e.code, e.message))?;
    // A source bound to a brand changes that brand's opt-outs only (naming none means its
    // own, never every brand's).
    let own = source.as_ref().and_then(|s| s.rules.brand.clone());
    if let (Some(own), Some(named)) = (&own, &named)
        && own != named
    {
        return Err(ApiError::Forbidden {
            message: format!("this key writes for brand {own} only"),
            field: Some("brand"),
        });
    }
    let brand = named.or(own);
    let keys = state
        .config
        .unsubscribe
        .as_ref()
        .ok_or_else(|| ApiError::Internal("UNSUBSCRIBE_SECRET is not set".into()))?;
    let now = time::OffsetDateTime::now_utc();
    if let Some(claim) = sender.signature_claim(now)
        && !state.store.claim_signature(&claim).await?
    {
        return Err(ApiError::Unauthorized(
            "this signature was already used: sign each attempt with a new t",
        ));
    }
    let action = sms_inbound(&state.store, keys, &from, text, brand.clone(), now).await?;
    tracing::info!(
        action = action.as_str(),
        brand = brand.as_ref().map(Brand::as_str),
        "inbound sms"
    );
    Ok(Json(json!({"status": action.as_str(), "channel": "sms"})))
}
