//! Whether a message may go now: one pure function of the message, the customer (after
//! following merges), the brand's settings, the recipient's suppression entries, the
//! person's recent sends and now. The sender loads every input and obeys the answer; every
//! rule that can hold a message back lives here.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::caps::{self, Caps, SendLog};
use crate::compliance::{Consent, ExclusionPolicy, Suppression, excluded, suppressed};
use crate::definition::{Channel, PerChannel};
use crate::identity::Identifier;
use crate::message::{Message, Reason};
use crate::profile::Profile;
use crate::quiet::{self, QuietWindow, ZoneName, recipient_zones};
use crate::values::{Brand, Country, Email, Invalid, LineKind, PhoneE164};

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

/// Who carries a message: chosen by its channel and, for SMS, the brand's `smsProvider`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Provider {
    Ses,
    Sns,
    Laaffic,
}

/// Template languages shipped with built-in templates.
pub const LANGUAGES: [&str; 2] = ["en", "es"];

/// A brand's sending and compliance settings, with the deployment's defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BrandSettings {
    /// The brand's name as its customers know it ("Rushbet"), for the email footer and the
    /// pages a recipient lands on; `None` for the brand id, titled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// The verified SES identity mail is sent from.
    pub from_email: Email,
    pub from_name: String,
    pub sms_provider: SmsProvider,
    /// Sender id for SMS sent through Laaffic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub laaffic_sender_id: Option<String>,
    /// Template language (`en`, `es`, …).
    pub language: String,
    /// Marketing only to customers with recorded consent.
    pub require_consent: bool,
    /// Per brand and channel.
    pub frequency_caps: Caps,
    /// Per person and channel, over every brand (the deployment's; not per brand).
    pub cross_brand_caps: Caps,
    pub quiet_hours: QuietHours,
    /// Where the recipient's own zone is unknown (no `timezone` given, no phone number).
    pub timezone: ZoneName,
    pub responsible_gambling: ExclusionPolicy,
    /// Appended to every marketing SMS; `None` for the language's built-in line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sms_opt_out_text: Option<String>,
    /// The countries SMS may go to; `None`: every country.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sms_countries: Option<Vec<Country>>,
    /// Messages per UTC day per channel; a channel left out has no budget.
    #[serde(default)]
    pub daily_budget: PerChannel<u32>,
    /// New public-source addresses per hour whose first message may go (the burst guard).
    pub new_addresses_per_hour: u32,
    /// `double`: a new public-source email address gets a confirmation first.
    #[serde(default)]
    pub email_opt_in: OptIn,
}

/// How an address from a public source is taken.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptIn {
    /// Marketing goes as soon as the other rules allow.
    #[default]
    Single,
    /// The first message is a confirmation email with a signed link; no marketing until
    /// the address is confirmed.
    Double,
}

/// Deployment defaults of the cost limits (`DAILY_BUDGET_SMS`, `DAILY_BUDGET_EMAIL`,
/// `NEW_ADDRESSES_PER_HOUR`).
pub const DEFAULT_DAILY_BUDGET_SMS: u32 = 2_000;
pub const DEFAULT_DAILY_BUDGET_EMAIL: u32 = 50_000;
pub const DEFAULT_NEW_ADDRESSES_PER_HOUR: u32 = 500;

impl BrandSettings {
    /// The brand's display name, else its id titled (`rushbet` → `Rushbet`).
    pub fn display_name(&self, brand: &Brand) -> String {
        self.display_name
            .clone()
            .unwrap_or_else(|| Self::default_display_name(brand))
    }

    /// A brand's id titled, as the built-in templates show it.
    pub fn default_display_name(brand: &Brand) -> String {
        let mut chars = brand.as_str().chars();
        chars
            .next()
            .map_or_else(String::new, |c| c.to_uppercase().chain(chars).collect())
    }

    /// The provider that carries the brand's messages on `channel`.
    pub fn provider(&self, channel: Channel) -> Provider {
        match (channel, self.sms_provider) {
            (Channel::Email, _) => Provider::Ses,
            (Channel::Sms, SmsProvider::Sns) => Provider::Sns,
            (Channel::Sms, SmsProvider::Laaffic) => Provider::Laaffic,
        }
    }

    /// The line appended to marketing SMS.
    pub fn sms_opt_out(&self) -> &str {
        self.sms_opt_out_text
            .as_deref()
            .unwrap_or_else(|| built_in_opt_out(&self.language))
    }
}

