//! From the loose fields callers send (Redtrack macros, Zapier forms, landing-page JSON) to
//! typed commands. Every alias the integrations use is listed here, in one place.
//!
//! Rules: a value that is empty, still an unreplaced `{macro}`, or a known placeholder
//! (`null`, `undefined`, `-1`, `anonymous`) counts as absent. A required field that is
//! missing or invalid rejects the request; an invalid optional field is dropped and
//! reported as a warning so that a good lead is never lost to a bad phone number.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use time::OffsetDateTime;

use crate::compliance::parse_consent;
use crate::identity::Identifier;
use crate::journey::EventKind;
use crate::quiet::ZoneName;
use crate::values::{
    Brand, ClickId, Currency, DeviceId, Email, Invalid, Money, PhoneCheck, PhoneE164, PhoneRegion, TransactionId,
    UserId, clean_text,
};

/// Longest free-text value we keep (URLs, user agents, campaign names).
pub const MAX_TEXT_LEN: usize = 2048;
/// Longest value that becomes part of a key or a counter row (influencer, campaign,
/// source, medium, `sub1`–`sub10`): longer ones are refused, never truncated, so no record
/// is made that the attribution function cannot count.
pub const MAX_KEY_TEXT_LEN: usize = 128;
/// Longest personal name we keep.
pub const MAX_NAME_LEN: usize = 100;

/// The request's fields, query string and body merged (body wins), keys as sent. A JSON
/// object or array sent as a value is remembered as such, never read as text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fields {
    text: BTreeMap<String, String>,
    structured: BTreeSet<String>,
}

impl Fields {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<String>) {
        let key = key.into();
        self.structured.remove(&key);
        self.text.insert(key, value.into());
    }
    /// A key whose value is a JSON object or array.
    pub fn insert_structured(&mut self, key: impl Into<String>) {
        let key = key.into();
        self.text.remove(&key);
        self.structured.insert(key);
    }
    pub fn remove(&mut self, key: &str) -> Option<String> {
        self.structured.remove(key);
        self.text.remove(key)
    }
    /// Whether `key` was sent (as text).
    pub fn contains(&self, key: &str) -> bool {
        self.text.contains_key(key)
    }
    /// The first alias that carries a meaningful value.
    pub fn pick(&self, aliases: &[&str]) -> Option<&str> {
        aliases
            .iter()
            .find_map(|a| self.text.get(*a).and_then(|v| meaningful(v)))
    }
    /// An object or array sent for any field we read is a 400 naming that field (under its
    /// canonical name); unknown keys may carry anything.
    fn reject_structured(&self) -> Result<(), FieldError> {
        match alias::ALL
            .iter()
            .find(|aliases| aliases.iter().any(|a| self.structured.contains(*a)))
        {
            None => Ok(()),
            Some(aliases) => Err(FieldError {
                field: aliases[0],
                code: "invalid_type",
                message: format!("{} must be a string or a number, not an object or array", aliases[0]),
            }),
        }
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Fields {
    fn from_iter<T: IntoIterator<Item = (K, V)>>(iter: T) -> Self {
        let mut fields = Self::new();
        for (k, v) in iter {
            fields.insert(k, v);
        }
        fields
    }
}

/// Whether `v` is a tracker macro nobody replaced: `{name}`, `{{name}}` or `%7Bname%7D`,
/// where the name is a plain identifier. `{"$gt": ""}` is not a macro.
fn is_macro(v: &str) -> bool {
    let inner = v
        .strip_prefix("{{")
        .and_then(|r| r.strip_suffix("}}"))
        .or_else(|| v.strip_prefix('{').and_then(|r| r.strip_suffix('}')))
        .or_else(|| v.strip_prefix("%7B").and_then(|r| r.strip_suffix("%7D")));
    inner.is_some_and(|name| {
        let name = name.trim();
        !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || "_.:-".contains(c))
    })
}

/// `None` when the value is absent in substance: empty, an unreplaced macro, or a placeholder.
pub fn meaningful(value: &str) -> Option<&str> {
    let v = value.trim();
    let is_macro = is_macro(v);
    let placeholder = ["null", "undefined", "-1", "anonymous", "(null)", "nil"]
        .iter()
        .any(|p| v.eq_ignore_ascii_case(p));
    if v.is_empty() || is_macro || placeholder {
        None
    } else {
        Some(v)
    }
}

