//! Validated values. Each newtype is built only through `parse`, so once a value exists it
//! is valid everywhere: an `Email` is trimmed, lowercased and well-formed, a `PhoneE164` is
//! a real number in E.164, a `Money` is an exact non-negative decimal.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Why a single value was rejected. The caller attaches the field name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Invalid {
    pub code: &'static str,
    pub message: String,
}

impl Invalid {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// Longest opaque id we accept (click ids, device ids, operator user ids, transaction ids).
pub const MAX_ID_LEN: usize = 128;

fn opaque_id(raw: &str, what: &str) -> Result<String, Invalid> {
    let value = raw.trim();
    if value.is_empty() {
        return Err(Invalid::new("missing", format!("{what} is empty")));
    }
    if value.len() > MAX_ID_LEN {
        return Err(Invalid::new(
            "too_long",
            format!("{what} is longer than {MAX_ID_LEN} bytes"),
        ));
    }
    if value.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(Invalid::new(
            "invalid_format",
            format!("{what} contains whitespace or control characters"),
        ));
    }
    Ok(value.to_owned())
}

/// The conversions every newtype shares: deserialise through `$check`, serialise and print
/// as the inner string.
macro_rules! string_newtype {
    ($name:ident, $check:expr) => {
        impl TryFrom<String> for $name {
            type Error = Invalid;
            fn try_from(value: String) -> Result<Self, Invalid> {
                $check(&value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
    };
}

macro_rules! opaque_newtype {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn parse(raw: &str) -> Result<Self, Invalid> {
                opaque_id(raw, $what).map(Self)
            }
        }

        string_newtype!($name, |v: &str| Self::parse(v));
    };
}

opaque_newtype!(
    /// A tracker click id (Redtrack `clickid`, Voluum `cid`, Keitaro `subid` …).
    ClickId,
    "click id"
);
opaque_newtype!(
    /// A device id from the landing page or app (IDFA, GAID, fingerprint …).
    DeviceId,
    "device id"
);
opaque_newtype!(
    /// An operator's own user id. Only meaningful together with the operator (see `Identifier::UserId`).
    UserId,
    "user id"
);
opaque_newtype!(
    /// An operator's transaction id, the natural idempotency key of a conversion.
    TransactionId,
    "transaction id"
);

/// A customer id: a UUIDv7, so ids sort by creation time (the merge rule relies on it).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CustomerId(String);

impl CustomerId {
    /// Wraps a freshly generated UUIDv7 (hyphenated, lowercase). The shell generates it.
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let value = raw.trim();
        let ok = value.len() == 36
            && value.char_indices().all(|(i, c)| match i {
                8 | 13 | 18 | 23 => c == '-',
                _ => c.is_ascii_hexdigit() && !c.is_ascii_uppercase(),
            });
        if ok {
            Ok(Self(value.to_owned()))
        } else {
            Err(Invalid::new("invalid_format", "not a customer id"))
        }
    }
}

string_newtype!(CustomerId, CustomerId::parse);

/// An email address: trimmed, lowercased, ASCII, with a plausible local part and domain.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let value = raw.trim().to_ascii_lowercase();
        let bad = |why: &str| {
            Err(Invalid::new(
                "invalid_format",
                format!("not a valid email address: {why}"),
            ))
        };
        if value.len() > 254 {
            return bad("longer than 254 characters");
        }
        let Some((local, domain)) = value.split_once('@') else {
            return bad("missing @");
        };
        if local.is_empty() || local.len() > 64 {
            return bad("local part must be 1 to 64 characters");
        }
        const LOCAL_SPECIALS: &str = "!#$%&'*+/=?^_`{|}~.-";
        if !local
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || LOCAL_SPECIALS.contains(c))
            || local.starts_with('.')
            || local.ends_with('.')
            || local.contains("..")
        {
            return bad("local part has characters that are not allowed");
        }
        let labels: Vec<&str> = domain.split('.').collect();
        if labels.len() < 2 {
            return bad("domain needs a dot");
        }
        let label_ok = |l: &&str| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        };
        if !labels.iter().all(label_ok) {
            return bad("domain is not a valid host name");
        }
        let tld = labels[labels.len() - 1];
        if tld.len() < 2 || tld.chars().all(|c| c.is_ascii_digit()) {
            return bad("domain has no valid top-level domain");
        }
        Ok(Self(value))
    }
}

