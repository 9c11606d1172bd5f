//! Test sends: one message through the real adapters, on the rules every send obeys. A
//! suppressed address is refused (for the brand named, or for any brand without one); an
//! SMS to a line or country the brand never texts too; with `ENABLE_REAL_SENDING` off
//! nothing leaves and the answer says what would have gone. With a brand, its sending
//! settings (sender, SMS provider and sender id) apply, else the deployment's. The admin
//! API's `POST /api/test/send-*` and the console's "Send a test" both come here.

use crm_core::compliance::suppressed;
use crm_core::definition::Channel;
use crm_core::send::{BrandSettings, sms_refused};
use crm_core::values::{Brand, Email, PhoneE164};
use crm_providers::ses::OutboundEmail;
use crm_providers::sns::OutboundSms;
use crm_providers::{Outbound, ProviderError};
use crm_store::StoreError;

use crate::Deps;

/// What became of a test send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TestSent {
    /// `ENABLE_REAL_SENDING` is off: nothing left.
    DryRun {
        channel: Channel,
    },
    Sent {
        provider: &'static str,
        message_id: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum TestSendError {
    /// The address is on the suppression list (unsubscribed, bounced or complained).
    #[error("the address is on the suppression list (unsubscribed, bounced or complained)")]
    Suppressed,
    /// The brand never texts this number (`number_type`, `country_not_allowed`).
    #[error("this number is never texted (its line type, or a country outside the brand's SMS countries)")]
    NeverTexted(&'static str),
    /// The deployment lacks a key (`UNSUBSCRIBE_SECRET`).
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Provider(#[from] ProviderError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

async fn settings(deps: &Deps, brand: Option<&Brand>) -> Result<BrandSettings, StoreError> {
    match brand {
        Some(b) => deps.catalog.settings(b).await,
        None => Ok(deps.config.defaults.clone()),
    }
}

/// Suppression of the address (for `brand`, or any), then `ENABLE_REAL_SENDING`:
/// `Some(DryRun)` when nothing may leave.
async fn gate(
    deps: &Deps,
    brand: Option<&Brand>,
    channel: Channel,
    address: &str,
) -> Result<Option<TestSent>, TestSendError> {
    let keys = deps.config.keys().map_err(|e| TestSendError::Config(e.to_string()))?;
    let entries = deps
        .store
        .suppressions(channel, &keys.address_hash(channel, address))
        .await?;
    let refused = match brand {
        Some(b) => suppressed(&entries, channel, b),
        None => entries.iter().any(|e| e.channel == channel),
    };
    if refused {
        return Err(TestSendError::Suppressed);
    }
    if !deps.config.real_sending {
        tracing::info!(
            channel = channel.as_str(),
            "test send: dry run (ENABLE_REAL_SENDING is off)"
        );
        return Ok(Some(TestSent::DryRun { channel }));
    }
    Ok(None)
}

async fn hand_over(
    deps: &Deps,
    provider: crm_core::send::Provider,
    message: &Outbound,
) -> Result<TestSent, TestSendError> {
    let receipt = deps.provider(provider)?.send(message).await.inspect_err(|e| {
        tracing::warn!(error = %e, "test send failed");
    })?;
    Ok(TestSent::Sent {
        provider: receipt.provider,
        message_id: receipt.message_id,
    })
}

/// One email: `html` as written (its text part derived), from the brand's sender.
pub async fn email(
    deps: &Deps,
    brand: Option<&Brand>,
    to: &Email,
    subject: &str,
    html: &str,
) -> Result<TestSent, TestSendError> {
    if let Some(dry_run) = gate(deps, brand, Channel::Email, to.as_str()).await? {
        return Ok(dry_run);
    }
    let settings = settings(deps, brand).await?;
    let email = Outbound::Email(OutboundEmail {
        from: settings.from_email.clone(),
        from_name: settings.from_name.clone(),
        to: to.clone(),
        subject: crm_core::values::clean_text(subject),
        text: crm_render::html_to_text(html),
        html: html.to_owned(),
        message_id: format!("test_{}", uuid::Uuid::now_v7().simple()),
        headers: Vec::new(),
        tags: Vec::new(),
    });
    hand_over(deps, settings.provider(Channel::Email), &email).await
}

/// One SMS, through the brand's SMS provider with its sender id.
pub async fn sms(deps: &Deps, brand: Option<&Brand>, to: &PhoneE164, text: &str) -> Result<TestSent, TestSendError> {
    let settings = settings(deps, brand).await?;
    if let Some(reason) = sms_refused(to, &settings) {
        return Err(TestSendError::NeverTexted(reason.as_str()));
    }
    if let Some(dry_run) = gate(deps, brand, Channel::Sms, to.as_str()).await? {
        return Ok(dry_run);
    }
    let provider = settings.provider(Channel::Sms);
    let sms = Outbound::Sms(OutboundSms {
        to: to.clone(),
        text: text.to_owned(),
        sender_id: crate::sender::sms_sender_id(deps, &settings, provider),
        message_id: format!("test_{}", uuid::Uuid::now_v7().simple()),
        transactional: true,
    });
    hand_over(deps, provider, &sms).await
}
