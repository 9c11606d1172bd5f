//! The messaging part of the admin API: journey definitions and sending settings per brand,
//! templates (saved and built-in) with a preview, and the messages themselves.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use crm_core::definition::{Channel, JourneyDefinition};
use crm_core::input::required;
use crm_core::message::{Message, Reason, Status};
use crm_core::send::SettingsOverride;
use crm_core::template::{MessageTemplate, TemplateBrand, template_from};
use crm_core::values::{Brand, CustomerId, Invalid};
use crm_http::{ApiError, ApiJson, ApiPath, ApiQuery, AppState, Items, JsonResult, Page};
use crm_messaging::content::{self, ContentError, MessageFilter};
use crm_render::{TemplateError, compile, sms_length};
use crm_store::MessagePosition;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use crate::customers::{current, customer_id};
use crate::{TextOrNumber, decode_cursor, encode_cursor, field_error, limit, parse_day};

fn brand_path(raw: &str) -> Result<Brand, ApiError> {
    Brand::parse(raw).map_err(|_| ApiError::NotFound)
}

fn content_error(e: ContentError) -> ApiError {
    match e {
        ContentError::NotFound => ApiError::NotFound,
        ContentError::BuiltIn => ApiError::bad_request("built_in_template", e.to_string()),
        ContentError::Definition(e) => step_error(e),
        ContentError::Store(e) => e.into(),
    }
}

// Journey definitions.

/// A brand's journey definition, and whether it is the brand's own or the default.
#[derive(Serialize)]
pub struct JourneyView {
    brand: Brand,
    source: &'static str,
    definition: JourneyDefinition,
}

pub async fn get_journey(
    State(state): State<AppState>,
    ApiPath(brand): ApiPath<String>,
) -> Result<Json<JourneyView>, ApiError> {
    let brand = brand_path(&brand)?;
    let (definition, own) = content::journey(&state.store, &brand).await?;
    let source = if own { "brand" } else { "default" };
    Ok(Json(JourneyView {
        brand,
        source,
        definition,
    }))
}

fn step_error(e: crm_core::definition::DefinitionError) -> ApiError {
    ApiError::Step {
        step: e.step,
        code: e.code,
        message: e.message,
    }
}

pub async fn put_journey(
    State(state): State<AppState>,
    ApiPath(brand): ApiPath<String>,
    ApiJson(body): ApiJson<Map<String, Value>>,
) -> Result<Json<JourneyView>, ApiError> {
    let brand = brand_path(&brand)?;
    let definition = JourneyDefinition::from_json(&body).map_err(step_error)?;
    content::save_journey(&state.store, &brand, &definition)
        .await
        .map_err(content_error)?;
    Ok(Json(JourneyView {
        brand,
        source: "brand",
        definition,
    }))
}

// Sending settings.

pub async fn get_settings(State(state): State<AppState>, ApiPath(brand): ApiPath<String>) -> JsonResult {
    let brand = brand_path(&brand)?;
    let settings = content::settings(&state.store, &brand).await?;
    Ok(Json(json!({
        "brand": brand,
        "settings": settings,
        "note": "fields not set here use the deployment's defaults (DEFAULT_FROM_EMAIL, DEFAULT_FROM_NAME, SMS_PROVIDER, LAAFFIC_SENDER_ID, DEFAULT_LANGUAGE)",
    })))
}

pub async fn put_settings(
    State(state): State<AppState>,
    ApiPath(brand): ApiPath<String>,
    bytes: axum::body::Bytes,
) -> JsonResult {
    let brand = brand_path(&brand)?;
    // Read whole by the core, which names an unknown or wrong field.
    let settings = SettingsOverride::from_json(&bytes).map_err(|(field, e)| field_error(field, e))?;
    content::save_settings(&state.store, &brand, &settings).await?;
    Ok(Json(json!({"brand": brand, "settings": settings})))
}

// Templates.

