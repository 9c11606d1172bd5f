//! SES bounce and complaint notifications: a permanent bounce or a complaint suppresses the
//! address for every brand at once and marks the message `BOUNCED` or `COMPLAINED`
//! (matched by SES's message id); transient bounces are counted, and three within a week
//! suppress the address too. Every write is idempotent, so SNS may deliver a notification
//! again.

use crm_core::compliance::{Scope, Suppression, SuppressionReason};
use crm_core::definition::Channel;
use crm_core::message::Status;
use crm_core::values::{CustomerId, Email, parse_ts};
use crm_providers::ses_feedback::{Feedback, Notification};
use crm_store::StoreError;
use time::OffsetDateTime;

use crate::Deps;
use crate::sender::{TAG_CUSTOMER, TAG_MESSAGE};

/// Transient bounces within a week that suppress an address.
pub const TRANSIENT_LIMIT: usize = 3;

/// What one notification did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recorded {
    pub suppressed: usize,
    pub message_marked: bool,
}

pub async fn record(deps: &Deps, n: &Notification, now: OffsetDateTime) -> Result<Recorded, StoreError> {
    let keys = deps.config.keys().map_err(|e| StoreError::Rejected(e.to_string()))?;
    let at = n.timestamp.as_deref().and_then(|t| parse_ts(t).ok()).unwrap_or(now);
    let (recipients, status, reason) = match &n.feedback {
        Feedback::Bounce { permanent, recipients } => (
            recipients,
            permanent.then_some(Status::Bounced),
            SuppressionReason::Bounced,
        ),
        Feedback::Complaint { recipients } => (recipients, Some(Status::Complained), SuppressionReason::Complained),
        Feedback::Other(_) => return Ok(Recorded::default()),
    };
    let mut done = Recorded::default();
    for raw in recipients {
        let Ok(address) = Email::parse(raw) else {
            tracing::warn!("SES notification names an address that does not parse; skipped");
            continue;
        };
        let hash = keys.address_hash(Channel::Email, address.as_str());
        let source = match status {
            Some(Status::Complained) => "ses_complaint",
            Some(_) => "ses_bounce",
            None => {
                let count = deps.store.record_transient_bounce(&hash, &n.feedback_id, at).await?;
                if count < TRANSIENT_LIMIT {
                    continue;
                }
                "ses_transient_bounces"
            }
        };
        deps.store
            .suppress(&Suppression {
                channel: Channel::Email,
                address: Some(address.to_string()),
                address_hash: hash,
                scope: Scope::All,
                reason,
                at,
                source: source.to_owned(),
            })
            .await?;
        done.suppressed += 1;
    }
    let tagged = n
        .tag(TAG_CUSTOMER)
        .and_then(|c| CustomerId::parse(c).ok())
        .zip(n.tag(TAG_MESSAGE));
    if let (Some(status), Some((customer, message_id))) = (status, tagged) {
        let detail = match &n.feedback {
            Feedback::Complaint { .. } => "complaint",
            _ => "permanent bounce",
        };
        done.message_marked = deps
            .store
            .mark_delivery_failure(&customer, message_id, &n.ses_message_id, status, detail, now)
            .await?;
    }
    tracing::info!(ses_message_id = %n.ses_message_id, kind = ?status, suppressed = done.suppressed,
        message_marked = done.message_marked, "SES feedback recorded");
    Ok(done)
}
