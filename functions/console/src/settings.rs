//! `/dashboard/settings` (Settings): a brand's own sending settings (sender, SMS provider,
//! language, consent, frequency caps, quiet hours, time zone, responsible gambling, SMS
//! countries, budgets), as JSON, checked as the admin API checks them, the refused field
//! named beside the editor. Fields left out use the deployment's defaults. Managers and
//! owners change them; analysts read them.

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use crm_core::access::Role;
use crm_core::send::SettingsOverride;
use crm_core::values::Brand;
use crm_messaging::content;
use maud::{Markup, html};

use crate::pages::respond_status;
use crate::{Console, Refusal, Submitted, Viewer};

const PATH: &str = "/dashboard/settings";

/// The brand picker every per-brand page starts with.
pub fn brand_picker(action: &str, brand: Option<&Brand>) -> Markup {
    html! {
        form.filters method="get" action=(action) {
            label for="brand" { "Brand" }
            input #brand type="search" name="brand" value=[brand.map(Brand::as_str)] placeholder="rushbet" required;
            button type="submit" { "Open" }
        }
    }
}

/// What applies to the brand's next message: its own settings over the deployment's.
fn in_effect(console: &Console, own: &SettingsOverride) -> Markup {
    let effective = own.clone().over(&console.deps.messaging.config.defaults);
    let json = serde_json::to_string_pretty(&effective).unwrap_or_default();
    html! {
        details {
            summary { "In effect (its own settings over the deployment's defaults)" }
            pre.preview { (json) }
        }
    }
}

fn editor(viewer: &Viewer, brand: &Brand, json: &str, error: Option<(&str, &str)>) -> Markup {
    let may_change = viewer.role().may_change();
    html! {
        @if let Some((field, message)) = error {
            p.error #settings-error role="alert" { "Not saved: " code { (field) } ": " (message) }
        }
        form.stacked.wide method="post" action=(PATH) {
            input type="hidden" name="csrf" value=(viewer.session.csrf);
            input type="hidden" name="brand" value=(brand.as_str());
            label for="settings" { "Settings of " (brand.as_str()) " (JSON)" }
            textarea #settings name="settings" rows="18" spellcheck="false"
                aria-describedby=[error.map(|_| "settings-error")] readonly[!may_change] { (json) }
            p.hint {
                "Fields: displayName, fromEmail, fromName, smsProvider (sns or laaffic), laafficSenderId, language, "
                "requireConsent, frequencyCaps, quietHours, timezone, responsibleGambling, smsOptOutText, "
                "smsCountries, dailyBudget, newAddressesPerHour, emailOptIn. Leave a field out to use the deployment's default."
            }
            @if may_change { button type="submit" { "Save settings" } }
        }
    }
}

pub async fn page(
    State(console): State<Console>,
    viewer: Viewer,
    Query(q): Query<BTreeMap<String, String>>,
) -> Result<Response, Refusal> {
    let brand = q.get("brand").and_then(|b| Brand::parse(b).ok());
    let body = match &brand {
        None => html! {
            (brand_picker(PATH, None))
            p { "Each brand sends with the deployment's defaults until it sets its own here." }
        },
        Some(b) => {
            let settings = content::settings(&console.app.store, b).await?;
            let json = serde_json::to_string_pretty(&settings).unwrap_or_default();
            html! { (brand_picker(PATH, brand.as_ref())) (editor(&viewer, b, &json, None)) (in_effect(&console, &settings)) }
        }
    };
    Ok(respond_status(&viewer, StatusCode::OK, "Brand settings", PATH, body))
}

pub async fn save(State(console): State<Console>, submitted: Submitted) -> Result<Response, Refusal> {
    let viewer = &submitted.viewer;
    viewer.require(Role::may_change)?;
    let brand = match Brand::parse(submitted.field("brand")) {
        Ok(b) => b,
        Err(e) => {
            let body = html! { p.error role="alert" { "brand: " (e.message) } (brand_picker(PATH, None)) };
            return Ok(respond_status(
                viewer,
                StatusCode::UNPROCESSABLE_ENTITY,
                "Brand settings",
                PATH,
                body,
            ));
        }
    };
    let raw = submitted.field("settings");
    let (status, body) = match SettingsOverride::from_json(raw.as_bytes()) {
        Ok(settings) => {
            content::save_settings(&console.app.store, &brand, &settings).await?;
            viewer.audit(&console, "settings.put", brand.as_str()).await;
            let json = serde_json::to_string_pretty(&settings).unwrap_or_default();
            (
                StatusCode::OK,
                html! {
                    p.notice role="status" { "Saved: the next message of " (brand.as_str()) " uses these settings." }
                    (brand_picker(PATH, Some(&brand)))
                    (editor(viewer, &brand, &json, None))
                    (in_effect(&console, &settings))
                },
            )
        }
        Err((field, e)) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            html! {
                (brand_picker(PATH, Some(&brand)))
                (editor(viewer, &brand, raw, Some((field, &e.message))))
            },
        ),
    };
    Ok(respond_status(viewer, status, "Brand settings", PATH, body))
}
