//! A scheduled message and its lifecycle:
//!
//! ```text
//! PENDING ──scheduler claims (lease)──▶ QUEUED ──sender claims (lease)──▶ SENDING ──▶ SENT | FAILED
//!    ▲  │                                  │                                │
//!    │  └─ journey: CANCELLED              ├─ lease expired: queued again   ├─ defer / retry ─▶ PENDING
//!    └──────── sender: defer ──────────────┘                                └─ lease expired: FAILED (send_interrupted)
//!
//! SENT ──SES reports──▶ DELIVERED ──▶ BOUNCED | COMPLAINED     SENT ──▶ FAILED (rejected, rendering failure)
//! ```
//!
//! A message is sent only by the sender that moved it `QUEUED → SENDING`, a conditional
//! write: that claim is what makes sending at-most-once.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::definition::{Channel, Step};
use crate::journey::{Journey, JourneyType};
use crate::values::{Brand, CustomerId, Invalid};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    Pending,
    Queued,
    Sending,
    Sent,
    /// Sent, then the receiving mail server accepted it (SES Delivery event).
    Delivered,
    Failed,
    Skipped,
    Cancelled,
    /// Sent, then bounced permanently (SES).
    Bounced,
    /// Sent, then marked as spam by the recipient (SES).
    Complained,
}

impl Status {
    pub const ALL: [Status; 10] = [
        Self::Pending,
        Self::Queued,
        Self::Sending,
        Self::Sent,
        Self::Delivered,
        Self::Failed,
        Self::Skipped,
        Self::Cancelled,
        Self::Bounced,
        Self::Complained,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Queued => "QUEUED",
            Self::Sending => "SENDING",
            Self::Sent => "SENT",
            Self::Delivered => "DELIVERED",
            Self::Failed => "FAILED",
            Self::Skipped => "SKIPPED",
            Self::Cancelled => "CANCELLED",
            Self::Bounced => "BOUNCED",
            Self::Complained => "COMPLAINED",
        }
    }
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        Self::ALL
            .into_iter()
            .find(|s| s.as_str().eq_ignore_ascii_case(raw.trim()))
            .ok_or_else(|| {
                Invalid::new(
                    "invalid_value",
                    "status must be PENDING, QUEUED, SENDING, SENT, DELIVERED, FAILED, SKIPPED, CANCELLED, BOUNCED or COMPLAINED",
                )
            })
    }
    /// Not yet handed to a provider: may still be cancelled.
    pub fn is_cancellable(self) -> bool {
        matches!(self, Self::Pending | Self::Queued)
    }
    /// Final: nothing moves it any more.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Sent
                | Self::Delivered
                | Self::Failed
                | Self::Skipped
                | Self::Cancelled
                | Self::Bounced
                | Self::Complained
        )
    }
    /// Handed to a provider, or about to be: counts as delivered for deduplication.
    pub fn is_delivered(self) -> bool {
        matches!(
            self,
            Self::Sending | Self::Sent | Self::Delivered | Self::Bounced | Self::Complained
        )
    }
    /// Sent, and not known to have failed since: what may have influenced a conversion.
    pub fn is_sent(self) -> bool {
        matches!(self, Self::Sent | Self::Delivered)
    }
    /// The statuses a provider's later report (SES's delivery, bounce, complaint, reject or
    /// rendering failure) may move a message from to `self`. Reports arrive out of order and
    /// more than once: a delivery never overwrites a bounce, and a report repeated is a no-op
    /// write of the same status.
    pub fn reported_from(self) -> &'static [Status] {
        match self {
            Self::Delivered => &[Self::Sent, Self::Delivered],
            Self::Bounced => &[Self::Sent, Self::Delivered, Self::Bounced],
            Self::Complained => &[Self::Sent, Self::Delivered, Self::Bounced, Self::Complained],
            Self::Failed => &[Self::Sent, Self::Failed],
            _ => &[],
        }
    }
}