/// Field aliases, canonical name first (the name used in errors and docs).
pub mod alias {
    /// `clickid` is Redtrack's macro and parameter, `rtkcid`/`rtkclickid` what its landing
    /// script and links carry, `cid` Voluum's.
    pub const CLICK_ID: &[&str] = &["clickId", "clickid", "click_id", "rtkcid", "rtkclickid", "cid", "subid"];
    pub const IP: &[&str] = &["ip"];
    pub const USER_AGENT: &[&str] = &["userAgent", "ua", "user_agent"];
    pub const CAMPAIGN: &[&str] = &["campaign", "campaign_name", "utm_campaign", "rt_campaign"];
    pub const SOURCE: &[&str] = &["source", "utm_source", "rt_source"];
    pub const MEDIUM: &[&str] = &["medium", "utm_medium", "rt_medium"];
    pub const LANDING_PAGE: &[&str] = &["landingPage", "landing", "landing_page", "page"];
    pub const REFERRER: &[&str] = &["referrer", "referer"];
    pub const INFLUENCER_ID: &[&str] = &["influencerId"];
    pub const BRAND: &[&str] = &["operatorId", "brand"];
    pub const POSTBACK_BRAND: &[&str] = &["operatorId", "operator", "brand"];
    pub const DEVICE_ID: &[&str] = &["deviceId"];
    pub const EMAIL: &[&str] = &["email"];
    pub const PHONE: &[&str] = &["phone"];
    pub const FIRST_NAME: &[&str] = &["firstName"];
    pub const LAST_NAME: &[&str] = &["lastName"];
    pub const EVENT_TYPE: &[&str] = &["eventType", "event", "type", "et", "status"];
    pub const AMOUNT: &[&str] = &["depositAmount", "amount", "payout", "sum"];
    pub const CURRENCY: &[&str] = &["currency"];
    pub const USER_ID: &[&str] = &["userId"];
    /// `rdtk_event_id`: Redtrack's conversion id on its postbacks.
    pub const TRANSACTION_ID: &[&str] = &[
        "transactionId",
        "txid",
        "tid",
        "transaction_id",
        "event_id",
        "rdtk_event_id",
    ];
    pub const CONSENT: &[&str] = &["consent", "marketingOptIn", "marketing_opt_in", "optIn", "opt_in"];
    pub const TIMEZONE: &[&str] = &["timezone", "timeZone", "tz"];
    pub const OCCURRED_AT: &[&str] = &[
        "occurredAt",
        "occurred_at",
        "eventTime",
        "event_time",
        "conversionTime",
        "conversion_time",
        "timestamp",
        "track_time",
    ];

    /// Every field any endpoint reads.
    pub const ALL: &[&[&str]] = &[
        CLICK_ID,
        IP,
        USER_AGENT,
        CAMPAIGN,
        SOURCE,
        MEDIUM,
        LANDING_PAGE,
        REFERRER,
        INFLUENCER_ID,
        POSTBACK_BRAND,
        DEVICE_ID,
        EMAIL,
        PHONE,
        FIRST_NAME,
        LAST_NAME,
        EVENT_TYPE,
        AMOUNT,
        CURRENCY,
        USER_ID,
        TRANSACTION_ID,
        CONSENT,
        TIMEZONE,
        OCCURRED_AT,
        SUBS,
        PARAMS,
    ];
    /// Tracker sub-ids: Redtrack has twenty (its script puts Meta's `_fbp` and `_fbc` in 19
    /// and 20).
    pub const SUBS: &[&str] = &[
        "sub1", "sub2", "sub3", "sub4", "sub5", "sub6", "sub7", "sub8", "sub9", "sub10", "sub11", "sub12", "sub13",
        "sub14", "sub15", "sub16", "sub17", "sub18", "sub19", "sub20",
    ];
    /// Other marketing parameters a click keeps as sent (`params`): the tracker's campaign
    /// id and the traffic source's click id (Redtrack's `cmpid`, `ref_id`), the UTMs that are
    /// not campaign, source or medium, and the ad networks' click ids.
    pub const PARAMS: &[&str] = &[
        "cmpid",
        "ref_id",
        "utm_content",
        "utm_term",
        "fbclid",
        "gclid",
        "ttclid",
        "msclkid",
    ];
}

/// A rejected field: 400 with this field's canonical name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: &'static str,
    pub code: &'static str,
    pub message: String,
}

impl FieldError {
    pub fn new(field: &'static str, invalid: Invalid) -> Self {
        Self {
            field,
            code: invalid.code,
            message: invalid.message,
        }
    }
    fn missing(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            code: "missing",
            message: message.into(),
        }
    }
}

/// A text field of a request body (`None`: absent or `null`) that must be there and not
/// blank, checked by `parse`.
pub fn required<'a, T>(
    field: &'static str,
    sent: Option<&'a str>,
    parse: impl FnOnce(&'a str) -> Result<T, Invalid>,
) -> Result<T, FieldError> {
    match sent {
        Some(raw) if !raw.trim().is_empty() => parse(raw).map_err(|e| FieldError::new(field, e)),
        _ => Err(FieldError::missing(field, format!("{field} is required"))),
    }
}

/// An optional text field of a request body, checked by `parse` when sent.
pub fn optional<'a, T>(
    field: &'static str,
    sent: Option<&'a str>,
    parse: impl FnOnce(&'a str) -> Result<T, Invalid>,
) -> Result<Option<T>, FieldError> {
    sent.map(|raw| parse(raw).map_err(|e| FieldError::new(field, e)))
        .transpose()
}

/// Text as sent, for `required` and `optional` fields read without a parser.
pub fn text(raw: &str) -> Result<String, Invalid> {
    Ok(raw.to_owned())
}

/// An optional field we dropped, reported back to the caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Warning {
    pub field: &'static str,
    pub code: &'static str,
    pub message: String,
}

/// Defaults applied where a request is silent; they come from configuration.
#[derive(Debug, Clone)]
pub struct Defaults {
    /// Brand for requests without one (`None`: the placeholder `unbranded`).
    pub brand: Option<Brand>,
    pub currency: Currency,
    pub phone_region: PhoneRegion,
}

impl Defaults {
    fn brand(&self) -> Brand {
        self.brand.clone().unwrap_or_else(Brand::unbranded)
    }
}

