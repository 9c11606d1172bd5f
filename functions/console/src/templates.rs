//! `/dashboard/message-templates`: every template (the brand's own, those for every brand,
//! the built-in ones), and a form to write one: Liquid with the seed's `{firstName}`, the
//! variables listed, a preview with the seed's customer (or a real one, by id) and the SMS
//! segment count, a test send to an address of one's own, then save (managers and owners).
//! A saved template opens in the same form to edit or delete. A template that does not
//! compile is shown again with the error beside its field.

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use crm_core::access::Role;
use crm_core::definition::Channel;
use crm_core::template::{MessageTemplate, TemplateBrand, template_from};
use crm_core::values::{Brand, CustomerId, PhoneE164};
use crm_messaging::content::{self, ContentError};
use crm_messaging::test_send::{self, TestSendError, TestSent};
use crm_render::{Rendered, VARIABLES, compile, sms_length};
use maud::{Markup, html};
use time::OffsetDateTime;

use crate::pages::respond_status;
use crate::{Console, Refusal, Submitted, Viewer};

/// A form's fields, kept to show it again.
type Form = BTreeMap<String, String>;

const FIELDS: [&str; 8] = [
    "name",
    "brand",
    "journeyType",
    "stage",
    "channel",
    "language",
    "subject",
    "body",
];

/// What the page shows under the form: nothing, a preview (and what became of its test
/// send), or an error (with its field).
enum Outcome {
    Nothing,
    Preview(Rendered, Option<String>),
    Sent(Rendered, String),
    Error(&'static str, String),
}

fn value<'a>(form: &'a Form, name: &str) -> &'a str {
    form.get(name).map_or("", String::as_str)
}

fn select(name: &'static str, label: &str, options: &[(&str, &str)], form: &Form) -> Markup {
    let current = value(form, name);
    html! {
        label for=(name) { (label) }
        select id=(name) name=(name) {
            @for (v, shown) in options { option value=(*v) selected[current == *v] { (shown) } }
        }
    }
}

fn error_for(outcome: &Outcome, field: &str) -> Markup {
    html! {
        @if let Outcome::Error(f, message) = outcome {
            @if *f == field { p.error id={ (field) "-error" } role="alert" { (message) } }
        }
    }
}

