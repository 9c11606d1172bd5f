//! The sender's use case, per queued job: claim the message `QUEUED → SENDING` (one
//! conditional write that also returns it), load the customer (following merges) and the
//! brand's settings, decide, render, call the provider, record the outcome.
//!
//! Never twice: only the sender whose claim succeeded calls a provider, and a claim needs
//! `QUEUED`. A redelivered SQS message, or a second sender, finds `SENDING` or a final
//! status and does nothing. A provider answer that the message certainly was not sent
//! (throttling, 5xx, connection refused) puts it back to `PENDING` with a backoff, up to
//! `MAX_ATTEMPTS`, then `FAILED` with the provider's reason. A timeout or unreadable answer
//! means it may have been sent: `FAILED` (`provider_timeout`), never retried. A sender that
//! dies after its claim leaves `SENDING`; when the lease expires the scheduler marks it
//! `FAILED` (`send_interrupted`).

use crm_core::definition::Channel;
use crm_core::message::{Message, Reason, SendJob};
use crm_core::send::{Address, BrandSettings, Decision, SmsProvider, decide};
use crm_core::template::resolve;
use crm_providers::ProviderError;
use crm_providers::ses::OutboundEmail;
use crm_providers::sns::OutboundSms;
use crm_render::{Context, Variables, render};
use crm_store::{Settle, StoreError};
use time::{Duration, OffsetDateTime};

use crate::Deps;

/// How long a sender holds a claimed message (well over the sender's own timeout).
pub const SEND_LEASE: Duration = Duration::minutes(2);
/// Provider calls that certainly did not send, before the message fails.
pub const MAX_ATTEMPTS: u32 = 5;

fn backoff(attempt: u32) -> Duration {
    match attempt {
        0 | 1 => Duration::minutes(1),
        2 => Duration::minutes(5),
        3 => Duration::minutes(15),
        _ => Duration::hours(1),
    }
}

/// What became of one job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivered {
    /// Someone else has (or had) this message: nothing done.
    NotMine,
    /// The message as recorded.
    Settled(Box<Message>),
}

/// Sends `job`'s message unless someone else has it. `claim` identifies this receive of the
/// job (a redelivery is another receive, so it can never re-claim a message a stopped
/// sender left `SENDING`).
pub async fn deliver(deps: &Deps, job: &SendJob, claim: &str, now: OffsetDateTime) -> Result<Delivered, StoreError> {
    let store = &deps.store;
    let Some(message) = store
        .claim_message(&job.customer_id, &job.message_id, claim, now + SEND_LEASE, now)
        .await?
    else {
        return Ok(Delivered::NotMine);
    };
    let outcome = match prepare(deps, &message, now).await {
        Ok(outcome) => outcome,
        Err(e) => {
            // Nothing was sent: give the message back rather than wait for its lease.
            let retry = Settle::Deferred {
                until: now + backoff(1),
                reason: Reason::Retrying,
                attempts: message.attempts,
                error: None,
            };
            let _ = store
                .settle_message(&message.customer_id, &message.message_id, retry, now)
                .await;
            return Err(e);
        }
    };
    let outcome = match outcome {
        Prepared::Settle(s) => s,
        Prepared::Send(send) => send.go(deps, &message, now).await,
    };
    record(deps, &message, outcome, now).await
}

/// Records the outcome; retried briefly, since after a provider call it is the only trace.
async fn record(deps: &Deps, message: &Message, outcome: Settle, now: OffsetDateTime) -> Result<Delivered, StoreError> {
    let mut pause = std::time::Duration::from_millis(100);
    for attempt in 0.. {
        match deps
            .store
            .settle_message(&message.customer_id, &message.message_id, outcome.clone(), now)
            .await
        {
            Ok(Some(m)) => {
                tracing::info!(customer_id = %m.customer_id, message_id = %m.message_id, status = m.status.as_str(),
                    reason = m.reason.map(|r| r.as_str()), dry_run = m.dry_run,
                    provider_message_id = m.provider_message_id.as_deref(), "message settled");
                return Ok(Delivered::Settled(Box::new(m)));
            }
            Ok(None) => return Ok(Delivered::NotMine),
            Err(e) if attempt < 4 => {
                tracing::warn!(error = %e, message_id = %message.message_id, "recording the outcome failed; retrying");
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
            Err(e) => {
                let provider_message_id = match &outcome {
                    Settle::Sent {
                        provider_message_id, ..
                    } => provider_message_id.clone(),
                    _ => None,
                };
                tracing::error!(error = %e, message_id = %message.message_id, outcome = outcome_kind(&outcome),
                    provider_message_id = provider_message_id.as_deref(),
                    "could not record the outcome: the message stays SENDING until its lease, then FAILED");
                return Err(e);
            }
        }
    }
    unreachable!("the loop returns")
}

fn outcome_kind(outcome: &Settle) -> &'static str {
    match outcome {
        Settle::Sent { .. } => "sent",
        Settle::Failed { .. } => "failed",
        Settle::Skipped(_) => "skipped",
        Settle::Cancelled(_) => "cancelled",
        Settle::Deferred { .. } => "deferred",
    }
}

enum Prepared {
    Settle(Settle),
    Send(Box<Send>),
}