/// Collects warnings while reading optional fields.
struct Reader<'a> {
    fields: &'a Fields,
    warnings: Vec<Warning>,
}

impl<'a> Reader<'a> {
    fn new(fields: &'a Fields) -> Result<Self, FieldError> {
        fields.reject_structured()?;
        Ok(Self {
            fields,
            warnings: Vec::new(),
        })
    }

    fn required<T>(
        &self,
        aliases: &[&'static str],
        parse: impl FnOnce(&str) -> Result<T, Invalid>,
    ) -> Result<T, FieldError> {
        let field = aliases[0];
        let raw = self
            .fields
            .pick(aliases)
            .ok_or_else(|| FieldError::missing(field, format!("{field} is required")))?;
        parse(raw).map_err(|e| FieldError::new(field, e))
    }

    /// A field whose invalid value rejects the request (money, currency, brand).
    fn strict<T>(
        &self,
        aliases: &[&'static str],
        parse: impl FnOnce(&str) -> Result<T, Invalid>,
    ) -> Result<Option<T>, FieldError> {
        match self.fields.pick(aliases) {
            None => Ok(None),
            Some(raw) => parse(raw).map(Some).map_err(|e| FieldError::new(aliases[0], e)),
        }
    }

    /// A field whose invalid value is dropped with a warning.
    fn lenient<T>(&mut self, aliases: &[&'static str], parse: impl FnOnce(&str) -> Result<T, Invalid>) -> Option<T> {
        let raw = self.fields.pick(aliases)?;
        match parse(raw) {
            Ok(v) => Some(v),
            Err(e) => {
                self.warnings.push(Warning {
                    field: aliases[0],
                    code: e.code,
                    message: e.message,
                });
                None
            }
        }
    }

    /// A phone number: an impossible one is dropped with a warning, a possible one unknown to
    /// the metadata is kept with a warning (no real lead is lost to phone validation).
    fn phone(&mut self, region: PhoneRegion) -> Option<PhoneE164> {
        let (number, check) = self.lenient(alias::PHONE, |raw| PhoneE164::check(raw, region))?;
        if check == PhoneCheck::Unverified {
            self.warnings.push(Warning {
                field: alias::PHONE[0],
                code: "unverified_phone",
                message: "kept, but its number range is unknown to the phone metadata: check it".into(),
            });
        }
        Some(number)
    }

    /// Free text that becomes part of a key or counter row: too long rejects the request.
    fn key_text(&self, aliases: &[&'static str]) -> Result<Option<String>, FieldError> {
        Ok(self.strict(aliases, bounded_key)?.filter(|t| !t.is_empty()))
    }

    /// A tracked link's visit id coming back as Redtrack's `sub10` (`v` and 32 hex digits):
    /// an identifier of the visit's customer. Any other `sub10` is only a sub-id.
    fn visit(&self) -> Option<ClickId> {
        let raw = self.fields.pick(&["sub10"])?.trim();
        let hex = raw.strip_prefix('v')?;
        let ours = hex.len() == 32 && hex.chars().all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c));
        ours.then(|| ClickId::parse(raw).ok()).flatten()
    }

    fn text(&mut self, aliases: &[&'static str], max: usize) -> Option<String> {
        self.lenient(aliases, |raw| {
            let text = clean_text(raw);
            if text.chars().count() > max {
                Err(Invalid::new("too_long", format!("longer than {max} characters")))
            } else {
                Ok(text)
            }
        })
        .filter(|t| !t.is_empty())
    }
}

/// Text that can become part of a key: clean, at most `MAX_KEY_TEXT_LEN` characters.
fn bounded_key(raw: &str) -> Result<String, Invalid> {
    let text = clean_text(raw);
    if text.chars().count() > MAX_KEY_TEXT_LEN {
        Err(Invalid::new(
            "too_long",
            format!("longer than {MAX_KEY_TEXT_LEN} characters"),
        ))
    } else {
        Ok(text)
    }
}

/// A moment as operators send it: RFC 3339, Unix seconds or milliseconds, or
/// `YYYY-MM-DD HH:MM:SS` (taken as UTC).
pub fn parse_moment(raw: &str) -> Result<OffsetDateTime, Invalid> {
    let raw = raw.trim();
    let invalid = || {
        Invalid::new(
            "invalid_format",
            "must be an RFC 3339 time, Unix seconds or milliseconds, or YYYY-MM-DD HH:MM:SS (UTC)",
        )
    };
    if raw.bytes().all(|b| b.is_ascii_digit()) {
        let n: i64 = raw.parse().map_err(|_| invalid())?;
        let seconds = if raw.len() >= 13 { n / 1000 } else { n };
        return OffsetDateTime::from_unix_timestamp(seconds).map_err(|_| invalid());
    }
    if let Ok(t) = OffsetDateTime::parse(raw, &time::format_description::well_known::Rfc3339) {
        return Ok(t.to_offset(time::UtcOffset::UTC));
    }
    let plain = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    time::PrimitiveDateTime::parse(&raw.replacen('T', " ", 1), plain)
        .map(|t| t.assume_utc())
        .map_err(|_| invalid())
}

/// A person's name as written (accents, right-to-left scripts and emoji kept; control
/// characters already stripped), or refused: markup, a URL, a domain or an e-mail address is
/// not a name, and a name ends up in the emails a brand sends (greetings, subjects).
pub fn parse_name(raw: &str) -> Result<String, Invalid> {
    let name = clean_text(raw);
    if name.chars().count() > MAX_NAME_LEN {
        return Err(Invalid::new(
            "too_long",
            format!("longer than {MAX_NAME_LEN} characters"),
        ));
    }
    let lower = name.to_lowercase();
    let markup = name.contains(['<', '>']);
    let url = lower.contains("://") || lower.contains("www.");
    let email = name.contains('@');
    // `evil.example`, `bit.ly/x`: a dot between letters with no space after it.
    let chars: Vec<char> = name.chars().collect();
    let domain = chars
        .windows(3)
        .any(|w| w[0].is_alphanumeric() && w[1] == '.' && w[2].is_ascii_alphabetic());
    if markup || url || email || domain {
        return Err(Invalid::new(
            "not_a_name",
            "looks like markup, a link, a domain or an e-mail address, not a name",
        ));
    }
    Ok(name)
}

fn parse_ip(raw: &str) -> Result<String, Invalid> {
    raw.parse::<std::net::IpAddr>()
        .map(|ip| ip.to_string())
        .map_err(|_| Invalid::new("invalid_format", "not an IPv4 or IPv6 address"))
}

/// Names given in a lead.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Names {
    pub first: Option<String>,
    pub last: Option<String>,
}

impl Names {
    /// Names with nothing printable left are no names.
    fn without_empty(self) -> Self {
        Self {
            first: self.first.filter(|n| !n.is_empty()),
            last: self.last.filter(|n| !n.is_empty()),
        }
    }
}

/// Attributes of a click that are not identity: where it came from and with what.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClickDetails {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub campaign: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub medium: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub landing_page: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub referrer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub influencer_id: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub subs: BTreeMap<String, String>,
    /// `alias::PARAMS` as sent.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClickCommand {
    pub click_id: ClickId,
    pub brand: Brand,
    pub device_id: Option<DeviceId>,
    pub email: Option<Email>,
    pub details: ClickDetails,
    /// When the click happened, if the sender says (a tracker's click log, imported late).
    pub occurred_at: Option<OffsetDateTime>,
    /// The tracked-link visit this click came through (its `sub10`), when it is not that
    /// visit's own click.
    pub visit: Option<ClickId>,
    pub warnings: Vec<Warning>,
    /// A visit through a tracked link: the same browser again within the window is the
    /// same click (answered as a duplicate of the first).
    pub once_per: Option<VisitWindow>,
}

/// One visit per key and window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VisitWindow {
    /// A digest of what identifies the browser's visit (never the raw address or agent).
    pub key: String,
    pub window: time::Duration,
}

