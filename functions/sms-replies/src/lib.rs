//! The SMS replies function: AWS End User Messaging SMS publishes each reply to one of our
//! numbers to an SNS topic, and SNS invokes this function. The proof is the invocation
//! itself: only that topic may invoke it (the stack's permission), so no key or signature
//! travels with the message. STOP, BAJA … suppress the number's marketing SMS, START, ALTA …
//! lift its own opt-outs (`crm_app::compliance::sms_inbound`), for the brand whose number was
//! texted (`SMS_REPLY_BRANDS`) or else every brand. Repeats change nothing; an unreadable
//! message is logged and dropped; a DynamoDB failure fails the invocation (SNS retries).

use std::collections::BTreeMap;

use aws_lambda_events::sns::SnsEvent;
use crm_app::config::ConfigError;
use crm_core::unsubscribe::Keys;
use crm_core::values::{Brand, PhoneE164, PhoneRegion};
use crm_store::{Store, StoreError};
use serde::Deserialize;
use time::OffsetDateTime;

pub struct Deps {
    pub store: Store,
    pub keys: Keys,
    /// Our numbers that belong to one brand: a reply to them changes that brand's opt-outs.
    pub brands: BTreeMap<PhoneE164, Brand>,
}

impl Deps {
    pub async fn cold_start() -> Result<Self, ConfigError> {
        let config = crm_app::config::Config::from_env().await?;
        let keys = config.unsubscribe.clone().ok_or(ConfigError {
            var: "UNSUBSCRIBE_SECRET",
            message: "is required".into(),
        })?;
        let brands = brands(std::env::var("SMS_REPLY_BRANDS").ok().as_deref())?;
        Ok(Self {
            store: config.store().await,
            keys,
            brands,
        })
    }
}

/// `SMS_REPLY_BRANDS`: `+12125550101=rushbet,+51987654321=roobet` (E.164 number = brand).
pub fn brands(raw: Option<&str>) -> Result<BTreeMap<PhoneE164, Brand>, ConfigError> {
    let err = |message: String| ConfigError {
        var: "SMS_REPLY_BRANDS",
        message,
    };
    let region = PhoneRegion::parse("US").expect("a region");
    raw.unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (number, brand) = pair
                .split_once('=')
                .ok_or_else(|| err(format!("{pair:?} is not <+number>=<brand>")))?;
            let number = PhoneE164::parse(number.trim(), region).map_err(|e| err(e.message))?;
            let brand = Brand::parse(brand).map_err(|e| err(e.message))?;
            Ok((number, brand))
        })
        .collect()
}

/// The reply as End User Messaging publishes it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Reply {
    pub origination_number: String,
    #[serde(default)]
    pub destination_number: Option<String>,
    pub message_body: String,
    #[serde(default)]
    pub inbound_message_id: Option<String>,
}

pub async fn handle(deps: &Deps, event: SnsEvent) -> Result<usize, StoreError> {
    let region = PhoneRegion::parse("US").expect("a region");
    let mut handled = 0;
    for r in &event.records {
        let reply: Reply = match serde_json::from_str(&r.sns.message) {
            Ok(reply) => reply,
            Err(e) => {
                tracing::error!(sns_message_id = %r.sns.message_id, error = %e, "unreadable SMS reply; dropped");
                continue;
            }
        };
        let Ok(from) = PhoneE164::parse(&reply.origination_number, region) else {
            tracing::error!(sns_message_id = %r.sns.message_id, "SMS reply from an invalid number; dropped");
            continue;
        };
        let brand = reply
            .destination_number
            .as_deref()
            .and_then(|to| PhoneE164::parse(to, region).ok())
            .and_then(|to| deps.brands.get(&to).cloned());
        let now = OffsetDateTime::now_utc();
        let action =
            crm_app::compliance::sms_inbound(&deps.store, &deps.keys, &from, &reply.message_body, brand.clone(), now)
                .await?;
        tracing::info!(
            action = action.as_str(),
            brand = brand.as_ref().map(Brand::as_str),
            inbound_message_id = reply.inbound_message_id.as_deref(),
            "sms reply"
        );
        handled += 1;
    }
    Ok(handled)
}