string_newtype!(Email, Email::parse);

/// The region used to read phone numbers written without a country code (ISO 3166 alpha-2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PhoneRegion(phonenumber::country::Id);

impl PhoneRegion {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        phonenumber::country::Id::from_str(&raw.trim().to_ascii_uppercase())
            .map(Self)
            .map_err(|_| Invalid::new("invalid_format", format!("{raw:?} is not an ISO 3166 region code")))
    }
}

/// An ISO 3166-1 alpha-2 region libphonenumber knows (`PE`, `MX`): where an SMS may go.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Country(String);

impl Country {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        PhoneRegion::parse(raw).map(|r| Self(r.0.as_ref().to_owned()))
    }
}

string_newtype!(Country, |v: &str| Country::parse(v));

/// What libphonenumber's metadata says about a number's line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineKind {
    /// A type that takes SMS at ordinary rates (mobile, fixed line, VoIP …).
    Ordinary,
    /// Possible for its country, but no type pattern knows it yet (a new mobile range).
    Untyped,
    /// A type never texted: premium rate, shared cost, UAN, voicemail, pager, and the
    /// emergency and short codes (its name, for the record).
    Never(&'static str),
}

/// A number's region and line type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneLine {
    pub region: Option<Country>,
    pub kind: LineKind,
}

/// How well a phone number checked out against libphonenumber's metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhoneCheck {
    /// Valid: its prefix and length match a number type of its country.
    Valid,
    /// Possible for its country (length and leading digits) but unknown to the metadata
    /// (a new mobile range, say): kept, with a warning.
    Unverified,
}

/// A phone number in E.164 (`+51999888777`), valid or at least possible for its country.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PhoneE164(String);

/// A region with no national prefix in the metadata: parsing an international number with
/// it keeps every digit (asserted by a test).
const NO_PREFIX_REGION: phonenumber::country::Id = phonenumber::country::Id::IT;

/// Whether a number's national part has a length some type of its country allows and
/// matches its country's general pattern: possible, even if no type pattern knows it.
fn is_possible(number: &phonenumber::PhoneNumber) -> bool {
    use phonenumber::metadata::DATABASE;
    let national = number.national().to_string();
    let len = national.len() as u16;
    DATABASE
        .by_code(&number.code().value())
        .unwrap_or_default()
        .into_iter()
        .any(|meta| {
            let d = meta.descriptors();
            // The crate leaves the general descriptor's lengths empty: take every type's.
            let lengths_ok = [
                d.fixed_line(),
                d.mobile(),
                d.toll_free(),
                d.premium_rate(),
                d.shared_cost(),
                d.personal_number(),
                d.voip(),
                d.pager(),
                d.uan(),
                d.voicemail(),
            ]
            .into_iter()
            .flatten()
            .any(|t| t.possible_length().contains(&len));
            lengths_ok && full_match(d.general().national_number().as_str(), &national)
        })
}

/// `pattern` matches all of `value` (libphonenumber's patterns are written for full matches).
fn full_match(pattern: &str, value: &str) -> bool {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static COMPILED: OnceLock<Mutex<HashMap<String, Option<regex::Regex>>>> = OnceLock::new();
    let mut compiled = COMPILED.get_or_init(Default::default).lock().expect("regex cache");
    compiled
        .entry(pattern.to_owned())
        .or_insert_with(|| {
            regex::RegexBuilder::new(&format!("^(?:{pattern})$"))
                .ignore_whitespace(true)
                .build()
                .ok()
        })
        .as_ref()
        .is_some_and(|re| re.is_match(value))
}

impl PhoneE164 {
    /// A valid or possible number (see `check`).
    pub fn parse(raw: &str, default_region: PhoneRegion) -> Result<Self, Invalid> {
        Self::check(raw, default_region).map(|(number, _)| number)
    }

