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

use std::collections::BTreeMap;

use crm_app::metrics::{Metrics, Unit};
use crm_core::caps::{SendLog, Sent};
use crm_core::compliance::{Scope, Suppression, SuppressionReason};
use crm_core::definition::Channel;
use crm_core::message::{Message, Reason, SendJob};
use crm_core::send::{Address, BrandSettings, Decision, Facts, Gate, SmsProvider, address, decide, gates, held_back};
use crm_core::template::resolve;
use crm_core::unsubscribe::Keys;
use crm_providers::ProviderError;
use crm_providers::ses::OutboundEmail;
use crm_providers::sns::OutboundSms;
use crm_render::{Context, Variables, append_sms_opt_out, append_unsubscribe_footer, confirmation_email, render};
use crm_store::{Settle, StoreError};
use time::{Duration, OffsetDateTime};

use crate::Deps;

/// How long a sender holds a claimed message (well over the sender's own timeout).
pub const SEND_LEASE: Duration = Duration::minutes(2);
/// Provider calls that certainly did not send, before the message fails.
pub const MAX_ATTEMPTS: u32 = 5;
/// SES message tags naming the message: bounce and complaint events carry them back.
pub const TAG_CUSTOMER: &str = "crm_customer";
pub const TAG_MESSAGE: &str = "crm_message";

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
    /// The recipient's unsubscribe link (email).
    unsubscribe_url: Option<String>,
}

/// How many times a send is decided again after another sender changed the person's send
/// log between our read and our write.
const CAP_RACES: usize = 4;

/// Loads, decides and renders: everything before the provider call. A message allowed to
/// go is counted against the person's caps here, before the provider call: a message
/// counts from the moment it is allowed, whether or not the provider then accepts it.
async fn prepare(deps: &Deps, message: &Message, now: OffsetDateTime) -> Result<Prepared, StoreError> {
    let store = &deps.store;
    let customer = store.current_profile(&message.customer_id).await?;
    let settings = deps.catalog.settings(&message.brand).await?;
    let mut policies = BTreeMap::new();
    for brand in customer.iter().flat_map(|c| c.exclusions.keys()) {
        let policy = deps.catalog.settings(brand).await?.responsible_gambling;
        policies.insert(brand.clone(), policy);
    }
    let keys = deps.config.keys().map_err(|e| StoreError::Rejected(e.to_string()))?;
    let recipient = customer
        .as_ref()
        .and_then(|c| address(c, message.channel).map(|a| (c, a)));
    let hash = recipient
        .as_ref()
        .map(|(_, to)| keys.address_hash(message.channel, to.as_str()));
    let (mut suppressions, mut log) = match (&recipient, &hash) {
        (Some((c, _)), Some(hash)) => tokio::try_join!(
            store.suppressions(message.channel, hash),
            store.send_log(&c.id, message.channel)
        )?,
        _ => (Vec::new(), SendLog::default()),
    };
    // SNS's opt-out list is asked only about a message the other rules would send.
    let mut sns_checked = false;
    let mut gated = false;
    let mut races = 0;
    let (to, dry_run) = loop {
        let facts = Facts {
            customer: customer.as_ref(),
            settings: &settings,
            policies: &policies,
            suppressions: &suppressions,
            log: &log,
            real_sending: deps.config.real_sending,
            now,
        };
        match decide(message, &facts) {
            Decision::Send { to, dry_run } => {
                if !sns_checked {
                    sns_checked = true;
                    let hash = hash.as_deref().expect("decide sends only to an address");
                    if let Some(entry) = sns_opt_out(deps, &settings, &to, hash, now).await {
                        suppressions.push(entry);
                        continue;
                    }
                }
                let person = &customer.as_ref().expect("decide sends only to an existing customer").id;
                if log.counts(&message.message_id) {
                    break (to, dry_run);
                }
                // The counted limits, once, before the message counts against the caps.
                if !gated {
                    gated = true;
                    for gate in gates(message, &facts, &to, dry_run) {
                        if let Some(held) = take(deps, message, &gate, now).await? {
                            return Ok(Prepared::Settle(held));
                        }
                    }
                }
                let sent = Sent {
                    message_id: message.message_id.clone(),
                    brand: message.brand.clone(),
                    at: now,
                };
                if store
                    .record_send(person, message.channel, &log, &log.with(sent))
                    .await?
                {
                    break (to, dry_run);
                }
                races += 1;
                if races >= CAP_RACES {
                    return Ok(Prepared::Settle(Settle::Deferred {
                        until: now + Duration::seconds(30),
                        reason: Reason::FrequencyCap,
                        attempts: message.attempts,
                        error: None,
                    }));
                }
                log = store.send_log(person, message.channel).await?;
            }
            Decision::Confirm { to, until } => {
                let customer = customer
                    .as_ref()
                    .expect("decide confirms only an existing customer's address");
                return ask_confirmation(deps, message, customer, &settings, keys, &to, until, now).await;
            }
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
    let unsubscribe_url = match message.channel {
        Channel::Email => Some(unsubscribe_url(deps, keys, message, &to)?),
        Channel::Sms => None,
    };
    let brand_name = settings.display_name(&message.brand);
    let ctx = Context {
        brand: &message.brand,
        journey_type: message.journey_type,
        stage: message.stage,
        brand_name: &brand_name,
        unsubscribe_url: unsubscribe_url.as_deref(),
    };
    let rendered = deps.catalog.compiled(template).and_then(|c| {
        let mut r = render(&c, &Variables::new(&customer, ctx))?;
        match (&unsubscribe_url, c.places_unsubscribe) {
            (Some(url), false) => append_unsubscribe_footer(&mut r, url, &brand_name, &settings.language),
            (None, _) => append_sms_opt_out(&mut r, settings.sms_opt_out()),
            _ => {}
        }
        Ok(r)
    });
    let rendered = match rendered {
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
        unsubscribe_url,
    })))
}