/// The built-in SMS opt-out line of a language (English for unknown ones).
pub fn built_in_opt_out(language: &str) -> &'static str {
    match language.split(['-', '_']).next().unwrap_or_default() {
        "es" => "Responde BAJA para no recibir más",
        _ => "Reply STOP to opt out",
    }
}

/// Quiet time per channel (`{"email": null, "sms": {"from": "21:00", "to": "08:00"}}`):
/// `null` or no entry for none. In a brand's override, `null` is none and a channel left
/// out keeps the default.
pub type QuietHours = PerChannel<Option<QuietWindow>>;

impl PerChannel<Option<QuietWindow>> {
    /// SMS quiet from 21:00 to 08:00 (TCPA); email any time.
    pub fn default_hours() -> Self {
        [(Channel::Email, None), (Channel::Sms, Some(QuietWindow::TCPA))]
            .into_iter()
            .collect()
    }
    pub fn for_channel(&self, channel: Channel) -> Option<QuietWindow> {
        self.get(channel).copied().flatten()
    }
}

/// A brand's responsible-gambling policy; a field left out keeps the default (`false`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExclusionOverride {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub all_brands: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_reactivation: Option<bool>,
}

/// What a brand sets of its own; the rest comes from the deployment's defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SettingsOverride {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_consent: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frequency_caps: Option<Caps>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quiet_hours: Option<QuietHours>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<ZoneName>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub responsible_gambling: Option<ExclusionOverride>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sms_opt_out_text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sms_countries: Option<Vec<Country>>,
    /// Per channel; a channel left out keeps the default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daily_budget: Option<PerChannel<u32>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_addresses_per_hour: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_opt_in: Option<OptIn>,
}

impl SettingsOverride {
    /// Settings as the admin API and the console take them (JSON), checked; `Err` names
    /// the field. The language is kept in its canonical form.
    pub fn from_json(bytes: &[u8]) -> Result<Self, (&'static str, Invalid)> {
        let mut settings: Self = serde_json::from_slice(bytes).map_err(|e| {
            let message = e.to_string();
            // serde names the field in backticks: an unknown one, or the one that failed.
            let named = message.split('`').nth(1).unwrap_or_default();
            let field = [
                "displayName",
                "fromEmail",
                "fromName",
                "smsProvider",
                "laafficSenderId",
                "language",
                "requireConsent",
                "frequencyCaps",
                "quietHours",
                "timezone",
                "responsibleGambling",
                "smsOptOutText",
                "smsCountries",
                "dailyBudget",
                "newAddressesPerHour",
                "emailOptIn",
            ]
            .into_iter()
            .find(|f| !message.starts_with("unknown field") && (*f == named || message.contains(f)))
            .unwrap_or("settings");
            (field, Invalid::new("invalid_value", message))
        })?;
        settings.validate()?;
        if let Some(l) = &settings.language {
            settings.language = Some(crate::template::parse_language(l).map_err(|e| ("language", e))?);
        }
        Ok(settings)
    }

