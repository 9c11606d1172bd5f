//! The sender's use case, per queued job: claim the message `QUEUED → SENDING` (one
//! conditional write that also returns it), then load (the customer after merges, the
//! brand's settings, the address's suppressions, the person's send log) → decide (pure,
//! `crm_core::send::decide`) → gate (SNS's opt-out list, the brand's counted limits, the
//! person's caps) → compose (template, links) → send (the provider chosen by channel and
//! brand) → record the outcome.
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

use crm_app::config::ConfigError;
use crm_app::metrics::{Metrics, Unit};
use crm_core::caps::{SendLog, Sent};
use crm_core::compliance::{ExclusionPolicy, Scope, Suppression, SuppressionReason};
use crm_core::definition::Channel;
use crm_core::message::{Message, Reason, SendJob};
use crm_core::profile::Profile;
use crm_core::send::{
    Address, BrandSettings, Decision, Facts, Gate, Provider, SmsProvider, address, decide, gates, held_back,
};
use crm_core::template::resolve;
use crm_core::unsubscribe::Keys;
use crm_core::values::Brand;
use crm_providers::ses::OutboundEmail;
use crm_providers::sns::OutboundSms;
use crm_providers::{Outbound, ProviderError};
use crm_render::{Context, Variables, append_sms_opt_out, append_unsubscribe_footer, confirmation_email, render};
use crm_store::Settle;
use time::{Duration, OffsetDateTime};

use crate::{Deps, MessagingError};

/// How long a sender holds a claimed message (well over the sender's own timeout).
pub const SEND_LEASE: Duration = Duration::minutes(2);
/// Provider calls that certainly did not send, before the message fails.
pub const MAX_ATTEMPTS: u32 = 5;
/// SES message tags naming the message: SES's events about it carry them back.
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
pub async fn deliver(
    deps: &Deps,
    job: &SendJob,
    claim: &str,
    now: OffsetDateTime,
) -> Result<Delivered, MessagingError> {
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
    Ok(record(deps, &message, outcome, now).await?)
}

/// Records the outcome; retried briefly, since after a provider call it is the only trace.
async fn record(
    deps: &Deps,
    message: &Message,
    outcome: Settle,
    now: OffsetDateTime,
) -> Result<Delivered, crm_store::StoreError> {
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

/// A message ready for its provider.
struct Send {
    provider: Provider,
    outbound: Outbound,
    to: Address,
    dry_run: bool,
    template_id: String,
    subject: Option<String>,
    body: String,
}

/// How many times a send is decided again after another sender changed the person's send
/// log between our read and our write.
const CAP_RACES: usize = 4;

/// Everything before the provider call. A message allowed to go is counted against the
/// person's caps here: it counts from the moment it is allowed, whether or not the
/// provider then accepts it.
async fn prepare(deps: &Deps, message: &Message, now: OffsetDateTime) -> Result<Prepared, MessagingError> {
    let keys = deps.config.keys()?;
    let mut loaded = load(deps, keys, message).await?;
    match gate(deps, message, &mut loaded, now).await? {
        Gated::Go { to, dry_run } => compose(deps, keys, message, loaded, to, dry_run).await,
        Gated::Confirm { to, until } => {
            let customer = loaded
                .customer
                .as_ref()
                .expect("decide confirms only an existing customer");
            ask_confirmation(deps, message, customer, &loaded.settings, keys, &to, until, now).await
        }
        Gated::Settle(settle) => Ok(Prepared::Settle(settle)),
    }
}

/// What the decision reads.
struct Loaded {
    /// The customer after following merges; `None` if gone.
    customer: Option<Profile>,
    settings: BrandSettings,
    policies: BTreeMap<Brand, ExclusionPolicy>,
    /// The keyed hash of the recipient's address, when there is one.
    hash: Option<String>,
    suppressions: Vec<Suppression>,
    log: SendLog,
}

impl Loaded {
    fn facts(&self, deps: &Deps, now: OffsetDateTime) -> Facts<'_> {
        Facts {
            customer: self.customer.as_ref(),
            settings: &self.settings,
            policies: &self.policies,
            suppressions: &self.suppressions,
            log: &self.log,
            real_sending: deps.config.real_sending,
            now,
        }
    }
}