    /// Loads the phone-number metadata (once per process: some 100 ms of CPU) by parsing a
    /// number. Functions that parse phones call it while they start, so no request pays it.
    pub fn warm_up() {
        let _ = Self::check("+14155550123", PhoneRegion(phonenumber::country::Id::US));
    }

    /// Parses `raw` (`default_region` for numbers written without a country code) and says
    /// how well it checked out; only impossible numbers are refused.
    pub fn check(raw: &str, default_region: PhoneRegion) -> Result<(Self, PhoneCheck), Invalid> {
        let trimmed = raw.trim();
        // "00" is the international prefix in most of the world; Zapier often keeps it.
        let normalized = match trimmed.strip_prefix("00") {
            Some(rest) if !trimmed.starts_with('+') => format!("+{rest}"),
            _ => trimmed.to_owned(),
        };
        let international = normalized.starts_with('+');
        // phonenumber 0.3.10 strips the *default* region's national prefix from a number
        // that names its own country (US "1": +55 11 96123-4567 became +55 96123-4567), so
        // the default region is only for numbers written without a country code.
        let region = (!international).then_some(default_region.0);
        let invalid_format = || Invalid::new("invalid_format", "not a phone number");
        let primary = phonenumber::parse(region, &normalized).map_err(|_| invalid_format())?;
        let primary_valid = phonenumber::is_valid(&primary);
        // It also strips a number's own trunk prefix (+7 800…, +375 801…): parsed as from
        // a region without one, every digit is kept. Only an international number that did
        // not validate is parsed that way too (each parse and validation costs).
        let verbatim = (international && !primary_valid)
            .then(|| phonenumber::parse(Some(NO_PREFIX_REGION), &normalized).ok())
            .flatten()
            .map(|v| (phonenumber::is_valid(&v), v));
        let (valid, number) = match verbatim {
            Some((valid, v)) if valid || (is_possible(&v) && !is_possible(&primary)) => (valid, v),
            _ => (primary_valid, primary),
        };
        let check = if valid {
            PhoneCheck::Valid
        } else if is_possible(&number) {
            PhoneCheck::Unverified
        } else {
            return Err(Invalid::new(
                "invalid_phone",
                "not a possible phone number for its country",
            ));
        };
        Ok((Self(number.format().mode(phonenumber::Mode::E164).to_string()), check))
    }
    /// The number's region and line type, from libphonenumber's metadata.
    pub fn line(&self) -> PhoneLine {
        use phonenumber::Type;
        use phonenumber::metadata::DATABASE;
        let Ok(number) = phonenumber::parse(Some(NO_PREFIX_REGION), &self.0) else {
            return PhoneLine {
                region: None,
                kind: LineKind::Untyped,
            };
        };
        let region = number.metadata(&DATABASE).and_then(|m| Country::parse(m.id()).ok());
        let kind = match number.number_type(&DATABASE) {
            Type::PremiumRate => LineKind::Never("premium_rate"),
            Type::SharedCost => LineKind::Never("shared_cost"),
            Type::Uan => LineKind::Never("uan"),
            Type::Voicemail => LineKind::Never("voicemail"),
            Type::Pager => LineKind::Never("pager"),
            Type::Emergency => LineKind::Never("emergency"),
            Type::ShortCode => LineKind::Never("short_code"),
            Type::Unknown => LineKind::Untyped,
            _ => LineKind::Ordinary,
        };
        PhoneLine { region, kind }
    }

    /// Reads back a number we stored ourselves.
    fn from_stored(raw: &str) -> Result<Self, Invalid> {
        let ok = raw.len() > 2 && raw.starts_with('+') && raw[1..].chars().all(|c| c.is_ascii_digit());
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(Invalid::new("invalid_format", "not an E.164 number"))
        }
    }
}

string_newtype!(PhoneE164, PhoneE164::from_stored);