    /// Checks the free-form fields; `Err` names the field.
    pub fn validate(&self) -> Result<(), (&'static str, Invalid)> {
        for (field, name) in [("displayName", &self.display_name), ("fromName", &self.from_name)] {
            let Some(name) = name else { continue };
            let clean = crate::values::clean_text(name);
            if clean.is_empty() || clean.chars().count() > 64 || clean != *name {
                return Err((
                    field,
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
        if let Some(caps) = &self.frequency_caps {
            caps.validate().map_err(|(_, e)| ("frequencyCaps", e))?;
        }
        if let Some(q) = &self.quiet_hours {
            for w in q.values().flatten() {
                w.validate().map_err(|e| ("quietHours", e))?;
            }
        }
        if let Some(text) = &self.sms_opt_out_text {
            let clean = crate::values::clean_text(text);
            if clean.is_empty() || clean.chars().count() > 70 || clean != *text {
                return Err((
                    "smsOptOutText",
                    Invalid::new("invalid_format", "must be 1-70 printable characters"),
                ));
            }
        }
        Ok(())
    }

    /// These settings over `defaults`.
    pub fn over(&self, defaults: &BrandSettings) -> BrandSettings {
        let d = defaults.clone();
        let rg = self.responsible_gambling.clone().unwrap_or_default();
        BrandSettings {
            display_name: self.display_name.clone().or(d.display_name),
            from_email: self.from_email.clone().unwrap_or(d.from_email),
            from_name: self.from_name.clone().unwrap_or(d.from_name),
            sms_provider: self.sms_provider.unwrap_or(d.sms_provider),
            laaffic_sender_id: self.laaffic_sender_id.clone().or(d.laaffic_sender_id),
            language: self.language.clone().unwrap_or(d.language),
            require_consent: self.require_consent.unwrap_or(d.require_consent),
            frequency_caps: overlaid(d.frequency_caps, &self.frequency_caps),
            cross_brand_caps: d.cross_brand_caps,
            quiet_hours: overlaid(d.quiet_hours, &self.quiet_hours),
            timezone: self.timezone.clone().unwrap_or(d.timezone),
            responsible_gambling: ExclusionPolicy {
                all_brands: rg.all_brands.unwrap_or(d.responsible_gambling.all_brands),
                allow_reactivation: rg
                    .allow_reactivation
                    .unwrap_or(d.responsible_gambling.allow_reactivation),
            },
            sms_opt_out_text: self.sms_opt_out_text.clone().or(d.sms_opt_out_text),
            sms_countries: self.sms_countries.clone().or(d.sms_countries),
            daily_budget: overlaid(d.daily_budget, &self.daily_budget),
            new_addresses_per_hour: self.new_addresses_per_hour.unwrap_or(d.new_addresses_per_hour),
            email_opt_in: self.email_opt_in.unwrap_or(d.email_opt_in),
        }
    }
}

/// A brand's per-channel setting over the default: its entries replace the default's.
fn overlaid<T: Clone>(default: PerChannel<T>, brand: &Option<PerChannel<T>>) -> PerChannel<T> {
    match brand {
        Some(over) => default.overlaid(over),
        None => default,
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

/// The customer's address on a channel: its primary contact point (`crate::contact`).
pub fn address(customer: &Profile, channel: Channel) -> Option<Address> {
    match customer.primary(channel)? {
        Identifier::Email(e) => Some(Address::Email(e.clone())),
        Identifier::Phone(p) => Some(Address::Phone(p.clone())),
        _ => None,
    }
}

/// Why a number is never texted for this brand, if it is not: a line type that costs the
/// sender (premium rate …) or makes no sense, or a country outside the brand's list. A
/// number the metadata cannot type is texted only inside that list (every country when the
/// brand has none).
pub fn sms_refused(phone: &PhoneE164, settings: &BrandSettings) -> Option<Reason> {
    let line = phone.line();
    if let LineKind::Never(_) = line.kind {
        return Some(Reason::NumberType);
    }
    match &settings.sms_countries {
        Some(allowed) if !line.region.as_ref().is_some_and(|r| allowed.contains(r)) => Some(Reason::CountryNotAllowed),
        _ => None,
    }
}

/// A counted limit a message that may go must still pass; the sender takes a unit of it
/// (`crm_store`'s `take_limit`) and, when none is left, defers the message to `reopens`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gate {
    /// The counter: `new-addresses`, `budget#email`, `budget#sms`.
    pub counter: String,
    /// The period counted: a UTC hour (`2026-12-02T10`) or day (`2026-12-02`).
    pub period: String,
    pub limit: u32,
    /// When the next period opens.
    pub reopens: OffsetDateTime,
    pub reason: Reason,
}

/// The address a message goes to is new and from a public source: given by a request that
/// anyone can send (see `crate::contact::trusted`), not confirmed, first seen within a day,
/// and the person has had nothing on this channel yet. A flood of made-up addresses is
/// made of these.
pub fn new_public_address(customer: &Profile, to: &Address, log: &SendLog, now: OffsetDateTime) -> bool {
    let identifier = match to {
        Address::Email(e) => Identifier::Email(e.clone()),
        Address::Phone(p) => Identifier::Phone(p.clone()),
    };
    let Some(point) = customer.contacts.points.get(&identifier) else {
        return false;
    };
    !point.trusted() && point.confirmed_at.is_none() && now - point.at < time::Duration::days(1) && log.sends.is_empty()
}

/// The counted limits `message` must pass to go to `to` now: the burst guard for a new
/// public-source address, then (for a real send) the brand's daily budget on the channel.
pub fn gates(message: &Message, f: &Facts, to: &Address, dry_run: bool) -> Vec<Gate> {
    let now = f.now.to_offset(time::UtcOffset::UTC);
    let mut gates = Vec::new();
    let customer = f.customer.expect("gates follow a decision to send");
    if new_public_address(customer, to, f.log, now) {
        let hour = now
            .replace_minute(0)
            .and_then(|t| t.replace_second(0))
            .and_then(|t| t.replace_nanosecond(0))
            .unwrap_or(now);
        gates.push(Gate {
            counter: "new-addresses".into(),
            period: format!("{}T{:02}", now.date(), now.hour()),
            limit: f.settings.new_addresses_per_hour,
            reopens: hour + time::Duration::hours(1),
            reason: Reason::Velocity,
        });
    }
    if let (false, Some(limit)) = (dry_run, f.settings.daily_budget.get(message.channel)) {
        gates.push(Gate {
            counter: format!("budget#{}", message.channel.as_str()),
            period: now.date().to_string(),
            limit: *limit,
            reopens: now.date().next_day().unwrap_or(now.date()).midnight().assume_utc(),
            reason: Reason::Budget,
        });
    }
    gates
}

/// A message held back by a spent gate: deferred to the gate's next period (spread so a
/// backlog does not leave at one instant), or skipped if that is past the step's expiry.
pub fn held_back(message: &Message, gate: &Gate, now: OffsetDateTime) -> Decision {
    defer(
        message,
        gate.reopens + quiet::spread(&message.message_id),
        gate.reason,
        now,
    )
}

/// Double opt-in: the brand asks for it, and the address is an email that a public source
/// gave and nobody has confirmed. A trusted source's address (the operator's own account
/// data) needs no confirmation.
pub fn awaits_confirmation(customer: &Profile, to: &Address, settings: &BrandSettings) -> bool {
    let Address::Email(email) = to else {
        return false;
    };
    settings.email_opt_in == OptIn::Double
        && customer
            .contacts
            .points
            .get(&Identifier::Email(email.clone()))
            .is_none_or(|p| !p.trusted() && p.confirmed_at.is_none())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Send to `to`; when `dry_run`, do everything but call the provider.
    Send { to: Address, dry_run: bool },
    /// Double opt-in: send `to` the brand's confirmation email (once per address and brand)
    /// and wait for the confirmation until `until` (the step's expiry; confirming wakes the
    /// message).
    Confirm { to: Address, until: OffsetDateTime },
    /// Not now: back to `PENDING`, due at `until`.
    Defer { until: OffsetDateTime, reason: Reason },
    /// Never: ends `SKIPPED`.
    Skip(Reason),
    /// No longer wanted: ends `CANCELLED`.
    Cancel(Reason),
}

/// Everything the decision reads besides the message.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    /// The customer after following merges; `None` if gone.
    pub customer: Option<&'a Profile>,
    /// The message's brand's settings.
    pub settings: &'a BrandSettings,
    /// The responsible-gambling policy of each brand that excluded the customer (a brand
    /// missing here has the default policy).
    pub policies: &'a BTreeMap<Brand, ExclusionPolicy>,
    /// The suppression entries of the recipient's address.
    pub suppressions: &'a [Suppression],
    /// The person's recent sends on the message's channel.
    pub log: &'a SendLog,
    /// The deployment's `ENABLE_REAL_SENDING`.
    pub real_sending: bool,
    pub now: OffsetDateTime,
}

/// The consent statement that applies to `brand` on `channel`: the brand's own, else one
/// given before any brand was known (a lead without a brand).
pub fn consent<'a>(customer: &'a Profile, brand: &Brand, channel: Channel) -> Option<&'a Consent> {
    customer
        .consents
        .get(&(brand.clone(), channel))
        .or_else(|| customer.consents.get(&(Brand::unbranded(), channel)))
}

/// The rules, in order:
/// 1. the customer must exist and still be in the message's stage (a placeholder message:
///    still without a brand), else `CANCELLED`;
/// 2. no responsible-gambling exclusion may hold (`self_excluded`);
/// 3. the channel needs an address (wait for one until the step expires: `no_address`), and
///    the step must not have expired (`expired`);
/// 4. the address must not be suppressed for the brand (`suppressed`);
/// 5. consent: a refusal always stops marketing, and a brand that requires consent needs a
///    grant (`no_consent`);
/// 6. quiet hours where the recipient is (deferred to the next opening, with a spread);
/// 7. frequency caps, per brand and across brands (deferred until the caps free).
///
/// A deferral past the step's expiry is a skip with the same reason.
pub fn decide(message: &Message, f: &Facts) -> Decision {
    let Some(customer) = f.customer else {
        return Decision::Skip(Reason::CustomerGone);
    };
    let journeys = customer.journeys();
    if message.brand.is_unbranded() && journeys.iter().any(|j| !j.brand.is_unbranded()) {
        return Decision::Cancel(Reason::BrandAssigned);
    }
    if !journeys.iter().any(|j| message.is_for(j)) {
        return Decision::Cancel(Reason::StageLeft);
    }
    let policy = |b: &Brand| {
        f.policies.get(b).copied().unwrap_or(if *b == message.brand {
            f.settings.responsible_gambling
        } else {
            ExclusionPolicy::default()
        })
    };
    if excluded(&customer.exclusions, &message.brand, policy) {
        return Decision::Skip(Reason::SelfExcluded);
    }
    let now = f.now;
    let Some(to) = address(customer, message.channel) else {
        return defer(message, message.expires_at, Reason::NoAddress, now);
    };
    if now > message.expires_at {
        return Decision::Skip(Reason::Expired);
    }
    if let Address::Phone(phone) = &to
        && let Some(reason) = sms_refused(phone, f.settings)
    {
        return Decision::Skip(reason);
    }
    if suppressed(f.suppressions, message.channel, &message.brand) {
        return Decision::Skip(Reason::Suppressed);
    }
    match consent(customer, &message.brand, message.channel) {
        Some(c) if !c.granted => return Decision::Skip(Reason::NoConsent),
        None if f.settings.require_consent => return Decision::Skip(Reason::NoConsent),
        _ => {}
    }
    if awaits_confirmation(customer, &to, f.settings) {
        return match defer(message, message.expires_at, Reason::Unconfirmed, now) {
            Decision::Defer { until, .. } => Decision::Confirm { to, until },
            skip => skip,
        };
    }
    if let Some(window) = f.settings.quiet_hours.for_channel(message.channel) {
        let phone = match &to {
            Address::Phone(p) => Some(p),
            Address::Email(_) => None,
        };
        let zones = recipient_zones(customer.timezone.as_ref(), phone, &f.settings.timezone);
        match quiet::next_open(&zones, window, now) {
            Some(t) if t == now => {}
            Some(t) => return defer(message, t + quiet::spread(&message.message_id), Reason::QuietHours, now),
            None => return Decision::Skip(Reason::QuietHours),
        }
    }
    let free = caps::earliest(
        f.log,
        &message.message_id,
        &message.brand,
        f.settings.frequency_caps.for_channel(message.channel),
        f.settings.cross_brand_caps.for_channel(message.channel),
        now,
    );
    if free > now {
        return defer(message, free, Reason::FrequencyCap, now);
    }
    Decision::Send {
        to,
        // A test customer's messages are rendered and recorded, never sent.
        dry_run: !f.real_sending || customer.test,
    }
}

/// Wait until `until`, or skip if that is past the step's expiry.
fn defer(message: &Message, until: OffsetDateTime, reason: Reason, now: OffsetDateTime) -> Decision {
    if until > message.expires_at || now >= message.expires_at {
        Decision::Skip(reason)
    } else {
        Decision::Defer { until, reason }
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
            require_consent: false,
            frequency_caps: Caps::brand_default(),
            cross_brand_caps: Caps::cross_brand_default(),
            quiet_hours: QuietHours::default_hours(),
            timezone: ZoneName::parse("UTC").unwrap(),
            responsible_gambling: ExclusionPolicy::default(),
            sms_opt_out_text: None,
            display_name: None,
            sms_countries: None,
            daily_budget: PerChannel::default(),
            new_addresses_per_hour: DEFAULT_NEW_ADDRESSES_PER_HOUR,
            email_opt_in: OptIn::Single,
        }
    }
    /// The rules with nothing suppressed and nothing sent before.
    fn go(m: &Message, customer: Option<&Profile>, real_sending: bool, now: OffsetDateTime) -> Decision {
        let s = settings();
        decide(
            m,
            &Facts {
                customer,
                settings: &s,
                policies: &BTreeMap::new(),
                suppressions: &[],
                log: &SendLog::default(),
                real_sending,
                now,
            },
        )
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
        let d = go(&welcome(&c), Some(&c), true, T0);
        assert!(
            matches!(d, Decision::Send { to: Address::Email(e), dry_run: false } if e.as_str() == "ana@example.com")
        );
        let d = go(&welcome(&c), Some(&c), false, T0);
        assert!(matches!(d, Decision::Send { dry_run: true, .. }));
    }

    #[test]
    fn a_test_customer_is_never_really_sent_to() {
        let mut c = customer("rushbet", Milestone::Touched, true);
        c.test = true;
        let d = go(&welcome(&c), Some(&c), true, T0);
        assert!(matches!(d, Decision::Send { dry_run: true, .. }), "{d:?}");
    }

    #[test]
    fn a_customer_who_left_the_stage_cancels_it() {
        let c = customer("rushbet", Milestone::Touched, true);
        let m = welcome(&c);
        let deposited = customer("rushbet", Milestone::FirstDeposit, true);
        assert_eq!(go(&m, Some(&deposited), true, T0), Decision::Cancel(Reason::StageLeft));
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
            go(&m, Some(&branded), true, T0),
            Decision::Cancel(Reason::BrandAssigned)
        );
    }