fn template_error(e: TemplateError) -> ApiError {
    let at = match (e.line, e.column) {
        (Some(l), Some(c)) => format!(" (line {l}, column {c})"),
        _ => String::new(),
    };
    ApiError::Field(crm_core::input::FieldError {
        field: e.field,
        code: "invalid_template",
        message: format!("{}{at}", e.message),
    })
}

/// A template as sent (`POST /api/templates`, `PUT /api/templates/{id}`, an inline
/// preview).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TemplateBody {
    name: Option<String>,
    brand: Option<String>,
    journey_type: Option<String>,
    stage: Option<TextOrNumber>,
    channel: Option<String>,
    language: Option<String>,
    subject: Option<String>,
    body: Option<String>,
}

impl TemplateBody {
    /// The template, checked field by field and compiled.
    fn template(&self, id: String, now: OffsetDateTime) -> Result<MessageTemplate, ApiError> {
        let field = |name: &'static str| match name {
            "name" => self.name.clone(),
            "brand" => self.brand.clone(),
            "journeyType" => self.journey_type.clone(),
            "stage" => self.stage.as_ref().map(TextOrNumber::text),
            "channel" => self.channel.clone(),
            "language" => self.language.clone(),
            "subject" => self.subject.clone(),
            "body" => self.body.clone(),
            _ => None,
        };
        let template = template_from(field, id, now).map_err(|(f, e)| field_error(f, e))?;
        compile(&template).map_err(template_error)?;
        Ok(template)
    }
}

pub async fn create_template(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<TemplateBody>,
) -> Result<Response, ApiError> {
    let id = format!("tpl_{}", uuid::Uuid::now_v7().simple());
    let template = body.template(id, OffsetDateTime::now_utc())?;
    let template = content::save_template(&state.store, template, None)
        .await
        .map_err(content_error)?;
    Ok((StatusCode::CREATED, Json(template)).into_response())
}

#[derive(Deserialize)]
pub struct TemplateQuery {
    brand: Option<String>,
    channel: Option<String>,
}

pub async fn list_templates(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<TemplateQuery>,
) -> Result<Json<Items<MessageTemplate>>, ApiError> {
    let channel = q
        .channel
        .as_deref()
        .map(Channel::parse)
        .transpose()
        .map_err(|e| field_error("channel", e))?;
    let brand = q
        .brand
        .as_deref()
        .map(TemplateBrand::parse)
        .transpose()
        .map_err(|e| field_error("brand", e))?;
    let items: Vec<MessageTemplate> = content::all_templates(&state.store)
        .await?
        .into_iter()
        .filter(|t| channel.is_none_or(|c| t.channel == c))
        .filter(|t| match &brand {
            None => true,
            Some(TemplateBrand::Any) => t.brand == TemplateBrand::Any,
            Some(TemplateBrand::Brand(b)) => t.brand.serves(b),
        })
        .collect();
    Ok(Json(Items { items }))
}