/// A brand (operator) slug: lowercase ASCII letters, digits, `-` and `_`, up to 64 characters.
/// `RushBet` and `rushbet` are the same brand.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Brand(String);

impl Brand {
    /// Where touches without a brand go when no `DEFAULT_BRAND` is configured. Journeys under
    /// it are placeholders that a branded journey absorbs (see `journey::journeys`).
    pub const UNBRANDED: &'static str = "unbranded";

    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let value = raw.trim().to_ascii_lowercase();
        let ok = !value.is_empty()
            && value.len() <= 64
            && value.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if ok {
            Ok(Self(value))
        } else {
            Err(Invalid::new(
                "invalid_format",
                "brand must be 1-64 letters, digits, '-' or '_'",
            ))
        }
    }
    pub fn unbranded() -> Self {
        Self(Self::UNBRANDED.to_owned())
    }
    pub fn is_unbranded(&self) -> bool {
        self.0 == Self::UNBRANDED
    }
}

string_newtype!(Brand, Brand::parse);

/// Active ISO 4217 currency codes (plus the crypto tickers casino operators report in).
const CURRENCIES: &[&str] = &[
    "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT", "BGN", "BHD", "BIF",
    "BMD", "BND", "BOB", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD", "CAD", "CDF", "CHF", "CLP", "CNY", "COP", "CRC",
    "CUP", "CVE", "CZK", "DJF", "DKK", "DOP", "DZD", "EGP", "ERN", "ETB", "EUR", "FJD", "FKP", "GBP", "GEL", "GHS",
    "GIP", "GMD", "GNF", "GTQ", "GYD", "HKD", "HNL", "HTG", "HUF", "IDR", "ILS", "INR", "IQD", "IRR", "ISK", "JMD",
    "JOD", "JPY", "KES", "KGS", "KHR", "KMF", "KPW", "KRW", "KWD", "KYD", "KZT", "LAK", "LBP", "LKR", "LRD", "LSL",
    "LYD", "MAD", "MDL", "MGA", "MKD", "MMK", "MNT", "MOP", "MRU", "MUR", "MVR", "MWK", "MXN", "MYR", "MZN", "NAD",
    "NGN", "NIO", "NOK", "NPR", "NZD", "OMR", "PAB", "PEN", "PGK", "PHP", "PKR", "PLN", "PYG", "QAR", "RON", "RSD",
    "RUB", "RWF", "SAR", "SBD", "SCR", "SDG", "SEK", "SGD", "SHP", "SLE", "SOS", "SRD", "SSP", "STN", "SVC", "SYP",
    "SZL", "THB", "TJS", "TMT", "TND", "TOP", "TRY", "TTD", "TWD", "TZS", "UAH", "UGX", "USD", "UYU", "UZS", "VES",
    "VND", "VUV", "WST", "XAF", "XCD", "XOF", "XPF", "YER", "ZAR", "ZMW", "ZWG", "BTC", "ETH", "USDT", "USDC", "LTC",
];

/// An ISO 4217 currency code, uppercase, or one of the crypto tickers crypto casinos report
/// in (`BTC`, `ETH`, `USDT`, `USDC`, `LTC`): they are not ISO 4217 but are real revenue.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency(String);

impl Currency {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let value = raw.trim().to_ascii_uppercase();
        if CURRENCIES.contains(&value.as_str()) {
            Ok(Self(value))
        } else {
            Err(Invalid::new(
                "invalid_currency",
                format!(
                    "{:?} is not an ISO 4217 currency code (or BTC, ETH, USDT, USDC, LTC)",
                    raw.trim()
                ),
            ))
        }
    }
}

string_newtype!(Currency, Currency::parse);

/// A non-negative amount of money, exact (never a float), at most 8 decimal places.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct Money(#[serde(with = "rust_decimal::serde::str")] Decimal);