    #[test]
    fn no_address_waits_until_expiry_then_skips() {
        let c = customer("rushbet", Milestone::Touched, false);
        let m = welcome(&c);
        assert_eq!(
            go(&m, Some(&c), true, T0),
            Decision::Defer {
                until: T0 + Duration::hours(72),
                reason: Reason::NoAddress
            }
        );
        assert_eq!(
            go(&m, Some(&c), true, T0 + Duration::hours(72)),
            Decision::Skip(Reason::NoAddress)
        );
    }

    #[test]
    fn an_expired_step_is_skipped_and_a_missing_customer_too() {
        let c = customer("rushbet", Milestone::Touched, true);
        let m = welcome(&c);
        let late = T0 + Duration::hours(73);
        assert_eq!(go(&m, Some(&c), true, late), Decision::Skip(Reason::Expired));
        assert_eq!(go(&m, None, true, T0), Decision::Skip(Reason::CustomerGone));
    }

    fn sms_customer(phone: &str) -> Profile {
        let phone = PhoneE164::parse(phone, crate::values::PhoneRegion::parse("US").unwrap()).unwrap();
        let id = CustomerId::parse("0192f0c1-7b7e-7cc0-9b1a-3c3f2d6e8a10").unwrap();
        let ids = vec![Identifier::Phone(phone)];
        Profile::new(
            id,
            &Touch::new(ids, Brand::parse("rushbet").unwrap(), Milestone::Touched, T0),
        )
    }
    fn sms(c: &Profile) -> Message {
        let step = crate::definition::Step {
            channel: Channel::Sms,
            ..JourneyDefinition::default_definition().steps[0].clone()
        };
        Message::scheduled(&c.id, &c.journeys()[0], &step, T0)
    }
    fn with(
        m: &Message,
        c: &Profile,
        s: &BrandSettings,
        suppressions: &[Suppression],
        log: &SendLog,
        now: OffsetDateTime,
    ) -> Decision {
        let facts = Facts {
            customer: Some(c),
            settings: s,
            policies: &BTreeMap::new(),
            suppressions,
            log,
            real_sending: true,
            now,
        };
        decide(m, &facts)
    }