/// Double opt-in: sends the address its brand's confirmation email, once per address and
/// brand (a claimed item; given back if SES refuses), and waits for the confirmation until
/// `until`. Confirming wakes the message (the journey function).
#[allow(clippy::too_many_arguments)]
async fn ask_confirmation(
    deps: &Deps,
    message: &Message,
    customer: &crm_core::profile::Profile,
    settings: &BrandSettings,
    keys: &Keys,
    to: &Address,
    until: OffsetDateTime,
    now: OffsetDateTime,
) -> Result<Prepared, StoreError> {
    let Address::Email(email) = to else {
        unreachable!("only email addresses are confirmed");
    };
    let hash = keys.address_hash(Channel::Email, email.as_str());
    let wait = Settle::Deferred {
        until,
        reason: Reason::Unconfirmed,
        attempts: message.attempts,
        error: None,
    };
    if !deps
        .store
        .claim_confirmation(Channel::Email, &hash, &message.brand, now)
        .await?
    {
        return Ok(Prepared::Settle(wait));
    }
    let base = public_base_url(deps)?;
    let url = format!(
        "{base}/confirm/{}",
        keys.confirm_token(&message.brand, &customer.id, &hash)
    );
    let r = confirmation_email(&settings.display_name(&message.brand), &settings.language, &url);
    let dry_run = !deps.config.real_sending || customer.test;
    if !dry_run {
        let outbound = OutboundEmail {
            from: settings.from_email.clone(),
            from_name: settings.from_name.clone(),
            to: email.clone(),
            subject: r.subject.unwrap_or_default(),
            html: r.body,
            text: r.text,
            message_id: format!("{}_confirm", message.message_id),
            headers: Vec::new(),
            tags: vec![(TAG_CUSTOMER.to_owned(), message.customer_id.to_string())],
        };
        if let Err(e) = deps.ses.send(&outbound).await {
            deps.store
                .release_confirmation(Channel::Email, &hash, &message.brand)
                .await?;
            return Ok(Prepared::Settle(Settle::Deferred {
                until: now + backoff(1),
                reason: Reason::Retrying,
                attempts: message.attempts,
                error: Some(e.message().to_owned()),
            }));
        }
    }
    tracing::info!(customer_id = %customer.id, brand = %message.brand, dry_run, "double opt-in: confirmation email sent");
    Ok(Prepared::Settle(wait))
}

