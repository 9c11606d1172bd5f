//! The SES events function: SNS delivers the notifications of the sender's configuration set
//! (bounces, complaints, deliveries, rejects and rendering failures). An unreadable notification is logged and dropped (retrying
//! cannot fix it); a DynamoDB failure fails the invocation, so Lambda retries it (twice,
//! then the function's failure destination).
//!
//! Metrics, per recipient: `EmailBounces` (by `Permanent`: SES's bounce rate counts the
//! permanent ones), `EmailComplaints` and `AddressesSuppressed`, the figures SES may pause
//! an account on (bounce rate over 10 %, complaint rate over 0.5 %); per message,
//! `EmailDeliveries` and `EmailsFailedAfterSend` (by `Kind`: `reject`, `rendering`).

use aws_lambda_events::sns::SnsEvent;
use crm_app::metrics::Metrics;
use crm_messaging::Deps;
use crm_messaging::feedback::record;
use crm_providers::ses_feedback::{Feedback, parse};
use crm_store::StoreError;
use time::OffsetDateTime;

pub async fn handle(deps: &Deps, event: SnsEvent) -> Result<usize, StoreError> {
    let mut recorded = 0;
    for r in &event.records {
        match parse(&r.sns.message) {
            Ok(n) => {
                let done = record(deps, &n, OffsetDateTime::now_utc()).await?;
                recorded += 1;
                let metrics = match &n.feedback {
                    Feedback::Bounce { permanent, recipients } => Metrics::new()
                        .dimension("Permanent", permanent.to_string())
                        .count("EmailBounces", recipients.len())
                        .count("AddressesSuppressed", done.suppressed),
                    Feedback::Complaint { recipients } => Metrics::new()
                        .count("EmailComplaints", recipients.len())
                        .count("AddressesSuppressed", done.suppressed),
                    Feedback::Delivery => Metrics::new().count("EmailDeliveries", 1),
                    Feedback::Failure { rendering, .. } => Metrics::new()
                        .dimension("Kind", if *rendering { "rendering" } else { "reject" })
                        .count("EmailsFailedAfterSend", 1),
                    Feedback::Other(_) => continue,
                };
                metrics.emit();
            }
            Err(e) => {
                tracing::error!(sns_message_id = %r.sns.message_id, error = %e, "unreadable SES notification; dropped")
            }
        }
    }
    Ok(recorded)
}