    #[test]
    fn costly_lines_and_numbers_outside_the_brands_countries_are_never_texted() {
        let noon = T0 + Duration::hours(7);
        let decision = |phone: &str, countries: Option<&[&str]>| {
            let c = sms_customer(phone);
            let mut s = settings();
            s.sms_countries = countries.map(|l| l.iter().map(|c| Country::parse(c).unwrap()).collect());
            with(&sms(&c), &c, &s, &[], &SendLog::default(), noon)
        };
        assert!(matches!(decision("+51987654321", None), Decision::Send { .. }));
        assert!(matches!(
            decision("+51987654321", Some(&["PE", "MX"])),
            Decision::Send { .. }
        ));
        assert_eq!(
            decision("+447400123456", Some(&["PE", "MX"])),
            Decision::Skip(Reason::CountryNotAllowed)
        );
        // Premium rate: never, whatever the countries say.
        assert_eq!(decision("+449012345678", None), Decision::Skip(Reason::NumberType));
        assert_eq!(
            decision("+449012345678", Some(&["GB"])),
            Decision::Skip(Reason::NumberType)
        );
        // A range the metadata does not know yet: only inside the brand's countries.
        assert!(matches!(decision("+5511561234567", None), Decision::Send { .. }));
        assert!(matches!(
            decision("+5511561234567", Some(&["BR"])),
            Decision::Send { .. }
        ));
        assert_eq!(
            decision("+5511561234567", Some(&["PE"])),
            Decision::Skip(Reason::CountryNotAllowed)
        );
    }