/// Why a message was cancelled, skipped, deferred or failed; stable strings for the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// The customer left the stage that scheduled the message.
    StageLeft,
    /// The message belonged to the `unbranded` placeholder journey and a real brand appeared.
    BrandAssigned,
    /// Another message of the same customer (after a merge) covers the same step.
    Duplicate,
    /// No address on the message's channel yet (deferred), or still none at expiry (skipped).
    NoAddress,
    /// The step's expiry passed before the message could go.
    Expired,
    /// The customer no longer exists (erased, or a broken merge chain).
    CustomerGone,
    /// A provider refused the message or kept failing.
    ProviderError,
    /// The provider did not answer in time: whether it sent is unknown, so it is not retried.
    ProviderTimeout,
    /// The sender stopped between claiming the message and recording the provider's answer.
    SendInterrupted,
    /// No template matched the step when it was due.
    NoTemplate,
    /// The template failed to render with this customer's data.
    RenderFailed,
    /// Waiting to retry after a provider error that certainly did not send.
    Retrying,
    /// The address is on the suppression list for the brand.
    Suppressed,
    /// The customer refused marketing, or the brand requires consent and none is recorded.
    NoConsent,
    /// A responsible-gambling exclusion (self-exclusion, cooling-off, closed account) holds.
    SelfExcluded,
    /// A frequency cap is full (deferred until it frees; skipped if the step expires first).
    FrequencyCap,
    /// Quiet time where the recipient is (deferred to the next opening).
    QuietHours,
    /// The customer's data was erased.
    Erased,
    /// The record that entered the stage was voided (its source's data was forged or wrong).
    Voided,
    /// The number is in a country outside the brand's `smsCountries`.
    CountryNotAllowed,
    /// The number is a premium-rate, shared-cost, UAN, voicemail, pager, emergency or
    /// short-code line.
    NumberType,
    /// The brand's daily budget for the channel is spent (deferred to the next UTC day).
    Budget,
    /// More new public-source addresses than the brand's hourly limit (deferred an hour).
    Velocity,
    /// Double opt-in: the address has not been confirmed (deferred; skipped at expiry).
    Unconfirmed,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::StageLeft => "stage_left",
            Self::BrandAssigned => "brand_assigned",
            Self::Duplicate => "duplicate",
            Self::NoAddress => "no_address",
            Self::Expired => "expired",
            Self::CustomerGone => "customer_gone",
            Self::ProviderError => "provider_error",
            Self::ProviderTimeout => "provider_timeout",
            Self::SendInterrupted => "send_interrupted",
            Self::NoTemplate => "no_template",
            Self::RenderFailed => "render_failed",
            Self::Retrying => "retrying",
            Self::Suppressed => "suppressed",
            Self::NoConsent => "no_consent",
            Self::SelfExcluded => "self_excluded",
            Self::FrequencyCap => "frequency_cap",
            Self::QuietHours => "quiet_hours",
            Self::Erased => "erased",
            Self::Voided => "voided",
            Self::CountryNotAllowed => "country_not_allowed",
            Self::NumberType => "number_type",
            Self::Budget => "budget",
            Self::Velocity => "velocity",
            Self::Unconfirmed => "unconfirmed",
        }
    }
}

/// A message as stored and as the admin API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    pub message_id: String,
    /// The customer it was scheduled for; after a merge the sender follows it to the survivor.
    pub customer_id: CustomerId,
    pub brand: Brand,
    pub channel: Channel,
    pub journey_type: JourneyType,
    pub stage: i32,
    pub step_id: String,
    /// The step's template, or (once sent) the template that was used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_id: Option<String>,
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
    /// When the message should go (moved by deferrals and retries).
    #[serde(with = "crate::values::ts")]
    pub due_at: OffsetDateTime,
    /// After this, a message that could not go is skipped.
    #[serde(with = "crate::values::ts")]
    pub expires_at: OffsetDateTime,
    /// When the stage was entered: part of the message's identity.
    #[serde(with = "crate::values::ts")]
    pub stage_entered_at: OffsetDateTime,
    #[serde(with = "crate::values::ts")]
    pub created_at: OffsetDateTime,
    #[serde(with = "crate::values::ts")]
    pub updated_at: OffsetDateTime,
    /// Provider calls that certainly did not send.
    #[serde(default)]
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::values::ts::option")]
    pub sent_at: Option<OffsetDateTime>,
    /// When the provider reported it delivered (SES Delivery event).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::values::ts::option")]
    pub delivered_at: Option<OffsetDateTime>,
    #[serde(default)]
    pub dry_run: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_message_id: Option<String>,
    /// The provider's reason for the last failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The address it went to (kept for the customer's record; never logged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The rendered content, once sent (HTML for email, text for SMS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
}

