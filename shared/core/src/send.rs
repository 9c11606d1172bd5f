//! Whether a message may go now: one pure function of the message, the customer (after
//! following merges), the brand's settings and now. The sender loads every input and obeys
//! the answer; every rule that can hold a message back lives here (the compliance rules of
//! the next issue join them).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::definition::Channel;
use crate::identity::Identifier;
use crate::message::{Message, Reason};
use crate::profile::Profile;
use crate::values::{Email, Invalid, PhoneE164};

/// The SMS providers a brand can send through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SmsProvider {
    #[default]
    Sns,
    Laaffic,
}

impl SmsProvider {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "sns" => Ok(Self::Sns),
            "laaffic" => Ok(Self::Laaffic),
            _ => Err(Invalid::new("invalid_value", "must be sns or laaffic")),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sns => "sns",
            Self::Laaffic => "laaffic",
        }
    }
}

/// Template languages shipped with built-in templates.
pub const LANGUAGES: [&str; 2] = ["en", "es"];

/// A brand's sending settings, with the deployment's defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BrandSettings {
    /// The verified SES identity mail is sent from.
    pub from_email: Email,
    pub from_name: String,
    pub sms_provider: SmsProvider,
    /// Sender id for SMS sent through Laaffic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub laaffic_sender_id: Option<String>,
    /// Template language (`en`, `es`, …).
    pub language: String,
}

/// What a brand sets of its own; the rest comes from the deployment's defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SettingsOverride {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_email: Option<Email>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sms_provider: Option<SmsProvider>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub laaffic_sender_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
}

impl SettingsOverride {
    /// Checks the free-form fields; `Err` names the field.
    pub fn validate(&self) -> Result<(), (&'static str, Invalid)> {
        if let Some(name) = &self.from_name {
            let clean = crate::values::clean_text(name);
            if clean.is_empty() || clean.chars().count() > 64 || clean != *name {
                return Err((
                    "fromName",
                    Invalid::new("invalid_format", "must be 1-64 printable characters"),
                ));
            }
        }
        if let Some(id) = &self.laaffic_sender_id {
            let ok = !id.is_empty() && id.len() <= 32 && id.chars().all(|c| c.is_ascii_graphic() || c == ' ');
            if !ok {
                return Err((
                    "laafficSenderId",
                    Invalid::new("invalid_format", "must be 1-32 printable ASCII characters"),
                ));
            }
        }
        if let Some(language) = &self.language {
            crate::template::parse_language(language).map_err(|e| ("language", e))?;
        }
        Ok(())
    }

    /// These settings over `defaults`.
    pub fn over(&self, defaults: &BrandSettings) -> BrandSettings {
        BrandSettings {
            from_email: self.from_email.clone().unwrap_or_else(|| defaults.from_email.clone()),
            from_name: self.from_name.clone().unwrap_or_else(|| defaults.from_name.clone()),
            sms_provider: self.sms_provider.unwrap_or(defaults.sms_provider),
            laaffic_sender_id: self
                .laaffic_sender_id
                .clone()
                .or_else(|| defaults.laaffic_sender_id.clone()),
            language: self.language.clone().unwrap_or_else(|| defaults.language.clone()),
        }
    }
}

/// Where a message goes, as the provider needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    Email(Email),
    Phone(PhoneE164),
}

impl Address {
    pub fn as_str(&self) -> &str {
        match self {
            Self::Email(e) => e.as_str(),
            Self::Phone(p) => p.as_str(),
        }
    }
}

/// The customer's address on a channel. With several, the one that sorts first (stable).
pub fn address(customer: &Profile, channel: Channel) -> Option<Address> {
    customer.identifiers.iter().find_map(|i| match (channel, i) {
        (Channel::Email, Identifier::Email(e)) => Some(Address::Email(e.clone())),
        (Channel::Sms, Identifier::Phone(p)) => Some(Address::Phone(p.clone())),
        _ => None,
    })
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Send to `to`; when `dry_run`, do everything but call the provider.
    Send { to: Address, dry_run: bool },
    /// Not now: back to `PENDING`, due at `until`.
    Defer { until: OffsetDateTime, reason: Reason },
    /// Never: ends `SKIPPED`.
    Skip(Reason),
    /// No longer wanted: ends `CANCELLED`.
    Cancel(Reason),
}

