//! `/dashboard/message-templates`: every template (the brand's own, those for every brand,
//! the built-in ones), and a form to write one: Liquid with the seed's `{firstName}`, the
//! variables listed, a preview with the seed's customer (or a real one, by id) and the SMS
//! segment count, then save (managers and owners). A template that does not compile is
//! shown again with the error beside its field.

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use crm_core::access::Role;
use crm_core::template::{MessageTemplate, TemplateBrand, template_from};
use crm_core::values::{Brand, CustomerId};
use crm_render::{Context, Rendered, VARIABLES, Variables, compile, render, sms_length};
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

/// What the page shows under the form: nothing, a preview, or an error (with its field).
enum Outcome {
    Nothing,
    Preview(Rendered, Option<String>),
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
    let mut templates = console.app.store.templates("").await?;
    templates.extend(crm_render::built_ins());
    let body = html! {
        table {
            caption { "Templates: a brand's own before those for every brand (*), built-in last" }
            thead { tr { th scope="col" { "Name" } th scope="col" { "Brand" } th scope="col" { "Journey" } th scope="col" { "Stage" } th scope="col" { "Channel" } th scope="col" { "Language" } th scope="col" { "Subject" } } }
            tbody {
                @for t in &templates {
                    tr {
                        td { (t.name) @if t.built_in { " " span.tag { "built-in" } } }
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
            h2 { "Write a template" }
            form.stacked method="post" action="/dashboard/message-templates" {
                input type="hidden" name="csrf" value=(viewer.session.csrf);
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
                }
            }
            @if let Outcome::Preview(r, sms) = &outcome {
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

pub async fn list(State(console): State<Console>, viewer: Viewer, Query(q): Query<Form>) -> Result<Response, Refusal> {
    render_page(&console, &viewer, &q, Outcome::Nothing, StatusCode::OK).await
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
            Ok(id) => match store.current_profile(&id).await? {
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
    let brand_name = store.brand_display_name(&brand).await?;
    let ctx = Context {
        brand: &brand,
        journey_type: template.journey_type,
        stage: template.stage,
        brand_name: &brand_name,
        unsubscribe_url: None,
    };
    let vars = match &customer {
        Some(p) => Variables::new(p, ctx),
        None => Variables::example(ctx),
    };
    let compiled = compile(template).map_err(|_| Refusal::Unavailable)?;
    Ok(match render(&compiled, &vars) {
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
    })
}

pub async fn submit(State(console): State<Console>, s: Submitted) -> Result<Response, Refusal> {
    s.viewer.require(Role::may_change)?;
    let form: Form = FIELDS
        .iter()
        .chain(&["customer"])
        .filter_map(|f| s.form.get(*f).map(|v| ((*f).to_owned(), v.clone())))
        .collect();
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
    console.app.store.put_template(&template).await?;
    s.viewer.audit(&console, "template.create", &template.template_id).await;
    Ok(Redirect::to("/dashboard/message-templates").into_response())
}