async fn load(deps: &Deps, keys: &Keys, message: &Message) -> Result<Loaded, MessagingError> {
    let store = &deps.store;
    let customer = store.current_profile(&message.customer_id).await?;
    let settings = deps.catalog.settings(&message.brand).await?;
    let mut policies = BTreeMap::new();
    for brand in customer.iter().flat_map(|c| c.exclusions.keys()) {
        let policy = deps.catalog.settings(brand).await?.responsible_gambling;
        policies.insert(brand.clone(), policy);
    }
    let recipient = customer
        .as_ref()
        .and_then(|c| address(c, message.channel).map(|to| (c.id.clone(), to)));
    let hash = recipient
        .as_ref()
        .map(|(_, to)| keys.address_hash(message.channel, to.as_str()));
    let (suppressions, log) = match (&recipient, &hash) {
        (Some((person, _)), Some(hash)) => tokio::try_join!(
            store.suppressions(message.channel, hash),
            store.send_log(person, message.channel)
        )?,
        _ => (Vec::new(), SendLog::default()),
    };
    Ok(Loaded {
        customer,
        settings,
        policies,
        hash,
        suppressions,
        log,
    })
}

/// What the gates let through.
enum Gated {
    Go { to: Address, dry_run: bool },
    Confirm { to: Address, until: OffsetDateTime },
    Settle(Settle),
}

/// Decides, then passes the gates a message allowed to go must pass: SNS's opt-out list
/// (asked only about a message the other rules would send), the brand's counted limits
/// (taken once), and the person's caps (a conditional write; decided again when another
/// sender changed the log first).
async fn gate(deps: &Deps, message: &Message, l: &mut Loaded, now: OffsetDateTime) -> Result<Gated, MessagingError> {
    let (mut sns_checked, mut limits_taken, mut races) = (false, false, 0);
    loop {
        let (to, dry_run) = match decide(message, &l.facts(deps, now)) {
            Decision::Send { to, dry_run } => (to, dry_run),
            Decision::Confirm { to, until } => return Ok(Gated::Confirm { to, until }),
            Decision::Cancel(r) => return Ok(Gated::Settle(Settle::Cancelled(r))),
            Decision::Skip(r) => return Ok(Gated::Settle(Settle::Skipped(r))),
            Decision::Defer { until, reason } => return Ok(Gated::Settle(deferred(message, until, reason))),
        };
        if !sns_checked {
            sns_checked = true;
            let hash = l.hash.as_deref().expect("decide sends only to an address");
            if let Some(entry) = sns_opt_out(deps, &l.settings, &to, hash, now).await {
                l.suppressions.push(entry);
                continue;
            }
        }
        if l.log.counts(&message.message_id) {
            return Ok(Gated::Go { to, dry_run });
        }
        if !limits_taken {
            limits_taken = true;
            for gate in gates(message, &l.facts(deps, now), &to, dry_run) {
                if let Some(held) = take(deps, message, &gate, now).await? {
                    return Ok(Gated::Settle(held));
                }
            }
        }
        if reserve(deps, message, l, now).await? {
            return Ok(Gated::Go { to, dry_run });
        }
        races += 1;
        if races >= CAP_RACES {
            let retry = now + Duration::seconds(30);
            return Ok(Gated::Settle(deferred(message, retry, Reason::FrequencyCap)));
        }
    }
}

fn deferred(message: &Message, until: OffsetDateTime, reason: Reason) -> Settle {
    Settle::Deferred {
        until,
        reason,
        attempts: message.attempts,
        error: None,
    }
}

/// Counts the message against the person's caps: their send log replaced at the version
/// read. `false` when another sender changed it first; the log is then read again.
async fn reserve(deps: &Deps, message: &Message, l: &mut Loaded, now: OffsetDateTime) -> Result<bool, MessagingError> {
    let person = &l
        .customer
        .as_ref()
        .expect("decide sends only to an existing customer")
        .id;
    let sent = Sent {
        message_id: message.message_id.clone(),
        brand: message.brand.clone(),
        at: now,
    };
    if deps
        .store
        .record_send(person, message.channel, &l.log, &l.log.with(sent))
        .await?
    {
        return Ok(true);
    }
    l.log = deps.store.send_log(person, message.channel).await?;
    Ok(false)
}