impl Money {
    pub const MAX_SCALE: u32 = 8;
    /// A cap far above any real deposit; it keeps sums inside DynamoDB's 38 digits.
    const MAX: Decimal = Decimal::from_parts(1_000_000_000, 0, 0, false, 0);

    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let text = raw.trim().replace(',', ".");
        let value = Decimal::from_str(&text)
            .or_else(|_| Decimal::from_scientific(&text))
            .map_err(|_| Invalid::new("invalid_amount", format!("{:?} is not a number", raw.trim())))?;
        if value.is_sign_negative() && !value.is_zero() {
            return Err(Invalid::new("invalid_amount", "amount must not be negative"));
        }
        if value > Self::MAX {
            return Err(Invalid::new("invalid_amount", "amount is implausibly large"));
        }
        if value.normalize().scale() > Self::MAX_SCALE {
            return Err(Invalid::new("invalid_amount", "amount has more than 8 decimal places"));
        }
        Ok(Self(value.normalize()))
    }
    pub fn from_decimal(value: Decimal) -> Self {
        Self(value.normalize())
    }
    pub fn is_zero(&self) -> bool {
        self.0.is_zero()
    }
    pub fn to_decimal(self) -> Decimal {
        self.0
    }
}

impl std::ops::Add for Money {
    type Output = Money;
    fn add(self, other: Money) -> Money {
        Money((self.0 + other.0).normalize())
    }
}