impl ClickCommand {
    pub fn parse(fields: &Fields, defaults: &Defaults) -> Result<Self, FieldError> {
        let mut r = Reader::new(fields)?;
        let click_id = r.required(alias::CLICK_ID, ClickId::parse)?;
        let brand = r
            .strict(alias::BRAND, Brand::parse)?
            .unwrap_or_else(|| defaults.brand());
        let mut subs = BTreeMap::new();
        for (i, key) in alias::SUBS.iter().enumerate() {
            let value = if i < 10 {
                r.key_text(std::slice::from_ref(key))?
            } else {
                // Redtrack's script fills sub11–20 itself (Meta's `_fbc` in 20 can run past the
                // bound): an over-long one is dropped with a warning, the click is kept.
                r.lenient(std::slice::from_ref(key), bounded_key)
            };
            if let Some(v) = value.filter(|v| !v.is_empty()) {
                subs.insert(key.to_string(), v);
            }
        }
        let mut params = BTreeMap::new();
        for key in alias::PARAMS {
            // Redtrack's links say `rtkcmpid` where its macros say `cmpid`.
            let aliases: &[&'static str] = match *key {
                "cmpid" => &["cmpid", "rtkcmpid"],
                _ => std::slice::from_ref(key),
            };
            // Kept as sent, never a key: ad click ids (a `fbclid`) can be long.
            if let Some(v) = r.text(aliases, MAX_TEXT_LEN) {
                params.insert(key.to_string(), v);
            }
        }
        let details = ClickDetails {
            campaign: r.key_text(alias::CAMPAIGN)?,
            source: r.key_text(alias::SOURCE)?,
            medium: r.key_text(alias::MEDIUM)?,
            influencer_id: r.key_text(alias::INFLUENCER_ID)?,
            ip: r.lenient(alias::IP, parse_ip),
            user_agent: r.text(alias::USER_AGENT, MAX_TEXT_LEN),
            landing_page: r.text(alias::LANDING_PAGE, MAX_TEXT_LEN),
            referrer: r.text(alias::REFERRER, MAX_TEXT_LEN),
            subs,
            params,
        };
        let device_id = r.lenient(alias::DEVICE_ID, DeviceId::parse);
        let email = r.lenient(alias::EMAIL, Email::parse);
        let visit = r.visit().filter(|v| *v != click_id);
        let occurred_at = r.lenient(alias::OCCURRED_AT, parse_moment);
        Ok(Self {
            click_id,
            brand,
            device_id,
            email,
            details,
            occurred_at,
            visit,
            warnings: r.warnings,
            once_per: None,
        })
    }

