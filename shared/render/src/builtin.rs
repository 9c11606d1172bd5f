//! The templates shipped with the system, in English and Spanish (Latin-American casino
//! traffic), one per step of the default journey definition. A saved template for the same
//! journey, stage and channel outranks them (see `crm_core::template::resolve`).

use crm_core::definition::Channel;
use crm_core::journey::JourneyType;
use crm_core::template::{MessageTemplate, TemplateBrand};
use time::macros::datetime;

/// `(id, journey type, stage, channel, language, subject, body)`.
type Builtin = (
    &'static str,
    JourneyType,
    i32,
    Channel,
    &'static str,
    Option<&'static str>,
    &'static str,
);

const LAYOUT_START: &str = r#"<!doctype html><html><body style="margin:0;padding:24px;font-family:Arial,Helvetica,sans-serif;font-size:16px;line-height:1.5;color:#1d1d1f;background:#f5f5f7"><div style="max-width:560px;margin:0 auto;padding:24px;background:#ffffff;border-radius:8px">"#;
const LAYOUT_END: &str = r#"<p style="margin-top:32px;font-size:12px;color:#86868b">{{ brandName }} · 18+ · Juega con responsabilidad / Play responsibly.</p></div></body></html>"#;

const TEMPLATES: [Builtin; 10] = {
    use Channel::{Email, Sms};
    use JourneyType::{Acquisition, Retention};
    [
        (
            "builtin-welcome-en",
            Acquisition,
            -1,
            Email,
            "en",
            Some(r#"Welcome, {{ firstName | default: "friend" }}!"#),
            r#"<h1>Welcome, {{ firstName | default: "friend" }}!</h1><p>Thanks for your interest in {{ brandName }}. Your account is one step away: register to claim your welcome offer.</p>"#,
        ),
        (
            "builtin-welcome-es",
            Acquisition,
            -1,
            Email,
            "es",
            Some(r#"¡Bienvenido, {{ firstName | default: "amigo" }}!"#),
            r#"<h1>¡Bienvenido, {{ firstName | default: "amigo" }}!</h1><p>Gracias por tu interés en {{ brandName }}. Estás a un paso: regístrate y reclama tu bono de bienvenida.</p>"#,
        ),
        (
            "builtin-registered-nudge-email-en",
            Acquisition,
            0,
            Email,
            "en",
            Some(r#"{{ firstName | default: "Hi" }}, your welcome bonus is waiting"#),
            r#"<p>Hi {{ firstName | default: "there" }},</p><p>Your {{ brandName }} account is ready. Make your first deposit to unlock your welcome bonus.</p>"#,
        ),
        (
            "builtin-registered-nudge-email-es",
            Acquisition,
            0,
            Email,
            "es",
            Some(r#"{{ firstName | default: "Hola" }}, tu bono de bienvenida te espera"#),
            r#"<p>Hola {{ firstName | default: "amigo" }},</p><p>Tu cuenta de {{ brandName }} está lista. Haz tu primer depósito y activa tu bono de bienvenida.</p>"#,
        ),
        (
            "builtin-registered-nudge-sms-en",
            Acquisition,
            0,
            Sms,
            "en",
            None,
            r#"{{ brandName }}: {{ firstName | default: "Hi" }}, your welcome bonus is waiting. Deposit today to claim it. 18+"#,
        ),
        (
            "builtin-registered-nudge-sms-es",
            Acquisition,
            0,
            Sms,
            "es",
            None,
            r#"{{ brandName }}: {{ firstName | default: "Hola" }}, tu bono de bienvenida te espera. Deposita hoy para activarlo. 18+"#,
        ),
        (
            "builtin-deposit-thanks-en",
            Retention,
            1,
            Email,
            "en",
            Some(r#"Thank you, {{ firstName | default: "friend" }}!"#),
            r#"<h1>Thank you, {{ firstName | default: "friend" }}!</h1><p>Your deposit at {{ brandName }} is in. Good luck, and remember to play responsibly.</p>"#,
        ),
        (
            "builtin-deposit-thanks-es",
            Retention,
            1,
            Email,
            "es",
            Some(r#"¡Gracias, {{ firstName | default: "amigo" }}!"#),
            r#"<h1>¡Gracias, {{ firstName | default: "amigo" }}!</h1><p>Tu depósito en {{ brandName }} ya está acreditado. Mucha suerte, y recuerda jugar con responsabilidad.</p>"#,
        ),
        (
            "builtin-reactivation-en",
            Retention,
            2,
            Email,
            "en",
            Some(r#"We miss you, {{ firstName | default: "friend" }}"#),
            r#"<p>Hi {{ firstName | default: "there" }},</p><p>It has been a while since your last visit to {{ brandName }}. Come back and see what is new.</p>"#,
        ),
        (
            "builtin-reactivation-es",
            Retention,
            2,
            Email,
            "es",
            Some(r#"Te extrañamos, {{ firstName | default: "amigo" }}"#),
            r#"<p>Hola {{ firstName | default: "amigo" }},</p><p>Hace tiempo que no te vemos por {{ brandName }}. Vuelve y descubre las novedades.</p>"#,
        ),
    ]
};

pub fn built_ins() -> Vec<MessageTemplate> {
    let shipped = datetime!(2026-11-22 0:00 UTC);
    TEMPLATES
        .iter()
        .map(
            |(id, journey_type, stage, channel, language, subject, body)| MessageTemplate {
                template_id: (*id).into(),
                name: id.trim_start_matches("builtin-").replace('-', " "),
                brand: TemplateBrand::Any,
                journey_type: *journey_type,
                stage: *stage,
                channel: *channel,
                language: (*language).into(),
                subject: subject.map(str::to_owned),
                body: match channel {
                    Channel::Email => format!("{LAYOUT_START}{body}{LAYOUT_END}"),
                    Channel::Sms => (*body).to_owned(),
                },
                built_in: true,
                created_at: shipped,
                updated_at: shipped,
            },
        )
        .collect()
}