async fn render_page(
    console: &Console,
    viewer: &Viewer,
    form: &Form,
    outcome: Outcome,
    status: StatusCode,
) -> Result<Response, Refusal> {
    let templates = content::all_templates(&console.app.store).await?;
    let body = html! {
        table {
            caption { "Templates: a brand's own before those for every brand (*), built-in last" }
            thead { tr { th scope="col" { "Name" } th scope="col" { "Brand" } th scope="col" { "Journey" } th scope="col" { "Stage" } th scope="col" { "Channel" } th scope="col" { "Language" } th scope="col" { "Subject" } } }
            tbody {
                @for t in &templates {
                    tr {
                        td {
                            @if t.built_in { (t.name) " " span.tag { "built-in" } }
                            @else { a href={ "/dashboard/message-templates?edit=" (t.template_id) } { (t.name) } }
                        }
                        td { (t.brand.as_str()) }
                        td { (serde_json::to_value(t.journey_type).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()) }
                        td.num { (t.stage) }
                        td { (t.channel.as_str()) }
                        td { (t.language) }
                        td { (t.subject.as_deref().unwrap_or_default()) }
                    }
                }
            }
        }
        @if viewer.role().may_change() {
            @let editing = !value(form, "templateId").is_empty();
            h2 #editor { @if editing { "Edit the template" } @else { "Write a template" } }
            form.stacked method="post" action="/dashboard/message-templates" {
                input type="hidden" name="csrf" value=(viewer.session.csrf);
                @if editing { input type="hidden" name="templateId" value=(value(form, "templateId")); }
                label for="name" { "Name" }
                input #name name="name" value=(value(form, "name")) required maxlength="200";
                (error_for(&outcome, "name"))
                label for="brand" { "Brand (empty: every brand)" }
                input #brand name="brand" value=(value(form, "brand")) placeholder="rushbet";
                (error_for(&outcome, "brand"))
                (select("journeyType", "Journey", &[("acquisition", "Acquisition"), ("retention", "Retention")], form))
                (select("stage", "Stage", &[
                    ("-1", "-1 (acquisition): clicked or signed up as a lead: the welcome"),
                    ("0", "0 (acquisition): registered with the operator, no deposit yet"),
                    ("1", "1 (retention): deposited"),
                    ("2", "2 (retention): dormant, no deposit for a while"),
                ], form))
                (error_for(&outcome, "stage"))
                (select("channel", "Channel", &[("email", "Email"), ("sms", "SMS")], form))
                label for="language" { "Language" }
                input #language name="language" value=(value(form, "language")) placeholder="en";
                (error_for(&outcome, "language"))
                label for="subject" { "Subject (email)" }
                input #subject name="subject" value=(value(form, "subject")) maxlength="300";
                (error_for(&outcome, "subject"))
                label for="body" { "Body (Liquid; HTML for email, text for SMS)" }
                textarea #body name="body" rows="8" required { (value(form, "body")) }
                (error_for(&outcome, "body"))
                p.hint {
                    "Variables: "
                    @for (camel, snake) in VARIABLES { code { "{" (camel) "}" } " or " code { "{{ " (snake) " }}" } ", " }
                    "values are escaped in email; "
                    code { "| raw" }
                    " only for brand settings."
                }
                label for="customer" { "Preview for customer (id; empty: the seed's Juan Pérez)" }
                input #customer name="customer" value=(value(form, "customer"));
                (error_for(&outcome, "customer"))
                div.buttons {
                    button type="submit" name="do" value="preview" { "Preview" }
                    button type="submit" name="do" value="save" { "Save template" }
                    @if editing { button.secondary type="submit" name="do" value="delete" { "Delete template" } }
                }
                label for="to" { "Send a test: an email goes to you (" (viewer.session.email.as_str()) "); an SMS to the phone typed here" }
                input #to name="to" type="tel" value=(value(form, "to")) autocomplete="tel";
                (error_for(&outcome, "to"))
                div.buttons { button.secondary type="submit" name="do" value="test" { "Send a test" } }
            }
            @if let Outcome::Sent(_, what) = &outcome { p.notice #sent role="status" { (what) } }
            @if let Outcome::Preview(r, _) | Outcome::Sent(r, _) = &outcome {
                @let sms = if let Outcome::Preview(_, sms) = &outcome { sms.as_deref() } else { None };
                section aria-labelledby="preview-title" {
                    h2 #preview-title { "Preview" }
                    @if let Some(subject) = &r.subject { p { b { "Subject: " } (subject) } }
                    pre.preview { (r.text) }
                    @if let Some(sms) = sms { p { (sms) } }
                }
            }
        }
    };
    Ok(respond_status(
        viewer,
        status,
        "Message templates",
        "/dashboard/message-templates",
        body,
    ))
}

/// A saved template's fields, as the form shows them.
fn form_of(t: &MessageTemplate) -> Form {
    let mut form = Form::new();
    form.insert("templateId".into(), t.template_id.clone());
    form.insert("name".into(), t.name.clone());
    form.insert(
        "brand".into(),
        match &t.brand {
            TemplateBrand::Brand(b) => b.to_string(),
            TemplateBrand::Any => String::new(),
        },
    );
    let journey = serde_json::to_value(t.journey_type)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned));
    form.insert("journeyType".into(), journey.unwrap_or_default());
    form.insert("stage".into(), t.stage.to_string());
    form.insert("channel".into(), t.channel.as_str().to_owned());
    form.insert("language".into(), t.language.clone());
    form.insert("subject".into(), t.subject.clone().unwrap_or_default());
    form.insert("body".into(), t.body.clone());
    form
}