/// The brand's template for the step, rendered for the customer, with the unsubscribe
/// footer or the SMS opt-out line, as its provider takes it.
async fn compose(
    deps: &Deps,
    keys: &Keys,
    message: &Message,
    loaded: Loaded,
    to: Address,
    dry_run: bool,
) -> Result<Prepared, MessagingError> {
    let Loaded { customer, settings, .. } = loaded;
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
    let provider = settings.provider(message.channel);
    let outbound = match &to {
        Address::Email(email) => Outbound::Email(OutboundEmail {
            from: settings.from_email.clone(),
            from_name: settings.from_name.clone(),
            to: email.clone(),
            subject: rendered.subject.clone().unwrap_or_default(),
            html: rendered.body.clone(),
            text: rendered.text,
            message_id: message.message_id.clone(),
            headers: unsubscribe_url.iter().flat_map(|url| one_click_headers(url)).collect(),
            tags: vec![
                (TAG_CUSTOMER.to_owned(), message.customer_id.to_string()),
                (TAG_MESSAGE.to_owned(), message.message_id.clone()),
            ],
        }),
        Address::Phone(phone) => Outbound::Sms(OutboundSms {
            to: phone.clone(),
            text: rendered.text,
            sender_id: sms_sender_id(deps, &settings, provider),
            message_id: message.message_id.clone(),
            transactional: false,
        }),
    };
    Ok(Prepared::Send(Box::new(Send {
        provider,
        outbound,
        to,
        dry_run,
        template_id: template.template_id.clone(),
        subject: rendered.subject,
        body: rendered.body,
    })))
}

/// RFC 8058 one-click unsubscribe headers (unfolded).
fn one_click_headers(url: &str) -> [(String, String); 2] {
    [
        ("List-Unsubscribe".to_owned(), format!("<{url}>")),
        (
            "List-Unsubscribe-Post".to_owned(),
            "List-Unsubscribe=One-Click".to_owned(),
        ),
    ]
}

/// The SMS sender id: the brand's Laaffic sender id through Laaffic, the deployment's
/// through SNS.
pub fn sms_sender_id(deps: &Deps, settings: &BrandSettings, provider: Provider) -> Option<String> {
    match provider {
        Provider::Laaffic => settings.laaffic_sender_id.clone(),
        _ => deps.config.sns_sender_id.clone(),
    }
}

/// Double opt-in: sends the address its brand's confirmation email, once per address and
/// brand (a claimed item; given back if SES refuses), and waits for the confirmation until
/// `until`. Confirming wakes the message (the journey function).
#[allow(clippy::too_many_arguments)]
async fn ask_confirmation(
    deps: &Deps,
    message: &Message,
    customer: &Profile,
    settings: &BrandSettings,
    keys: &Keys,
    to: &Address,
    until: OffsetDateTime,
    now: OffsetDateTime,
) -> Result<Prepared, MessagingError> {
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
async fn take(
    deps: &Deps,
    message: &Message,
    gate: &Gate,
    now: OffsetDateTime,
) -> Result<Option<Settle>, MessagingError> {
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
fn public_base_url(deps: &Deps) -> Result<&str, ConfigError> {
    deps.config.public_base_url.as_deref().ok_or_else(|| ConfigError {
        var: "PUBLIC_BASE_URL",
        message: "is required to send email".into(),
    })
}

/// The recipient's one-click unsubscribe link: a signed token naming the brand and the
/// address's hash, on the public base URL.
fn unsubscribe_url(deps: &Deps, keys: &Keys, message: &Message, to: &Address) -> Result<String, ConfigError> {
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
        let result = match self.dry_run {
            true => Ok(None),
            false => match deps.provider(self.provider) {
                Ok(provider) => provider.send(&self.outbound).await.map(Some),
                Err(e) => Err(e),
            },
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
}