/// Takes a unit of `gate`'s counter; `Some` (the message deferred) when none is left.
/// Writes what the alarms watch: how much of a budget is used, and each message the burst
/// guard holds back.
async fn take(deps: &Deps, message: &Message, gate: &Gate, now: OffsetDateTime) -> Result<Option<Settle>, StoreError> {
    let taken = match gate.limit {
        0 => None,
        limit => {
            let expires = gate.reopens + Duration::days(2);
            deps.store
                .take_limit(&message.brand, &gate.counter, &gate.period, limit, expires)
                .await?
        }
    };
    let metric = Metrics::new()
        .dimension("Channel", message.channel.as_str())
        .dimension("Brand", message.brand.as_str());
    match (taken, gate.reason) {
        (Some(used), Reason::Budget) => {
            let percent = f64::from(used) * 100.0 / f64::from(gate.limit);
            metric.value("BudgetUsedPercent", percent, Unit::None).emit();
        }
        (Some(_), _) => {}
        (None, reason) => {
            let name = if reason == Reason::Budget {
                "BudgetExhausted"
            } else {
                "NewAddressesHeld"
            };
            metric.count(name, 1).emit();
            tracing::warn!(brand = %message.brand, channel = message.channel.as_str(), counter = gate.counter,
                period = gate.period, limit = gate.limit, "sending limit reached; message deferred");
        }
    }
    if taken.is_some() {
        return Ok(None);
    }
    Ok(Some(match held_back(message, gate, now) {
        Decision::Defer { until, reason } => Settle::Deferred {
            until,
            reason,
            attempts: message.attempts,
            error: None,
        },
        _ => Settle::Skipped(gate.reason),
    }))
}

/// Where the recipient's links point.
fn public_base_url(deps: &Deps) -> Result<&str, StoreError> {
    deps.config
        .public_base_url
        .as_deref()
        .ok_or_else(|| StoreError::Rejected("PUBLIC_BASE_URL is required to send email".into()))
}

/// The recipient's one-click unsubscribe link: a signed token naming the brand and the
/// address's hash, on the public base URL.
fn unsubscribe_url(deps: &Deps, keys: &Keys, message: &Message, to: &Address) -> Result<String, StoreError> {
    let base = public_base_url(deps)?;
    let hash = keys.address_hash(message.channel, to.as_str());
    Ok(format!(
        "{base}/u/{}",
        keys.token(
            message.channel,
            &message.brand,
            &hash,
            &crm_core::values::mask(to.as_str())
        )
    ))
}

/// A number on SNS's own opted-out list, for a brand sending through SNS: suppressed for
/// every brand (recorded, so the list shows it). A failed check is not a reason to send:
/// it is treated as opted out for this attempt only.
async fn sns_opt_out(
    deps: &Deps,
    settings: &BrandSettings,
    to: &Address,
    hash: &str,
    now: OffsetDateTime,
) -> Option<Suppression> {
    let (Address::Phone(phone), SmsProvider::Sns) = (to, settings.sms_provider) else {
        return None;
    };
    let entry = |source: &str| Suppression {
        channel: Channel::Sms,
        address: Some(phone.to_string()),
        address_hash: hash.to_owned(),
        scope: Scope::All,
        reason: SuppressionReason::Unsubscribed,
        at: now,
        source: source.to_owned(),
    };
    match deps.sns.is_opted_out(phone).await {
        Ok(false) => None,
        Ok(true) => {
            let e = entry("sns_opt_out");
            if let Err(err) = deps.store.suppress(&e).await {
                tracing::warn!(error = %err, "recording an SNS opt-out failed");
            }
            Some(e)
        }
        Err(err) => {
            tracing::warn!(error = %err, "checking SNS's opt-out list failed; not sending now");
            Some(entry("sns_opt_out_check_failed"))
        }
    }
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
                let headers = self
                    .unsubscribe_url
                    .iter()
                    .flat_map(|url| {
                        [
                            ("List-Unsubscribe".to_owned(), format!("<{url}>")),
                            (
                                "List-Unsubscribe-Post".to_owned(),
                                "List-Unsubscribe=One-Click".to_owned(),
                            ),
                        ]
                    })
                    .collect();
                let email = OutboundEmail {
                    from: self.settings.from_email.clone(),
                    from_name: self.settings.from_name.clone(),
                    to: to.clone(),
                    subject: self.subject.clone().unwrap_or_default(),
                    html: self.body.clone(),
                    text: self.text.clone(),
                    message_id: message.message_id.clone(),
                    headers,
                    tags: vec![
                        (TAG_CUSTOMER.to_owned(), message.customer_id.to_string()),
                        (TAG_MESSAGE.to_owned(), message.message_id.clone()),
                    ],
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