    #[test]
    fn each_compliance_rule_holds_a_message_back() {
        use crate::compliance::{Exclusion, ExclusionKind, Scope, SuppressionReason};
        // 10:00 UTC is 05:00 in Lima: quiet for SMS until 08:00 (13:00 UTC), plus a spread.
        let c = sms_customer("+51987654321");
        let m = sms(&c);
        let s = settings();
        let d = with(&m, &c, &s, &[], &SendLog::default(), T0);
        let Decision::Defer {
            until,
            reason: Reason::QuietHours,
        } = d
        else {
            panic!("{d:?}")
        };
        assert!(until >= T0 + Duration::hours(3) && until < T0 + Duration::hours(3) + Duration::minutes(10));
        let noon = T0 + Duration::hours(7);
        assert!(matches!(
            with(&m, &c, &s, &[], &SendLog::default(), noon),
            Decision::Send { .. }
        ));

        let entry = |scope| Suppression {
            channel: Channel::Sms,
            address: None,
            address_hash: "h".into(),
            scope,
            reason: SuppressionReason::Unsubscribed,
            at: T0,
            source: "test".into(),
        };
        let own = [entry(Scope::Brand(Brand::parse("rushbet").unwrap()))];
        assert_eq!(
            with(&m, &c, &s, &own, &SendLog::default(), noon),
            Decision::Skip(Reason::Suppressed)
        );
        let other = [entry(Scope::Brand(Brand::parse("betano").unwrap()))];
        assert!(matches!(
            with(&m, &c, &s, &other, &SendLog::default(), noon),
            Decision::Send { .. }
        ));

        let mut strict = settings();
        strict.require_consent = true;
        assert_eq!(
            with(&m, &c, &strict, &[], &SendLog::default(), noon),
            Decision::Skip(Reason::NoConsent)
        );
        let mut refused = c.clone();
        let no = Consent {
            granted: false,
            at: T0,
            source: "lead".into(),
        };
        refused.consents.insert((Brand::unbranded(), Channel::Sms), no);
        assert_eq!(
            with(&m, &refused, &s, &[], &SendLog::default(), noon),
            Decision::Skip(Reason::NoConsent)
        );

        let mut excluded = c.clone();
        let e = Exclusion {
            kind: ExclusionKind::CoolingOff,
            at: T0,
            reactivated_at: None,
        };
        excluded.exclusions.insert(Brand::parse("rushbet").unwrap(), e);
        assert_eq!(
            with(&m, &excluded, &s, &[], &SendLog::default(), noon),
            Decision::Skip(Reason::SelfExcluded)
        );

        // One SMS today already: the 1-per-24h cap frees a day after it.
        let log = SendLog {
            sends: vec![crate::caps::Sent {
                message_id: "x".into(),
                brand: Brand::parse("rushbet").unwrap(),
                at: noon - Duration::hours(1),
            }],
            version: 1,
        };
        assert_eq!(
            with(&m, &c, &s, &[], &log, noon),
            Decision::Defer {
                until: noon + Duration::hours(23),
                reason: Reason::FrequencyCap
            }
        );
        // ... unless the step expires first.
        let mut short = m.clone();
        short.expires_at = noon + Duration::hours(2);
        assert_eq!(
            with(&short, &c, &s, &[], &log, noon),
            Decision::Skip(Reason::FrequencyCap)
        );
    }