/// What a provider reported about a message it had accepted, as the message records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub status: Status,
    pub reason: Option<Reason>,
    pub error: Option<String>,
    /// When it happened, as the provider says.
    pub at: OffsetDateTime,
}

/// A message id is a function of what the message is: the same customer, brand, stage entry
/// and step always give the same id, so scheduling it twice (a replayed stream record, two
/// concurrent events) creates it once.
pub fn message_id(customer: &CustomerId, journey: &Journey, step_id: &str) -> String {
    let mut h = Sha256::new();
    for part in [
        customer.as_str(),
        journey.brand.as_str(),
        journey_type_str(journey.journey_type),
        &journey.stage.to_string(),
        &crate::values::format_ts(journey.since),
        step_id,
    ] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    format!("msg_{}", &hex::encode(h.finalize())[..32])
}

pub fn journey_type_str(t: JourneyType) -> &'static str {
    match t {
        JourneyType::Acquisition => "acquisition",
        JourneyType::Retention => "retention",
    }
}

impl Message {
    /// A new `PENDING` message for `step` of the stage `journey` just entered.
    pub fn scheduled(customer: &CustomerId, journey: &Journey, step: &Step, now: OffsetDateTime) -> Self {
        let due_at = journey.since + step.delay.duration();
        Self {
            message_id: message_id(customer, journey, &step.id),
            customer_id: customer.clone(),
            brand: journey.brand.clone(),
            channel: step.channel,
            journey_type: journey.journey_type,
            stage: journey.stage,
            step_id: step.id.clone(),
            template_id: step.template_id.clone(),
            status: Status::Pending,
            reason: None,
            due_at,
            expires_at: due_at + step.expiry().duration(),
            stage_entered_at: journey.since,
            created_at: now,
            updated_at: now,
            attempts: 0,
            sent_at: None,
            delivered_at: None,
            dry_run: false,
            provider: None,
            provider_message_id: None,
            error: None,
            to: None,
            subject: None,
            body: None,
        }
    }

    /// The step this message was scheduled for, as far as choosing its template needs.
    pub fn step(&self) -> Step {
        Step {
            id: self.step_id.clone(),
            journey_type: self.journey_type,
            stage: self.stage,
            channel: self.channel,
            delay: crate::definition::Delay::from_duration(time::Duration::ZERO),
            template_id: self.template_id.clone(),
            expires_after: None,
        }
    }

    /// Whether this message belongs to the brand and stage `journey` shows.
    pub fn is_for(&self, journey: &Journey) -> bool {
        self.brand == journey.brand && self.journey_type == journey.journey_type && self.stage == journey.stage
    }
}

/// What the scheduler puts on the send queue: which message to send. Everything else is
/// read when it is sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SendJob {
    pub customer_id: CustomerId,
    pub message_id: String,
}

#[cfg(test)]
mod tests {
    use super::Status;

    /// SES's reports arrive late, repeated and out of order: whatever order they come in,
    /// the message ends at the most telling one, and a report never revives a message that
    /// was never sent.
    #[test]
    fn provider_reports_converge_in_any_order() {
        let apply = |mut s: Status, reports: &[Status]| {
            for r in reports {
                if r.reported_from().contains(&s) {
                    s = *r;
                }
            }
            s
        };
        use Status::*;
        assert_eq!(apply(Sent, &[Delivered, Complained]), Complained);
        assert_eq!(apply(Sent, &[Complained, Delivered]), Complained);
        assert_eq!(apply(Sent, &[Bounced, Delivered, Bounced]), Bounced);
        assert_eq!(apply(Sent, &[Delivered, Delivered]), Delivered);
        assert_eq!(apply(Sent, &[Failed, Delivered]), Failed);
        for never_sent in [Pending, Queued, Sending, Skipped, Cancelled] {
            assert_eq!(apply(never_sent, &[Delivered, Bounced, Complained, Failed]), never_sent);
        }
        assert!(
            Status::ALL
                .iter()
                .all(|s| s.reported_from().iter().all(|f| f.is_terminal()))
        );
    }
}