/// The rules, in order: the customer must exist and still be in the message's stage (for a
/// placeholder message: still without a brand); the channel needs an address (wait for one
/// until the step expires); the step must not have expired. `real_sending` is the
/// deployment's `ENABLE_REAL_SENDING`.
pub fn decide(
    message: &Message,
    customer: Option<&Profile>,
    _settings: &BrandSettings,
    real_sending: bool,
    now: OffsetDateTime,
) -> Decision {
    let Some(customer) = customer else {
        return Decision::Skip(Reason::CustomerGone);
    };
    let journeys = customer.journeys();
    if message.brand.is_unbranded() && journeys.iter().any(|j| !j.brand.is_unbranded()) {
        return Decision::Cancel(Reason::BrandAssigned);
    }
    if !journeys.iter().any(|j| message.is_for(j)) {
        return Decision::Cancel(Reason::StageLeft);
    }
    let Some(to) = address(customer, message.channel) else {
        return if now >= message.expires_at {
            Decision::Skip(Reason::NoAddress)
        } else {
            Decision::Defer {
                until: message.expires_at,
                reason: Reason::NoAddress,
            }
        };
    };
    if now > message.expires_at {
        return Decision::Skip(Reason::Expired);
    }
    Decision::Send {
        to,
        dry_run: !real_sending,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::definition::JourneyDefinition;
    use crate::journey::Milestone;
    use crate::profile::Touch;
    use crate::values::{Brand, ClickId, CustomerId};
    use time::Duration;
    use time::macros::datetime;

    const T0: OffsetDateTime = datetime!(2026-11-22 10:00 UTC);

    fn settings() -> BrandSettings {
        BrandSettings {
            from_email: Email::parse("crm@example.com").unwrap(),
            from_name: "CRM".into(),
            sms_provider: SmsProvider::Sns,
            laaffic_sender_id: None,
            language: "en".into(),
        }
    }
    fn customer(brand: &str, milestone: Milestone, email: bool) -> Profile {
        let mut ids = vec![Identifier::ClickId(ClickId::parse("c1").unwrap())];
        if email {
            ids.push(Identifier::Email(Email::parse("ana@example.com").unwrap()));
        }
        let id = CustomerId::parse("0192f0c1-7b7e-7cc0-9b1a-3c3f2d6e8a10").unwrap();
        Profile::new(id, &Touch::new(ids, Brand::parse(brand).unwrap(), milestone, T0))
    }
    fn welcome(c: &Profile) -> Message {
        let journey = &c.journeys()[0];
        Message::scheduled(&c.id, journey, &JourneyDefinition::default_definition().steps[0], T0)
    }

    #[test]
    fn a_customer_with_an_address_in_the_stage_is_sent_to() {
        let c = customer("rushbet", Milestone::Touched, true);
        let d = decide(&welcome(&c), Some(&c), &settings(), true, T0);
        assert!(
            matches!(d, Decision::Send { to: Address::Email(e), dry_run: false } if e.as_str() == "ana@example.com")
        );
        let d = decide(&welcome(&c), Some(&c), &settings(), false, T0);
        assert!(matches!(d, Decision::Send { dry_run: true, .. }));
    }

    #[test]
    fn a_customer_who_left_the_stage_cancels_it() {
        let c = customer("rushbet", Milestone::Touched, true);
        let m = welcome(&c);
        let deposited = customer("rushbet", Milestone::FirstDeposit, true);
        assert_eq!(
            decide(&m, Some(&deposited), &settings(), true, T0),
            Decision::Cancel(Reason::StageLeft)
        );
    }

    #[test]
    fn a_placeholder_message_yields_to_a_brand() {
        let c = customer("unbranded", Milestone::Touched, true);
        let m = welcome(&c);
        let mut branded = c.clone();
        crate::journey::reach(
            &mut branded.milestones,
            &Brand::parse("rushbet").unwrap(),
            Milestone::Touched,
            T0,
        );
        assert_eq!(
            decide(&m, Some(&branded), &settings(), true, T0),
            Decision::Cancel(Reason::BrandAssigned)
        );
    }

    #[test]
    fn no_address_waits_until_expiry_then_skips() {
        let c = customer("rushbet", Milestone::Touched, false);
        let m = welcome(&c);
        assert_eq!(
            decide(&m, Some(&c), &settings(), true, T0),
            Decision::Defer {
                until: T0 + Duration::hours(72),
                reason: Reason::NoAddress
            }
        );
        assert_eq!(
            decide(&m, Some(&c), &settings(), true, T0 + Duration::hours(72)),
            Decision::Skip(Reason::NoAddress)
        );
    }

    #[test]
    fn an_expired_step_is_skipped_and_a_missing_customer_too() {
        let c = customer("rushbet", Milestone::Touched, true);
        let m = welcome(&c);
        let late = T0 + Duration::hours(73);
        assert_eq!(
            decide(&m, Some(&c), &settings(), true, late),
            Decision::Skip(Reason::Expired)
        );
        assert_eq!(
            decide(&m, None, &settings(), true, T0),
            Decision::Skip(Reason::CustomerGone)
        );
    }
}
