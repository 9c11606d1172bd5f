//! The SES events function: SNS delivers the notifications of the sender's configuration set
//! (bounces and complaints). An unreadable notification is logged and dropped (retrying
//! cannot fix it); a DynamoDB failure fails the invocation, so Lambda retries it (twice,
//! then the function's failure destination).

use aws_lambda_events::sns::SnsEvent;
use crm_messaging::Deps;
use crm_messaging::feedback::record;
use crm_providers::ses_feedback::parse;
use crm_store::StoreError;
use time::OffsetDateTime;

pub async fn handle(deps: &Deps, event: SnsEvent) -> Result<usize, StoreError> {
    let mut recorded = 0;
    for r in &event.records {
        match parse(&r.sns.message) {
            Ok(n) => {
                record(deps, &n, OffsetDateTime::now_utc()).await?;
                recorded += 1;
            }
            Err(e) => {
                tracing::error!(sns_message_id = %r.sns.message_id, error = %e, "unreadable SES notification; dropped")
            }
        }
    }
    Ok(recorded)
}