    pub fn identifiers(&self) -> Vec<Identifier> {
        let mut ids = vec![Identifier::ClickId(self.click_id.clone())];
        ids.extend(self.visit.clone().map(Identifier::ClickId));
        ids.extend(self.device_id.clone().map(Identifier::DeviceId));
        ids.extend(self.email.clone().map(Identifier::Email));
        ids
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeadCommand {
    pub click_id: Option<ClickId>,
    /// A tracked link's visit (`sub10`), `ClickCommand::visit`.
    pub visit: Option<ClickId>,
    pub email: Option<Email>,
    pub phone: Option<PhoneE164>,
    pub device_id: Option<DeviceId>,
    pub names: Names,
    pub campaign: Option<String>,
    pub brand: Brand,
    pub consent: Option<bool>,
    pub timezone: Option<ZoneName>,
    pub warnings: Vec<Warning>,
}

/// Fields that can identify a lead; at least one must be valid.
const LEAD_IDENTIFIERS: [&str; 4] = ["clickId", "email", "phone", "deviceId"];

impl LeadCommand {
    pub fn parse(fields: &Fields, defaults: &Defaults) -> Result<Self, FieldError> {
        let mut r = Reader::new(fields)?;
        let brand = r
            .strict(alias::BRAND, Brand::parse)?
            .unwrap_or_else(|| defaults.brand());
        let click_id = r.lenient(alias::CLICK_ID, ClickId::parse);
        let email = r.lenient(alias::EMAIL, Email::parse);
        let phone = r.phone(defaults.phone_region);
        let device_id = r.lenient(alias::DEVICE_ID, DeviceId::parse);
        let names = Names {
            first: r.lenient(alias::FIRST_NAME, parse_name),
            last: r.lenient(alias::LAST_NAME, parse_name),
        }
        .without_empty();
        let campaign = r.key_text(alias::CAMPAIGN)?;
        let consent = r.lenient(alias::CONSENT, parse_consent);
        let timezone = r.lenient(alias::TIMEZONE, ZoneName::parse);
        let visit = r.visit().filter(|v| click_id.as_ref() != Some(v));
        let cmd = Self {
            click_id,
            visit,
            email,
            phone,
            device_id,
            names,
            campaign,
            brand,
            consent,
            timezone,
            warnings: r.warnings,
        };
        if cmd.identifiers().is_empty() {
            return Err(no_identifier(&cmd.warnings, &LEAD_IDENTIFIERS));
        }
        Ok(cmd)
    }

    pub fn identifiers(&self) -> Vec<Identifier> {
        let mut ids = Vec::new();
        ids.extend(self.click_id.clone().map(Identifier::ClickId));
        ids.extend(self.visit.clone().map(Identifier::ClickId));
        ids.extend(self.email.clone().map(Identifier::Email));
        ids.extend(self.phone.clone().map(Identifier::Phone));
        ids.extend(self.device_id.clone().map(Identifier::DeviceId));
        ids
    }
}

/// The request had no usable identifier. If exactly the identifiers it sent were invalid,
/// name the first of them, so the caller sees which value to fix.
fn no_identifier(warnings: &[Warning], accepted: &[&'static str]) -> FieldError {
    match warnings.iter().find(|w| accepted.contains(&w.field)) {
        Some(w) => FieldError {
            field: w.field,
            code: w.code,
            message: w.message.clone(),
        },
        None => FieldError::missing(accepted[0], format!("one of {} is required", accepted.join(", "))),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostbackCommand {
    pub kind: EventKind,
    pub brand: Brand,
    pub amount: Option<Money>,
    pub currency: Currency,
    pub transaction_id: Option<TransactionId>,
    pub click_id: Option<ClickId>,
    /// A tracked link's visit (`sub10`), `ClickCommand::visit`.
    pub visit: Option<ClickId>,
    pub email: Option<Email>,
    pub phone: Option<PhoneE164>,
    pub user_id: Option<UserId>,
    pub device_id: Option<DeviceId>,
    pub consent: Option<bool>,
    pub timezone: Option<ZoneName>,
    /// When the operator says the conversion happened (late, batched postbacks).
    pub occurred_at: Option<OffsetDateTime>,
    pub warnings: Vec<Warning>,
}

const POSTBACK_IDENTIFIERS: [&str; 5] = ["clickId", "userId", "email", "phone", "deviceId"];

impl PostbackCommand {
    pub fn parse(fields: &Fields, defaults: &Defaults) -> Result<Self, FieldError> {
        let mut r = Reader::new(fields)?;
        let kind = r.required(alias::EVENT_TYPE, EventKind::parse)?;
        let brand = r
            .strict(alias::POSTBACK_BRAND, Brand::parse)?
            .unwrap_or_else(|| defaults.brand());
        let amount = r.strict(alias::AMOUNT, Money::parse)?;
        let currency = r
            .strict(alias::CURRENCY, Currency::parse)?
            .unwrap_or_else(|| defaults.currency.clone());
        let transaction_id = r.strict(alias::TRANSACTION_ID, TransactionId::parse)?;
        let click_id = r.lenient(alias::CLICK_ID, ClickId::parse);
        let visit = r.visit().filter(|v| click_id.as_ref() != Some(v));
        let cmd = Self {
            kind,
            brand,
            amount,
            currency,
            transaction_id,
            click_id,
            visit,
            user_id: r.lenient(alias::USER_ID, UserId::parse),
            email: r.lenient(alias::EMAIL, Email::parse),
            phone: r.phone(defaults.phone_region),
            device_id: r.lenient(alias::DEVICE_ID, DeviceId::parse),
            consent: r.lenient(alias::CONSENT, parse_consent),
            timezone: r.lenient(alias::TIMEZONE, ZoneName::parse),
            occurred_at: r.lenient(alias::OCCURRED_AT, parse_moment),
            warnings: r.warnings,
        };
        if cmd.identifiers().is_empty() {
            return Err(no_identifier(&cmd.warnings, &POSTBACK_IDENTIFIERS));
        }
        Ok(cmd)
    }

    pub fn identifiers(&self) -> Vec<Identifier> {
        let mut ids = Vec::new();
        ids.extend(self.click_id.clone().map(Identifier::ClickId));
        ids.extend(self.visit.clone().map(Identifier::ClickId));
        ids.extend(self.user_id.clone().map(|user| Identifier::UserId {
            operator: self.brand.clone(),
            user,
        }));
        ids.extend(self.email.clone().map(Identifier::Email));
        ids.extend(self.phone.clone().map(Identifier::Phone));
        ids.extend(self.device_id.clone().map(Identifier::DeviceId));
        ids
    }

    /// Revenue this event carries, if any.
    pub fn revenue(&self) -> Option<(Currency, Money)> {
        self.amount.filter(|a| !a.is_zero()).map(|a| (self.currency.clone(), a))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_field_is_required_or_optional_and_named_when_refused() {
        let brand = |raw| Brand::parse(raw);
        assert_eq!(required("brand", None, brand).unwrap_err().code, "missing");
        assert_eq!(required("brand", Some("  "), brand).unwrap_err().code, "missing");
        let bad = required("brand", Some("no spaces"), brand).unwrap_err();
        assert_eq!((bad.field, bad.code), ("brand", "invalid_format"));
        assert_eq!(required("brand", Some("rushbet"), brand).unwrap().as_str(), "rushbet");
        // Absent is absent; sent, even blank, it is checked and refused by name.
        assert_eq!(optional("brand", None, brand), Ok(None));
        assert_eq!(optional("brand", Some(""), brand).unwrap_err().field, "brand");
        assert_eq!(optional("brand", Some("a b"), brand).unwrap_err().field, "brand");
    }

    fn defaults() -> Defaults {
        Defaults {
            brand: None,
            currency: Currency::parse("USD").unwrap(),
            phone_region: PhoneRegion::parse("US").unwrap(),
        }
    }

    fn fields(pairs: &[(&str, &str)]) -> Fields {
        pairs.iter().map(|(k, v)| (*k, *v)).collect()
    }

    #[test]
    fn unreplaced_macros_and_placeholders_are_absent() {
        for v in [
            "",
            "  ",
            "{user_agent}",
            "{{clickId}}",
            "null",
            "NULL",
            "undefined",
            "-1",
            "anonymous",
        ] {
            assert_eq!(meaningful(v), None, "{v:?}");
        }
        assert_eq!(meaningful(" abc "), Some("abc"));
    }

    #[test]
    fn only_identifier_shaped_braces_are_macros() {
        assert_eq!(meaningful("{click_id}"), None);
        assert_eq!(meaningful("%7Bsub1%7D"), None);
        assert_eq!(meaningful(r#"{"$gt": ""}"#), Some(r#"{"$gt": ""}"#));
        assert_eq!(meaningful("{a b}"), Some("{a b}"));
    }

    #[test]
    fn an_object_for_a_known_field_is_rejected_naming_it() {
        let mut f = fields(&[("eventType", "deposit"), ("clickId", "c1")]);
        f.insert_structured("amount");
        let err = PostbackCommand::parse(&f, &defaults()).unwrap_err();
        assert_eq!((err.field, err.code), ("depositAmount", "invalid_type"));
        let mut f = fields(&[("clickId", "c1")]);
        f.insert_structured("metadata");
        assert!(
            ClickCommand::parse(&f, &defaults()).is_ok(),
            "unknown keys may hold anything"
        );
    }

    #[test]
    fn names_and_free_text_lose_control_characters() {
        let l = LeadCommand::parse(
            &fields(&[
                ("email", "a@b.co"),
                ("firstName", "Ana\r\nBcc: x"),
                ("lastName", "\u{202E}\u{7}"),
            ]),
            &defaults(),
        )
        .unwrap();
        assert_eq!(l.names.first.as_deref(), Some("Ana  Bcc: x"));
        assert_eq!(l.names.last, None, "nothing printable is left");
    }

    #[test]
    fn names_that_are_markup_links_domains_or_addresses_are_dropped_with_a_warning() {
        for hostile in [
            "<a href=\"https://evil.example/x\">Claim bonus</a>",
            "Juan <b>",
            "https://evil.example",
            "www.evil.example",
            "evil.example",
            "bit.ly/claim",
            "juan@evil.example",
        ] {
            let l = LeadCommand::parse(&fields(&[("email", "a@b.co"), ("firstName", hostile)]), &defaults()).unwrap();
            assert_eq!(l.names.first, None, "{hostile}");
            assert_eq!(
                (l.warnings[0].field, l.warnings[0].code),
                ("firstName", "not_a_name"),
                "{hostile}"
            );
            assert!(l.email.is_some(), "the rest of the lead is kept");
        }
        for name in [
            "José María",
            "Pérez-O'Brien",
            "J. R. R.",
            "محمد",
            "Zoë 🌟",
            "Nguyễn Văn A.",
            "Anne-Sophie",
        ] {
            let l = LeadCommand::parse(&fields(&[("email", "a@b.co"), ("lastName", name)]), &defaults()).unwrap();
            assert_eq!(l.names.last.as_deref(), Some(name), "kept as written");
            assert!(l.warnings.is_empty(), "{name}");
        }
    }

    #[test]
    fn click_accepts_redtrack_spellings() {
        let f = fields(&[
            ("clickid", "rt-123"),
            ("ua", "{user_agent}"),
            ("campaign_name", "spring"),
            ("landing", "https://lp.example/x"),
            ("sub3", "{sub3}"),
            ("sub1", "yt"),
        ]);
        let c = ClickCommand::parse(&f, &defaults()).unwrap();
        assert_eq!(c.click_id.as_str(), "rt-123");
        assert_eq!(c.details.user_agent, None);
        assert_eq!(c.details.campaign.as_deref(), Some("spring"));
        assert_eq!(c.details.landing_page.as_deref(), Some("https://lp.example/x"));
        assert_eq!(c.details.subs.len(), 1);
        assert_eq!(c.brand.as_str(), "unbranded");
    }

    #[test]
    fn a_tracked_links_visit_in_sub10_is_an_identifier_and_any_other_sub10_is_not() {
        let visit = format!("v{}", "0123456789abcdef".repeat(2));
        let l = LeadCommand::parse(&fields(&[("sub10", &visit), ("email", "a@b.co")]), &defaults()).unwrap();
        assert!(
            l.identifiers()
                .contains(&Identifier::ClickId(ClickId::parse(&visit).unwrap()))
        );
        let p = PostbackCommand::parse(&fields(&[("sub10", &visit), ("type", "ftd")]), &defaults()).unwrap();
        assert_eq!(p.identifiers(), [Identifier::ClickId(ClickId::parse(&visit).unwrap())]);
        for other in ["carlos", "v123", &visit.to_uppercase()] {
            let l = LeadCommand::parse(&fields(&[("sub10", other), ("email", "a@b.co")]), &defaults()).unwrap();
            assert_eq!(l.identifiers().len(), 1, "{other}");
        }
    }

    #[test]
    fn click_accepts_what_redtrack_links_and_its_script_carry() {
        let f = fields(&[
            ("rtkcid", "6571f2c0a1b2c3d4e5f60718"),
            ("rtkcmpid", "64f0aa"),
            ("ref_id", "src-889"),
            ("utm_source", "instagram"),
            ("utm_medium", "story"),
            ("utm_campaign", "spring"),
            ("utm_content", "reel-2"),
            ("fbclid", "IwAR0abc"),
            ("sub11", "eleven"),
            ("sub20", "fb.1.1700000000.abc"),
            ("referer", "https://instagram.com/"),
        ]);
        let c = ClickCommand::parse(&f, &defaults()).unwrap();
        assert_eq!(c.click_id.as_str(), "6571f2c0a1b2c3d4e5f60718");
        let d = &c.details;
        assert_eq!(
            (d.source.as_deref(), d.medium.as_deref(), d.campaign.as_deref()),
            (Some("instagram"), Some("story"), Some("spring"))
        );
        assert_eq!(d.referrer.as_deref(), Some("https://instagram.com/"));
        assert_eq!(
            (d.subs["sub11"].as_str(), d.subs["sub20"].as_str()),
            ("eleven", "fb.1.1700000000.abc")
        );
        let params: Vec<(&str, &str)> = d.params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(
            params,
            [
                ("cmpid", "64f0aa"),
                ("fbclid", "IwAR0abc"),
                ("ref_id", "src-889"),
                ("utm_content", "reel-2")
            ]
        );
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        // A sub-id past 20 is not ours to keep.
        let c = ClickCommand::parse(&fields(&[("clickid", "x1"), ("sub21", "no")]), &defaults()).unwrap();
        assert!(c.details.subs.is_empty());
        // A long ad click id is kept; an over-long sub20 (Meta's _fbc) is dropped with a
        // warning and the click kept.
        let (fbclid, fbc) = ("IwAR".repeat(60), format!("fb.1.1700000000000.{}", "x".repeat(150)));
        let c = ClickCommand::parse(
            &fields(&[("clickid", "x2"), ("fbclid", &fbclid), ("sub20", &fbc)]),
            &defaults(),
        )
        .unwrap();
        assert_eq!(c.details.params["fbclid"], fbclid);
        assert!(!c.details.subs.contains_key("sub20"));
        assert_eq!(c.warnings[0].field, "sub20");
    }

    #[test]
    fn values_that_become_keys_are_bounded_and_name_their_field() {
        let long = "x".repeat(MAX_KEY_TEXT_LEN + 1);
        for field in [
            "influencerId",
            "campaign",
            "campaign_name",
            "source",
            "medium",
            "sub1",
            "sub10",
        ] {
            let err = ClickCommand::parse(&fields(&[("clickId", "c1"), (field, &long)]), &defaults()).unwrap_err();
            let canonical = if field == "campaign_name" { "campaign" } else { field };
            assert_eq!((err.field, err.code), (canonical, "too_long"), "{field}");
        }
        let ok = "é".repeat(MAX_KEY_TEXT_LEN);
        let c = ClickCommand::parse(&fields(&[("clickId", "c1"), ("influencerId", &ok)]), &defaults()).unwrap();
        assert_eq!(
            c.details.influencer_id.as_deref(),
            Some(ok.as_str()),
            "characters, not bytes"
        );
        let err = LeadCommand::parse(&fields(&[("email", "a@b.co"), ("campaign", &long)]), &defaults()).unwrap_err();
        assert_eq!(err.field, "campaign");
        let err = ClickCommand::parse(&fields(&[("clickId", &long)]), &defaults()).unwrap_err();
        assert_eq!((err.field, err.code), ("clickId", "too_long"));
        let err = PostbackCommand::parse(
            &fields(&[("event", "ftd"), ("clickId", "c"), ("txid", &long)]),
            &defaults(),
        )
        .unwrap_err();
        assert_eq!((err.field, err.code), ("transactionId", "too_long"));
    }

    #[test]
    fn click_without_click_id_names_the_field() {
        let err = ClickCommand::parse(&fields(&[("clickid", "{click_id}")]), &defaults()).unwrap_err();
        assert_eq!((err.field, err.code), ("clickId", "missing"));
    }

    #[test]
    fn click_with_bad_ip_keeps_the_click_and_warns() {
        let c = ClickCommand::parse(&fields(&[("cid", "c1"), ("ip", "999.1.1.1")]), &defaults()).unwrap();
        assert_eq!(c.details.ip, None);
        assert_eq!(c.warnings[0].field, "ip");
    }

    #[test]
    fn lead_with_bad_phone_keeps_email_and_warns() {
        let l = LeadCommand::parse(&fields(&[("email", "a@b.co"), ("phone", "12")]), &defaults()).unwrap();
        assert!(l.email.is_some());
        assert_eq!(l.phone, None);
        assert_eq!(l.warnings[0].field, "phone");
    }

    #[test]
    fn a_possible_phone_unknown_to_the_metadata_is_kept_with_a_warning() {
        let l = LeadCommand::parse(&fields(&[("phone", "+55 11 56123-4567")]), &defaults()).unwrap();
        assert_eq!(l.phone.unwrap().as_str(), "+5511561234567");
        assert_eq!((l.warnings[0].field, l.warnings[0].code), ("phone", "unverified_phone"));
        let l = LeadCommand::parse(&fields(&[("phone", "+55 11 96123-4567")]), &defaults()).unwrap();
        assert!(l.warnings.is_empty(), "São Paulo's mobiles are valid");
    }

    #[test]
    fn lead_without_any_valid_identifier_is_rejected_naming_the_bad_one() {
        let err = LeadCommand::parse(&fields(&[("email", "nope"), ("firstName", "Ana")]), &defaults()).unwrap_err();
        assert_eq!(err.field, "email");
        let err = LeadCommand::parse(&fields(&[("firstName", "Ana")]), &defaults()).unwrap_err();
        assert_eq!((err.field, err.code), ("clickId", "missing"));
    }

    #[test]
    fn postback_reads_tracker_spellings_and_string_amounts() {
        let f = fields(&[
            ("et", "FTD"),
            ("payout", "100.50"),
            ("txid", "T1"),
            ("cid", "c1"),
            ("brand", "Roobet"),
        ]);
        let p = PostbackCommand::parse(&f, &defaults()).unwrap();
        assert_eq!(p.kind, EventKind::Ftd);
        assert_eq!(p.amount.unwrap().to_string(), "100.5");
        assert_eq!(p.currency.as_str(), "USD");
        assert_eq!(p.brand.as_str(), "roobet");
        assert_eq!(p.transaction_id.unwrap().as_str(), "T1");
    }

    #[test]
    fn postback_rejects_bad_money_and_currency() {
        let base = [("eventType", "deposit"), ("clickId", "c1")];
        let mut f = fields(&base);
        f.insert("depositAmount", "ten");
        assert_eq!(
            PostbackCommand::parse(&f, &defaults()).unwrap_err().field,
            "depositAmount"
        );
        let mut f = fields(&base);
        f.insert("currency", "DOLLARS");
        assert_eq!(PostbackCommand::parse(&f, &defaults()).unwrap_err().field, "currency");
        let mut f = fields(&base);
        f.insert("depositAmount", "-3");
        assert_eq!(
            PostbackCommand::parse(&f, &defaults()).unwrap_err().field,
            "depositAmount"
        );
    }

    #[test]
    fn postback_user_id_is_scoped_to_the_operator() {
        let f = fields(&[("event", "registration"), ("operator", "rushbet"), ("userId", "u1")]);
        let p = PostbackCommand::parse(&f, &defaults()).unwrap();
        let ids = p.identifiers();
        assert_eq!(
            ids,
            vec![Identifier::UserId {
                operator: Brand::parse("rushbet").unwrap(),
                user: UserId::parse("u1").unwrap()
            }]
        );
    }

    #[test]
    fn postback_needs_an_event_type_and_an_identifier() {
        assert_eq!(
            PostbackCommand::parse(&fields(&[("clickId", "c")]), &defaults())
                .unwrap_err()
                .field,
            "eventType"
        );
        assert_eq!(
            PostbackCommand::parse(&fields(&[("event", "ftd")]), &defaults())
                .unwrap_err()
                .field,
            "clickId"
        );
    }
}
