//! SES's notifications about the messages it accepted. A permanent bounce or a complaint
//! suppresses the address for every brand at once and marks the message `BOUNCED` or
//! `COMPLAINED` (matched by SES's message id); transient bounces are counted, and three
//! within a week suppress the address too. A delivery marks the message `DELIVERED`; a
//! reject or a rendering failure `FAILED` with SES's reason. Every write is idempotent and
//! reports may come in any order ([`Status::reported_from`]), so SNS may deliver a
//! notification again, or late.

use crm_core::compliance::{Scope, Suppression, SuppressionReason};
use crm_core::definition::Channel;
use crm_core::message::{Reason, Report, Status};
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

/// What a notification says about the message itself (`None`: nothing to record on it).
pub fn report(feedback: &Feedback, at: OffsetDateTime) -> Option<Report> {
    let (status, reason, error) = match feedback {
        Feedback::Bounce { permanent: true, .. } => (Status::Bounced, None, Some("permanent bounce".to_owned())),
        Feedback::Complaint { .. } => (Status::Complained, None, Some("complaint".to_owned())),
        Feedback::Delivery => (Status::Delivered, None, None),
        Feedback::Failure { rendering, reason } => {
            let (r, what) = match rendering {
                true => (Reason::RenderFailed, "SES rendering failure"),
                false => (Reason::ProviderError, "SES rejected it"),
            };
            (Status::Failed, Some(r), Some(format!("{what}: {reason}")))
        }
        Feedback::Bounce { permanent: false, .. } | Feedback::Other(_) => return None,
    };
    Some(Report {
        status,
        reason,
        error,
        at,
    })
}

pub async fn record(deps: &Deps, n: &Notification, now: OffsetDateTime) -> Result<Recorded, StoreError> {
    let at = n.timestamp.as_deref().and_then(|t| parse_ts(t).ok()).unwrap_or(now);
    let mut done = Recorded {
        suppressed: suppress(deps, n, at).await?,
        message_marked: false,
    };
    let tagged = n
        .tag(TAG_CUSTOMER)
        .and_then(|c| CustomerId::parse(c).ok())
        .zip(n.tag(TAG_MESSAGE));
    let report = report(&n.feedback, at);
    if let (Some(report), Some((customer, message_id))) = (&report, tagged) {
        done.message_marked = deps
            .store
            .record_report(&customer, message_id, &n.ses_message_id, report, now)
            .await?;
    }
    tracing::info!(ses_message_id = %n.ses_message_id, status = ?report.map(|r| r.status), suppressed = done.suppressed,
        message_marked = done.message_marked, "SES notification recorded");
    Ok(done)
}

/// A bounce's or a complaint's recipients onto the suppression list: how many went on it.
async fn suppress(deps: &Deps, n: &Notification, at: OffsetDateTime) -> Result<usize, StoreError> {
    let (recipients, permanent, reason) = match &n.feedback {
        Feedback::Bounce { permanent, recipients } => (recipients, *permanent, SuppressionReason::Bounced),
        Feedback::Complaint { recipients } => (recipients, true, SuppressionReason::Complained),
        _ => return Ok(0),
    };
    let keys = deps.config.keys().map_err(|e| StoreError::Rejected(e.to_string()))?;
    let mut suppressed = 0;
    for raw in recipients {
        let Ok(address) = Email::parse(raw) else {
            tracing::warn!("SES notification names an address that does not parse; skipped");
            continue;
        };
        let hash = keys.address_hash(Channel::Email, address.as_str());
        let source = match (reason, permanent) {
            (SuppressionReason::Complained, _) => "ses_complaint",
            (_, true) => "ses_bounce",
            (_, false) => {
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
        suppressed += 1;
    }
    Ok(suppressed)
}