struct Send {
    to: Address,
    dry_run: bool,
    settings: BrandSettings,
    template_id: String,
    subject: Option<String>,
    body: String,
    text: String,
}

/// Loads, decides and renders: everything before the provider call.
async fn prepare(deps: &Deps, message: &Message, now: OffsetDateTime) -> Result<Prepared, StoreError> {
    let customer = deps.store.current_profile(&message.customer_id).await?;
    let settings = deps.catalog.settings(&message.brand).await?;
    let (to, dry_run) = match decide(message, customer.as_ref(), &settings, deps.config.real_sending, now) {
        Decision::Send { to, dry_run } => (to, dry_run),
        Decision::Cancel(r) => return Ok(Prepared::Settle(Settle::Cancelled(r))),
        Decision::Skip(r) => return Ok(Prepared::Settle(Settle::Skipped(r))),
        Decision::Defer { until, reason } => {
            return Ok(Prepared::Settle(Settle::Deferred {
                until,
                reason,
                attempts: message.attempts,
                error: None,
            }));
        }
    };
    let customer = customer.expect("decide sends only to an existing customer");
    let templates = deps.catalog.templates(&message.brand).await?;
    let Some(template) = resolve(&templates, &message.step(), &message.brand, &settings.language) else {
        return Ok(Prepared::Settle(Settle::Failed {
            reason: Reason::NoTemplate,
            error: None,
        }));
    };
    let ctx = Context {
        brand: &message.brand,
        journey_type: message.journey_type,
        stage: message.stage,
        unsubscribe_url: None,
    };
    let compiled = deps.catalog.compiled(template);
    let rendered = match compiled.and_then(|c| render(&c, &Variables::new(&customer, ctx))) {
        Ok(r) => r,
        Err(e) => {
            return Ok(Prepared::Settle(Settle::Failed {
                reason: Reason::RenderFailed,
                error: Some(format!("{}: {}", template.template_id, e)),
            }));
        }
    };
    Ok(Prepared::Send(Box::new(Send {
        to,
        dry_run,
        settings,
        template_id: template.template_id.clone(),
        subject: rendered.subject,
        body: rendered.body,
        text: rendered.text,
    })))
}

impl Send {
    async fn go(self, deps: &Deps, message: &Message, now: OffsetDateTime) -> Settle {
        let result = if self.dry_run {
            Ok(None)
        } else {
            self.call_provider(deps, message, now).await.map(Some)
        };
        match result {
            Ok(receipt) => Settle::Sent {
                at: now,
                dry_run: self.dry_run,
                provider: receipt.as_ref().map(|r| r.provider.to_owned()),
                provider_message_id: receipt.map(|r| r.message_id),
                to: self.to.as_str().to_owned(),
                template_id: self.template_id,
                subject: self.subject,
                body: self.body,
            },
            Err(ProviderError::Retryable { message: error, .. }) if message.attempts + 1 < MAX_ATTEMPTS => {
                Settle::Deferred {
                    until: now + backoff(message.attempts + 1),
                    reason: Reason::Retrying,
                    attempts: message.attempts + 1,
                    error: Some(error),
                }
            }
            Err(ProviderError::Unknown { message: error, .. }) => Settle::Failed {
                reason: Reason::ProviderTimeout,
                error: Some(error),
            },
            Err(e) => Settle::Failed {
                reason: Reason::ProviderError,
                error: Some(e.message().to_owned()),
            },
        }
    }

    async fn call_provider(
        &self,
        deps: &Deps,
        message: &Message,
        now: OffsetDateTime,
    ) -> Result<crm_providers::Receipt, ProviderError> {
        match (&self.to, message.channel) {
            (Address::Email(to), Channel::Email) => {
                let email = OutboundEmail {
                    from: self.settings.from_email.clone(),
                    from_name: self.settings.from_name.clone(),
                    to: to.clone(),
                    subject: self.subject.clone().unwrap_or_default(),
                    html: self.body.clone(),
                    text: self.text.clone(),
                    message_id: message.message_id.clone(),
                    headers: Vec::new(),
                };
                deps.ses.send(&email).await
            }
            (Address::Phone(to), Channel::Sms) => {
                let mut sms = OutboundSms {
                    to: to.clone(),
                    text: self.text.clone(),
                    sender_id: deps.config.sns_sender_id.clone(),
                    message_id: message.message_id.clone(),
                    transactional: false,
                };
                match self.settings.sms_provider {
                    SmsProvider::Sns => deps.sns.send(&sms).await,
                    SmsProvider::Laaffic => {
                        sms.sender_id = self.settings.laaffic_sender_id.clone();
                        match &deps.laaffic {
                            Some(l) => l.send(&sms, now.unix_timestamp()).await,
                            None => Err(ProviderError::Rejected {
                                provider: crm_providers::laaffic::PROVIDER,
                                message:
                                    "Laaffic is not configured (LAAFFIC_API_KEY, LAAFFIC_API_SECRET, LAAFFIC_APP_ID)"
                                        .into(),
                            }),
                        }
                    }
                }
            }
            _ => Err(ProviderError::Rejected {
                provider: "none",
                message: "address does not match the channel".into(),
            }),
        }
    }
}