impl std::ops::AddAssign for Money {
    fn add_assign(&mut self, other: Money) {
        *self = *self + other;
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Timestamps are UTC with fixed millisecond width, so their strings sort chronologically
/// (they are used inside sort keys).
pub fn format_ts(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

pub fn parse_ts(raw: &str) -> Result<OffsetDateTime, Invalid> {
    OffsetDateTime::parse(raw, &time::format_description::well_known::Rfc3339)
        .map_err(|_| Invalid::new("invalid_format", "not an RFC 3339 timestamp"))
}

/// Serde for timestamps in stored items and API answers: always `format_ts`'s fixed width;
/// any RFC 3339 form is read.
pub mod ts {
    use serde::{Deserialize, Deserializer, Serializer};
    use time::OffsetDateTime;

    pub fn serialize<S: Serializer>(t: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format_ts(*t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<OffsetDateTime, D::Error> {
        let raw = String::deserialize(d)?;
        super::parse_ts(&raw).map_err(serde::de::Error::custom)
    }

    /// The same for optional timestamps.
    pub mod option {
        use serde::{Deserialize, Deserializer, Serializer};
        use time::OffsetDateTime;

        pub fn serialize<S: Serializer>(t: &Option<OffsetDateTime>, s: S) -> Result<S::Ok, S::Error> {
            match t {
                Some(t) => s.serialize_some(&super::super::format_ts(*t)),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<OffsetDateTime>, D::Error> {
            Option::<String>::deserialize(d)?
                .map(|raw| super::super::parse_ts(&raw).map_err(serde::de::Error::custom))
                .transpose()
        }
    }
}

/// Free text as we keep it: control characters (CR, LF, NUL, BEL …) and bidirectional
/// overrides and isolates are removed, since the text ends up in email headers, SMS and
/// admin screens. Tabs and line breaks become spaces. Emoji (with their joiners) and
/// right-to-left scripts are kept as sent.
pub fn clean_text(raw: &str) -> String {
    let bidi_control = |c: char| matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}');
    let cleaned: String = raw
        .chars()
        .filter_map(|c| match c {
            '\t' | '\n' | '\r' => Some(' '),
            c if c.is_control() || bidi_control(c) => None,
            c => Some(c),
        })
        .collect();
    cleaned.trim().to_owned()
}

/// Replaces what looks like an email address or a phone number with `<redacted>`, for text
/// that may reach a log line (error messages from dependencies, request paths).
pub fn redact_personal(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut token = String::new();
    let flush = |token: &mut String, out: &mut String| {
        // A `+` may arrive percent-encoded in a path: `%2B51987654321`.
        let plain = token.replace("%2B", "+").replace("%2b", "+");
        let digits = plain.chars().filter(char::is_ascii_digit).count();
        let phone_chars = plain.chars().all(|c| c.is_ascii_digit() || "+-().".contains(c));
        let phone_like = phone_chars && (digits >= 9 || (plain.starts_with('+') && digits >= 7));
        let email_like = token.contains('@') || token.to_ascii_lowercase().contains("%40");
        if email_like || phone_like {
            out.push_str("<redacted>");
        } else {
            out.push_str(token);
        }
        token.clear();
    };
    for c in text.chars() {
        // Separators that end a token: whitespace, quotes, key and path delimiters.
        if c.is_whitespace() || "\"'#/,;:=&?<>[]{}|".contains(c) {
            flush(&mut token, &mut out);
            out.push(c);
        } else {
            token.push(c);
        }
    }
    flush(&mut token, &mut out);
    out
}

/// An email, phone number or other personal value as exports show it without `includePii`:
/// enough to tell rows apart, not enough to contact anyone. `ana@example.com` →
/// `a***@example.com`, `+51987654321` → `+51*******21`, `Ana` → `A***`.
pub fn mask(value: &str) -> String {
    if let Some((local, domain)) = value.split_once('@') {
        let first: String = local.chars().take(1).collect();
        return format!("{first}***@{domain}");
    }
    let chars: Vec<char> = value.chars().collect();
    if value.starts_with('+') && chars.len() > 6 {
        let hidden = chars.len() - 5;
        return format!(
            "{}{}{}",
            chars[..3].iter().collect::<String>(),
            "*".repeat(hidden),
            chars[chars.len() - 2..].iter().collect::<String>()
        );
    }
    let first: String = chars.iter().take(1).collect();
    format!("{first}***")
}

/// `YYYY-MM-DD` of a timestamp, UTC.
pub fn day_of(t: OffsetDateTime) -> String {
    format_ts(t)[..10].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us() -> PhoneRegion {
        PhoneRegion::parse("US").unwrap()
    }

    #[test]
    fn masked_values_keep_a_hint_and_hide_the_rest() {
        assert_eq!(mask("ana@example.com"), "a***@example.com");
        assert_eq!(mask("+51987654321"), "+51*******21");
        assert_eq!(mask("Ana"), "A***");
        assert_eq!(mask("203.0.113.9"), "2***");
        assert!(!mask("+51987654321").contains("987654"));
    }

    #[test]
    fn email_is_trimmed_and_lowercased() {
        assert_eq!(
            Email::parse("  TestUser@Example.COM ").unwrap().as_str(),
            "testuser@example.com"
        );
    }

    #[test]
    fn malformed_emails_are_rejected() {
        for bad in [
            "",
            "plain",
            "a@b",
            "a@@b.com",
            "a b@c.com",
            ".a@b.com",
            "a..b@c.com",
            "a@-b.com",
            "a@b.1",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn phone_is_normalised_to_e164() {
        assert_eq!(
            PhoneE164::parse("+51 999 888 777", us()).unwrap().as_str(),
            "+51999888777"
        );
        assert_eq!(
            PhoneE164::parse("0051999888777", us()).unwrap().as_str(),
            "+51999888777"
        );
        assert_eq!(
            PhoneE164::parse("(201) 555-0123", us()).unwrap().as_str(),
            "+12015550123"
        );
        let peru = PhoneRegion::parse("pe").unwrap();
        assert_eq!(PhoneE164::parse("999888777", peru).unwrap().as_str(), "+51999888777");
    }

    /// libphonenumber's own example numbers, mobile and fixed line, of every market the
    /// product serves: international from anywhere, national from their own region.
    #[test]
    fn every_markets_example_numbers_are_valid_whatever_the_default_region() {
        use phonenumber::metadata::DATABASE;
        let markets = [
            "BR", "MX", "AR", "CO", "CL", "PE", "EC", "UY", "US", "CA", "ES", "PT", "GB", "IN",
        ];
        let defaults = ["US", "CA", "BR", "MX", "PE", "GB", "ES"].map(|r| PhoneRegion::parse(r).unwrap());
        for market in markets {
            let meta = DATABASE.by_id(market).unwrap();
            let d = meta.descriptors();
            for desc in [d.mobile(), d.fixed_line()] {
                let example = desc.and_then(|x| x.example()).unwrap();
                let international = format!("+{}{example}", meta.country_code());
                for region in defaults {
                    let (number, check) = PhoneE164::check(&international, region)
                        .unwrap_or_else(|e| panic!("{market} {international} from {region:?}: {e}"));
                    assert_eq!(
                        (number.as_str(), check),
                        (international.as_str(), PhoneCheck::Valid),
                        "{market}"
                    );
                }
                let home = PhoneRegion::parse(market).unwrap();
                let (number, _) = PhoneE164::check(example, home).unwrap();
                assert_eq!(number.as_str(), international, "{market} written nationally");
            }
        }
        // The numbers: São Paulo mobile (area 11) as Rio's always was.
        for raw in ["+55 11 96123-4567", "+55 21 96123-4567", "0055 11 96123 4567"] {
            assert!(PhoneE164::check(raw, us()).is_ok(), "{raw}");
        }
        assert_eq!(
            PhoneE164::parse("+55 11 96123-4567", us()).unwrap().as_str(),
            "+5511961234567"
        );
        // Numbers whose own trunk prefix 0.3.10 used to strip keep every digit.
        assert_eq!(
            PhoneE164::parse("+7 800 123-45-67", us()).unwrap().as_str(),
            "+78001234567"
        );
        assert_eq!(
            PhoneE164::parse("+49 151 23456789", us()).unwrap().as_str(),
            "+4915123456789"
        );
    }

    #[test]
    fn the_no_prefix_region_has_no_national_prefix() {
        let meta = phonenumber::metadata::DATABASE
            .by_id(NO_PREFIX_REGION.as_ref())
            .unwrap();
        assert!(meta.national_prefix().is_none() && meta.national_prefix_for_parsing().is_none());
    }

    #[test]
    fn possible_numbers_unknown_to_the_metadata_are_kept_unverified() {
        // A São Paulo number in a range no type pattern covers (yet): right length and prefix.
        let (number, check) = PhoneE164::check("+55 11 56123-4567", us()).unwrap();
        assert_eq!((number.as_str(), check), ("+5511561234567", PhoneCheck::Unverified));
        // Too long for its country: impossible.
        assert_eq!(
            PhoneE164::check("+1 201 555 01234", us()).unwrap_err().code,
            "invalid_phone"
        );
        assert_eq!(
            PhoneE164::check("+51 9123 4567", us()).unwrap_err().code,
            "invalid_phone"
        );
    }

    #[test]
    fn invalid_phones_are_rejected() {
        for bad in ["12", "not a phone", "+1 555", "+999 123456"] {
            assert!(PhoneE164::parse(bad, us()).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn money_is_exact_and_non_negative() {
        assert_eq!(Money::parse("100").unwrap().to_string(), "100");
        let sum = Money::parse("0.1").unwrap() + Money::parse("0.2").unwrap();
        assert_eq!(sum.to_string(), "0.3");
        assert_eq!(Money::parse("49,90").unwrap().to_string(), "49.9");
        assert_eq!(Money::parse("1e2").unwrap().to_string(), "100");
        assert!(Money::parse("-5").is_err());
        assert!(Money::parse("abc").is_err());
        assert!(Money::parse("0.000000001").is_err());
        assert!(Money::parse("100000000000").is_err());
    }

    #[test]
    fn currency_must_be_iso_4217() {
        assert_eq!(Currency::parse("usd").unwrap().as_str(), "USD");
        assert!(Currency::parse("DOLLARS").is_err());
        assert!(Currency::parse("XXY").is_err());
        assert_eq!(
            Currency::parse("btc").unwrap().as_str(),
            "BTC",
            "crypto tickers are accepted"
        );
    }

    #[test]
    fn brand_is_a_lowercase_slug() {
        assert_eq!(Brand::parse("RushBet").unwrap().as_str(), "rushbet");
        assert!(Brand::parse("rush bet").is_err());
        assert!(Brand::parse("").is_err());
    }

    #[test]
    fn a_numbers_line_names_its_region_and_the_types_never_texted() {
        let line = |raw: &str| PhoneE164::parse(raw, PhoneRegion::parse("PE").unwrap()).unwrap().line();
        let pe = line("+51912345678");
        assert_eq!(
            (pe.region.as_ref().map(Country::as_str), pe.kind),
            (Some("PE"), LineKind::Ordinary)
        );
        assert_eq!(line("+12015550123").region.unwrap().as_str(), "US");
        assert_eq!(line("+16135550123").region.unwrap().as_str(), "CA");
        assert_eq!(line("+447400123456").kind, LineKind::Ordinary);
        assert_eq!(line("+449012345678").kind, LineKind::Never("premium_rate"));
        assert_eq!(line("+33884012345").kind, LineKind::Never("shared_cost"));
        assert_eq!(line("+49177991234567").kind, LineKind::Never("voicemail"));
        assert_eq!(line("+445512345678").kind, LineKind::Never("uan"));
        assert_eq!(line("+447640123456").kind, LineKind::Never("pager"));
        // Possible for Brazil, unknown to the metadata (see the parse tests).
        assert_eq!(line("+5511561234567").kind, LineKind::Untyped);
        assert!(Country::parse("pe").is_ok_and(|c| c.as_str() == "PE"));
        assert!(Country::parse("XX").is_err() && Country::parse("PER").is_err());
    }

    #[test]
    fn opaque_ids_reject_whitespace_and_overlong_values() {
        assert!(ClickId::parse("TEST_CLICK_001").is_ok());
        assert!(ClickId::parse("a b").is_err());
        assert!(ClickId::parse(&"x".repeat(MAX_ID_LEN + 1)).is_err());
    }

    #[test]
    fn customer_ids_are_lowercase_uuids() {
        assert!(CustomerId::parse("0192f0c1-7b7e-7cc0-9b1a-3c3f2d6e8a10").is_ok());
        assert!(CustomerId::parse("0192F0C1-7B7E-7CC0-9B1A-3C3F2D6E8A10").is_err());
        assert!(CustomerId::parse("CUSTOMER#x").is_err());
    }

    #[test]
    fn clean_text_strips_controls_and_bidi_overrides_but_keeps_emoji_and_rtl() {
        assert_eq!(clean_text("Juan\r\nBcc: x@y.z\u{0}\u{7}"), "Juan  Bcc: x@y.z");
        assert_eq!(clean_text("abc\u{202E}fed\u{2066}"), "abcfed");
        assert_eq!(clean_text(" 👩‍👩‍👧 مرحبا שלום "), "👩‍👩‍👧 مرحبا שלום");
    }

    #[test]
    fn personal_data_is_redacted_from_free_text() {
        assert_eq!(
            redact_personal("malformed item IDENT#EMAIL#ana@example.com: bad"),
            "malformed item IDENT#EMAIL#<redacted>: bad"
        );
        assert_eq!(
            redact_personal("/api/customers/ana%40example.com"),
            "/api/customers/<redacted>"
        );
        assert_eq!(redact_personal("IDENT#PHONE#+51999888777"), "IDENT#PHONE#<redacted>");
        assert_eq!(
            redact_personal("/api/suppressions/sms/%2B51999888777"),
            "/api/suppressions/sms/<redacted>"
        );
        assert_eq!(
            redact_personal("CUSTOMER#0192f0c1-7b7e-7cc0-9b1a-3c3f2d6e8a10 at 2026-11-22"),
            "CUSTOMER#0192f0c1-7b7e-7cc0-9b1a-3c3f2d6e8a10 at 2026-11-22"
        );
    }

    #[test]
    fn timestamps_sort_as_strings() {
        let a = parse_ts("2026-11-22T02:25:01.5Z").unwrap();
        let b = parse_ts("2026-11-22T10:00:00Z").unwrap();
        assert_eq!(format_ts(a), "2026-11-22T02:25:01.500Z");
        assert!(format_ts(a) < format_ts(b));
        assert_eq!(day_of(b), "2026-11-22");
    }
}