pub async fn list(State(console): State<Console>, viewer: Viewer, Query(q): Query<Form>) -> Result<Response, Refusal> {
    let form = match q.get("edit").filter(|id| id.len() <= crm_core::values::MAX_ID_LEN) {
        Some(id) => match content::template(&console.app.store, id).await {
            Ok(t) if !t.built_in => form_of(&t),
            Err(ContentError::Store(e)) => return Err(e.into()),
            _ => {
                return render_page(
                    &console,
                    &viewer,
                    &Form::new(),
                    Outcome::Error("name", "There is no such template.".into()),
                    StatusCode::NOT_FOUND,
                )
                .await;
            }
        },
        None => q,
    };
    render_page(&console, &viewer, &form, Outcome::Nothing, StatusCode::OK).await
}

/// The form as a template, compiled: or the field that is wrong.
fn checked(form: &Form) -> Result<MessageTemplate, (&'static str, String)> {
    let id = format!("tpl_{}", uuid::Uuid::now_v7().simple());
    let template = template_from(|name| form.get(name).cloned(), id, OffsetDateTime::now_utc())
        .map_err(|(field, e)| (field, e.message))?;
    compile(&template).map_err(|e| (e.field, e.message))?;
    Ok(template)
}

async fn preview(console: &Console, form: &Form, template: &MessageTemplate) -> Result<Outcome, Refusal> {
    let store = &console.app.store;
    let customer = match value(form, "customer").trim() {
        "" => None,
        raw => match CustomerId::parse(raw) {
            Ok(id) => match crm_app::customers::current(store, &id).await? {
                Some(p) => Some(p),
                None => return Ok(Outcome::Error("customer", "There is no such customer.".into())),
            },
            Err(_) => return Ok(Outcome::Error("customer", "Not a customer id.".into())),
        },
    };
    let brand = match &template.brand {
        TemplateBrand::Brand(b) => b.clone(),
        TemplateBrand::Any => Brand::unbranded(),
    };
    Ok(
        match content::preview(store, template, &brand, customer.as_ref()).await? {
            Ok(r) => {
                let sms = (template.channel == crm_core::definition::Channel::Sms).then(|| {
                    let l = sms_length(&r.text);
                    format!(
                        "{} characters, {} SMS segment{}",
                        l.characters,
                        l.segments,
                        if l.segments == 1 { "" } else { "s" }
                    )
                });
                Outcome::Preview(r, sms)
            }
            Err(e) => Outcome::Error(e.field, e.message),
        },
    )
}

pub async fn submit(State(console): State<Console>, s: Submitted) -> Result<Response, Refusal> {
    s.viewer.require(Role::may_change)?;
    let form: Form = FIELDS
        .iter()
        .chain(&["customer", "templateId", "to"])
        .filter_map(|f| s.form.get(*f).map(|v| ((*f).to_owned(), v.clone())))
        .collect();
    let editing = value(&form, "templateId").to_owned();
    if s.field("do") == "delete" {
        return delete(&console, &s, &editing).await;
    }
    let template = match checked(&form) {
        Ok(t) => t,
        Err((field, message)) => {
            return render_page(
                &console,
                &s.viewer,
                &form,
                Outcome::Error(field, message),
                StatusCode::BAD_REQUEST,
            )
            .await;
        }
    };
    if s.field("do") == "preview" {
        let outcome = preview(&console, &form, &template).await?;
        if matches!(outcome, Outcome::Preview(..)) && !value(&form, "customer").trim().is_empty() {
            s.viewer
                .audit(&console, "customer.preview", value(&form, "customer").trim())
                .await;
        }
        return render_page(&console, &s.viewer, &form, outcome, StatusCode::OK).await;
    }
    if s.field("do") == "test" {
        let (outcome, status) = test_send(&console, &s.viewer, &form, &template).await?;
        if matches!(outcome, Outcome::Sent(..)) {
            let recipient = match template.channel {
                Channel::Email => s.viewer.session.email.to_string(),
                Channel::Sms => crm_core::values::mask(value(&form, "to").trim()),
            };
            let what = if editing.is_empty() { "draft" } else { editing.as_str() };
            let customer = value(&form, "customer").trim();
            let target = match customer {
                "" => format!("{what} to {recipient}"),
                c => format!("{what} to {recipient} for customer {c}"),
            };
            s.viewer.audit(&console, "template.test_send", &target).await;
        }
        return render_page(&console, &s.viewer, &form, outcome, status).await;
    }
    let replacing = (!editing.is_empty()).then_some(editing.as_str());
    let template = match content::save_template(&console.app.store, template, replacing).await {
        Ok(t) => t,
        Err(ContentError::Store(e)) => return Err(e.into()),
        Err(e) => {
            let (why, status) = match e {
                ContentError::NotFound => ("This template was deleted meanwhile.".into(), StatusCode::NOT_FOUND),
                e => (e.to_string(), StatusCode::BAD_REQUEST),
            };
            return render_page(&console, &s.viewer, &form, Outcome::Error("name", why), status).await;
        }
    };
    let action = if replacing.is_some() {
        "template.update"
    } else {
        "template.create"
    };
    s.viewer.audit(&console, action, &template.template_id).await;
    Ok(Redirect::to("/dashboard/message-templates").into_response())
}