pub async fn get_template(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<MessageTemplate>, ApiError> {
    Ok(Json(content::template(&state.store, &id).await.map_err(content_error)?))
}

pub async fn put_template(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<TemplateBody>,
) -> Result<Json<MessageTemplate>, ApiError> {
    let template = body.template(id.clone(), OffsetDateTime::now_utc())?;
    let template = content::save_template(&state.store, template, Some(&id))
        .await
        .map_err(content_error)?;
    Ok(Json(template))
}

pub async fn delete_template(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    content::delete_template(&state.store, &id)
        .await
        .map_err(content_error)?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/templates/preview` as sent: a saved template (`templateId`) or an inline
/// one, for a customer.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PreviewBody {
    template_id: Option<String>,
    customer_id: Option<String>,
    #[serde(flatten)]
    template: TemplateBody,
}

/// A rendered preview; an SMS also says its length in characters and segments.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PreviewView {
    template_id: String,
    channel: Channel,
    subject: Option<String>,
    body: String,
    text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    sms: Option<crm_render::SmsLength>,
}

/// Renders a saved (`templateId`) or inline template for a customer, as the sender would.
pub async fn preview(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<PreviewBody>,
) -> Result<Json<PreviewView>, ApiError> {
    let template = match &body.template_id {
        Some(id) => content::template(&state.store, id).await.map_err(content_error)?,
        None => body.template.template("preview".into(), OffsetDateTime::now_utc())?,
    };
    let customer = required("customerId", body.customer_id.as_deref(), |raw| {
        CustomerId::parse(raw).map_err(|_| Invalid::new("invalid_format", "not a customer id"))
    })?;
    let profile = current(&state, &customer).await?;
    let brand = match (body.template.brand.as_deref(), &template.brand) {
        (Some(b), _) => Brand::parse(b).map_err(|e| field_error("brand", e))?,
        (None, TemplateBrand::Brand(b)) => b.clone(),
        (None, TemplateBrand::Any) => profile
            .journeys()
            .first()
            .map_or_else(Brand::unbranded, |j| j.brand.clone()),
    };
    let rendered = content::preview(&state.store, &template, &brand, Some(&profile))
        .await?
        .map_err(template_error)?;
    Ok(Json(PreviewView {
        sms: (template.channel == Channel::Sms).then(|| sms_length(&rendered.text)),
        template_id: template.template_id,
        channel: template.channel,
        subject: rendered.subject,
        body: rendered.body,
        text: rendered.text,
    }))
}

// Messages.

/// Every message of a customer and of the customers merged into it, newest first.
pub async fn customer_messages(State(state): State<AppState>, ApiPath(id): ApiPath<String>) -> JsonResult {
    let id = customer_id(&id)?;
    let profile = current(&state, &id).await?;
    let items = content::customer_messages(&state.store, &profile).await?;
    Ok(Json(json!({"customerId": profile.id, "items": items})))
}

/// Pages of a day's messages one request reads when filtering by status.
const MAX_PAGES_PER_REQUEST: usize = 10;

#[derive(Deserialize)]
pub struct MessagesQuery {
    status: Option<String>,
    reason: Option<String>,
    day: Option<String>,
    cursor: Option<String>,
    limit: Option<i32>,
}

#[derive(Serialize, Deserialize)]
struct MessagesCursor {
    customer: CustomerId,
    id: String,
    #[serde(with = "crm_core::values::ts")]
    at: OffsetDateTime,
}

/// Messages created on one day (UTC, default today), newest first, optionally of one status
/// and one reason. With a filter, a page may hold fewer than `limit` items and still have a `nextCursor`:
/// the search stopped after reading `MAX_PAGES_PER_REQUEST` pages of the day.
pub async fn messages(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<MessagesQuery>,
) -> Result<Json<Page<Message>>, ApiError> {
    let limit = limit(q.limit)?;
    let status = q
        .status
        .as_deref()
        .map(Status::parse)
        .transpose()
        .map_err(|e| field_error("status", e))?;
    let reason: Option<Reason> = q
        .reason
        .as_deref()
        .map(|r| serde_json::from_value(Value::String(r.to_owned())))
        .transpose()
        .map_err(|_| {
            field_error(
                "reason",
                Invalid::new("invalid_value", "not a reason a message can have"),
            )
        })?;
    let after: Option<MessagePosition> = match &q.cursor {
        Some(raw) => {
            let c: MessagesCursor = decode_cursor(raw)?;
            Some(MessagePosition {
                customer: c.customer,
                message_id: c.id,
                created_at: c.at,
            })
        }
        None => None,
    };
    let day = match (&after, &q.day) {
        (Some(p), _) => p.created_at.date(),
        (None, Some(d)) => parse_day(d)?,
        (None, None) => OffsetDateTime::now_utc().date(),
    };
    let filter = MessageFilter {
        brand: None,
        status,
        reason,
    };
    let (found, position) =
        content::messages_of_day(&state.store, day, after, &filter, limit as usize, MAX_PAGES_PER_REQUEST).await?;
    let next = position.map(|p| {
        let c = MessagesCursor {
            customer: p.customer,
            id: p.message_id,
            at: p.created_at,
        };
        encode_cursor(&c)
    });
    Ok(Json(Page {
        items: found,
        next_cursor: next,
    }))
}
