//! The recipient's own choices: unsubscribe links (and resubscribing), STOP/START by SMS.
//! Each is a write to the suppression list, effective for the very next send (the sender
//! reads the list with every message).

use crm_core::compliance::{Keyword, Scope, Suppression, SuppressionReason, sms_keyword};
use crm_core::definition::Channel;
use crm_core::unsubscribe::{Keys, Token};
use crm_core::values::{Brand, PhoneE164};
use crm_store::{Store, StoreError};
use time::OffsetDateTime;

/// Suppresses the token's address for `scope` (the token's brand, or every brand).
pub async fn unsubscribe(
    store: &Store,
    token: &Token,
    all_brands: bool,
    source: &str,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    let scope = if all_brands {
        Scope::All
    } else {
        Scope::Brand(token.brand.clone())
    };
    store
        .suppress(&Suppression {
            channel: token.channel,
            address: None,
            address_hash: token.address_hash.clone(),
            scope,
            reason: SuppressionReason::Unsubscribed,
            at: now,
            source: source.to_owned(),
        })
        .await?;
    tracing::info!(channel = token.channel.as_str(), brand = %token.brand, all_brands, source, "unsubscribed");
    Ok(())
}

/// Lifts the recipient's own unsubscribes of the token's address (for its brand and for
/// all brands); bounces, complaints and operators' entries stay.
pub async fn resubscribe(store: &Store, token: &Token) -> Result<(), StoreError> {
    for scope in [Scope::Brand(token.brand.clone()), Scope::All] {
        store
            .unsuppress(
                token.channel,
                &token.address_hash,
                &scope,
                Some(SuppressionReason::Unsubscribed),
            )
            .await?;
    }
    tracing::info!(channel = token.channel.as_str(), brand = %token.brand, "resubscribed");
    Ok(())
}

/// Whether the address is suppressed for the token's brand, and for every brand.
pub async fn unsubscribed(store: &Store, token: &Token) -> Result<(bool, bool), StoreError> {
    let entries = store.suppressions(token.channel, &token.address_hash).await?;
    let brand = entries.iter().any(|e| e.scope.covers(&token.brand));
    let all = entries.iter().any(|e| e.scope == Scope::All);
    Ok((brand, all))
}

/// What an inbound SMS did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmsAction {
    OptedOut,
    OptedIn,
    /// Not a keyword: nothing changed.
    Ignored,
}

impl SmsAction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OptedOut => "opted_out",
            Self::OptedIn => "opted_in",
            Self::Ignored => "ignored",
        }
    }
}

/// STOP (and its aliases) suppresses the number for `brand` (when the provider's webhook
/// names one) or for every brand; START lifts the number's own opt-outs.
pub async fn sms_inbound(
    store: &Store,
    keys: &Keys,
    from: &PhoneE164,
    text: &str,
    brand: Option<Brand>,
    now: OffsetDateTime,
) -> Result<SmsAction, StoreError> {
    let hash = keys.address_hash(Channel::Sms, from.as_str());
    let scope = brand.map_or(Scope::All, Scope::Brand);
    match sms_keyword(text) {
        Some(Keyword::OptOut) => {
            store
                .suppress(&Suppression {
                    channel: Channel::Sms,
                    address: Some(from.to_string()),
                    address_hash: hash,
                    scope,
                    reason: SuppressionReason::Unsubscribed,
                    at: now,
                    source: "sms_inbound".into(),
                })
                .await?;
            Ok(SmsAction::OptedOut)
        }
        Some(Keyword::OptIn) => {
            for entry in store.suppressions(Channel::Sms, &hash).await? {
                let mine = scope == Scope::All || entry.scope == scope;
                if mine && entry.reason.lifted_by_recipient() {
                    store
                        .unsuppress(Channel::Sms, &hash, &entry.scope, Some(SuppressionReason::Unsubscribed))
                        .await?;
                }
            }
            Ok(SmsAction::OptedIn)
        }
        None => Ok(SmsAction::Ignored),
    }
}