async fn delete(console: &Console, s: &Submitted, id: &str) -> Result<Response, Refusal> {
    match content::delete_template(&console.app.store, id).await {
        Ok(()) => s.viewer.audit(console, "template.delete", id).await,
        Err(ContentError::Store(e)) => return Err(e.into()),
        // Already gone, or built in: nothing to delete.
        Err(_) => {}
    }
    Ok(Redirect::to("/dashboard/message-templates").into_response())
}

/// The template rendered as the preview is, sent through `crm_messaging::test_send` with the
/// template's brand's rules and sender: an email to the person asking, an SMS to the number
/// typed.
async fn test_send(
    console: &Console,
    viewer: &Viewer,
    form: &Form,
    template: &MessageTemplate,
) -> Result<(Outcome, StatusCode), Refusal> {
    let rendered = match preview(console, form, template).await? {
        Outcome::Preview(r, _) => r,
        other => return Ok((other, StatusCode::BAD_REQUEST)),
    };
    let deps = &console.deps.messaging;
    let brand = match &template.brand {
        TemplateBrand::Brand(b) => Some(b.clone()),
        TemplateBrand::Any => None,
    };
    let to = value(form, "to").trim();
    let refused = |message: String| Ok((Outcome::Error("to", message), StatusCode::BAD_REQUEST));
    let outcome = match template.channel {
        // An email test goes to the person asking, never to an address typed.
        Channel::Email => {
            let subject = rendered.subject.clone().unwrap_or_default();
            let html = rendered.body.clone();
            test_send::email(deps, brand.as_ref(), &viewer.session.email, &subject, &html).await
        }
        Channel::Sms => match PhoneE164::parse(to, console.app.config.defaults.phone_region) {
            Ok(phone) => test_send::sms(deps, brand.as_ref(), &phone, &rendered.text).await,
            Err(e) => return refused(format!("Not a phone number: {}", e.message)),
        },
    };
    match outcome {
        Ok(TestSent::DryRun { .. }) => Ok((
            Outcome::Sent(
                rendered,
                "Not sent: ENABLE_REAL_SENDING is off, so this was a dry run (nothing left).".into(),
            ),
            StatusCode::OK,
        )),
        Ok(TestSent::Sent { provider, message_id }) => Ok((
            Outcome::Sent(rendered, format!("Sent through {provider} (message id {message_id}).")),
            StatusCode::OK,
        )),
        Err(TestSendError::Store(e)) => Err(e.into()),
        Err(e @ (TestSendError::Suppressed | TestSendError::NeverTexted(_))) => refused(format!("Refused: {e}.")),
        Err(e @ TestSendError::Provider(_)) => Ok((
            Outcome::Error("to", format!("The provider refused it: {e}")),
            StatusCode::BAD_GATEWAY,
        )),
        Err(TestSendError::Config(m)) => {
            tracing::error!(error = %m, "test send: the deployment lacks a setting");
            Err(Refusal::Unavailable)
        }
    }
}