    mod properties {
        use super::*;
        use crate::caps::Sent;
        use crate::compliance::{Exclusion, ExclusionKind, Scope, SuppressionReason};
        use crate::definition::Step;
        use crate::values::PhoneRegion;
        use proptest::prelude::*;

        const PHONES: [&str; 5] = [
            "+12015550123",
            "+13105550123",
            "+34612345678",
            "+51987654321",
            "+61412345678",
        ];
        const ZONES: [&str; 5] = [
            "America/New_York",
            "Europe/Madrid",
            "Australia/Lord_Howe",
            "America/Lima",
            "Asia/Kolkata",
        ];
        const BRANDS: [&str; 2] = ["rushbet", "betano"];

        prop_compose! {
            fn window()(from in 0u16..24 * 60, len in 1u16..24 * 60) -> QuietWindow {
                let to = (from + len) % (24 * 60);
                QuietWindow { from: LocalTime(from), to: LocalTime(to) }
            }
        }

        #[allow(non_snake_case)]
        fn LocalTime(minutes: u16) -> crate::quiet::LocalTime {
            crate::quiet::LocalTime::hm(minutes / 60, minutes % 60)
        }

        proptest! {
            /// Whatever the zones, times (any minute of 2025-2028, so every DST change),
            /// windows, list entries, consent, exclusions and history: a message that is sent
            /// is outside quiet time in every candidate zone, to an address not suppressed for
            /// its brand, of a customer neither excluded nor refusing (nor, where required,
            /// without) consent, within every cap.
            #[test]
            fn nothing_is_sent_that_a_rule_forbids(
                phone in 0usize..PHONES.len(),
                own_zone in prop::option::of(0usize..ZONES.len()),
                window in prop::option::of(window()),
                minute in 0i64..4 * 366 * 24 * 60,
                suppression in prop::option::of((0usize..3, 0usize..6)),
                consent in prop::option::of(any::<bool>()),
                require_consent in any::<bool>(),
                exclusion in prop::option::of((0usize..2, any::<bool>(), any::<bool>(), any::<bool>())),
                history in prop::collection::vec((0i64..7 * 24 * 60, 0usize..2), 0..8),
            ) {
                let now = datetime!(2025-01-01 00:00 UTC) + Duration::minutes(minute);
                let brand = Brand::parse(BRANDS[0]).unwrap();
                let phone = PhoneE164::parse(PHONES[phone], PhoneRegion::parse("US").unwrap()).unwrap();
                let ids = vec![Identifier::Phone(phone.clone())];
                let mut c = Profile::new(
                    CustomerId::parse("0192f0c1-7b7e-7cc0-9b1a-3c3f2d6e8a10").unwrap(),
                    &Touch::new(ids, brand.clone(), Milestone::Touched, now),
                );
                c.timezone = own_zone.map(|z| ZoneName::parse(ZONES[z]).unwrap());
                if let Some(granted) = consent {
                    c.consents.insert((brand.clone(), Channel::Sms), Consent { granted, at: now, source: "lead".into() });
                }
                let mut policies = BTreeMap::new();
                if let Some((by, all_brands, reactivated, allow_reactivation)) = exclusion {
                    let by = Brand::parse(BRANDS[by]).unwrap();
                    c.exclusions.insert(by.clone(), Exclusion {
                        kind: ExclusionKind::SelfExclusion,
                        at: now - Duration::days(2),
                        reactivated_at: reactivated.then(|| now - Duration::days(1)),
                    });
                    policies.insert(by, ExclusionPolicy { all_brands, allow_reactivation });
                }
                let suppressions: Vec<Suppression> = suppression
                    .map(|(scope, reason)| Suppression {
                        channel: Channel::Sms,
                        address: Some(phone.to_string()),
                        address_hash: "h".into(),
                        scope: match scope {
                            0 => Scope::All,
                            1 => Scope::Brand(brand.clone()),
                            _ => Scope::Brand(Brand::parse(BRANDS[1]).unwrap()),
                        },
                        reason: SuppressionReason::ALL[reason],
                        at: now,
                        source: "test".into(),
                    })
                    .into_iter()
                    .collect();
                let log = SendLog {
                    sends: history
                        .iter()
                        .enumerate()
                        .map(|(i, (m, b))| Sent {
                            message_id: format!("m{i}"),
                            brand: Brand::parse(BRANDS[*b]).unwrap(),
                            at: now - Duration::minutes(*m),
                        })
                        .collect(),
                    version: 1,
                };
                let mut s = settings();
                s.quiet_hours.set(Channel::Sms, window);
                s.require_consent = require_consent;
                let step = Step { channel: Channel::Sms, ..JourneyDefinition::default_definition().steps[0].clone() };
                let m = Message::scheduled(&c.id, &c.journeys()[0], &step, now);
                let facts = Facts {
                    customer: Some(&c),
                    settings: &s,
                    policies: &policies,
                    suppressions: &suppressions,
                    log: &log,
                    real_sending: true,
                    now,
                };
                let policy = |b: &Brand| policies.get(b).copied().unwrap_or_default();
                match decide(&m, &facts) {
                    Decision::Send { .. } => {
                        if let Some(w) = window {
                            let zones = recipient_zones(c.timezone.as_ref(), Some(&phone), &s.timezone);
                            prop_assert!(quiet::allowed(&zones, w, now), "sent in quiet time");
                        }
                        prop_assert!(!suppressed(&suppressions, Channel::Sms, &brand));
                        prop_assert!(!excluded(&c.exclusions, &brand, policy));
                        prop_assert!(consent != Some(false) && (consent == Some(true) || !require_consent));
                        let sent = log.with(Sent { message_id: m.message_id.clone(), brand: brand.clone(), at: now });
                        for cap in s.frequency_caps.for_channel(Channel::Sms).iter() {
                            let n = sent.iter().filter(|x| x.brand == brand && x.at > now - cap.per.duration()).count();
                            prop_assert!(n as u32 <= cap.max);
                        }
                        for cap in s.cross_brand_caps.for_channel(Channel::Sms).iter() {
                            let n = sent.iter().filter(|x| x.at > now - cap.per.duration()).count();
                            prop_assert!(n as u32 <= cap.max);
                        }
                    }
                    Decision::Defer { until, .. } => prop_assert!(until > now && until <= m.expires_at),
                    // SMS needs no confirmation.
                    Decision::Confirm { .. } => prop_assert!(false, "an SMS asked for confirmation"),
                    Decision::Skip(_) | Decision::Cancel(_) => {}
                }
            }
        }
    }
}
