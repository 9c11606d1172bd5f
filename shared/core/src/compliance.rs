//! What the law and mailbox providers require of every marketing message, as data: the
//! suppression list, recorded consent, responsible-gambling exclusions. The send decision
//! (`send::decide`) reads them; frequency caps and quiet hours have their own modules.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::definition::Channel;
use crate::values::{Brand, Invalid};

/// Which brands a suppression or an exclusion covers.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    Brand(Brand),
    All,
}

impl Scope {
    /// `*` for every brand, else the brand's name (the form in keys and in the API).
    pub fn as_str(&self) -> &str {
        match self {
            Self::Brand(b) => b.as_str(),
            Self::All => "*",
        }
    }
    /// `all` or `*` for every brand; otherwise a brand name.
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        match raw.trim() {
            "*" => Ok(Self::All),
            s if s.eq_ignore_ascii_case("all") => Ok(Self::All),
            s => Brand::parse(s).map(Self::Brand),
        }
    }
    pub fn covers(&self, brand: &Brand) -> bool {
        match self {
            Self::All => true,
            Self::Brand(b) => b == brand,
        }
    }
}

impl Serialize for Scope {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(match self {
            Self::All => "all",
            Self::Brand(b) => b.as_str(),
        })
    }
}

impl<'de> Deserialize<'de> for Scope {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::parse(&raw).map_err(|e| serde::de::Error::custom(e.message))
    }
}

/// Why an address is suppressed; stable strings for the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SuppressionReason {
    /// The recipient unsubscribed (link, one-click header, STOP by SMS, SNS's opt-out list).
    Unsubscribed,
    /// A permanent bounce, or three transient ones within a week.
    Bounced,
    /// The recipient marked a message as spam.
    Complained,
    /// Added by an operator.
    Manual,
    /// The customer excluded themselves from gambling (responsible gambling).
    SelfExcluded,
    /// The person's data was erased; kept (as a keyed hash) so they are never marketed to again.
    Erased,
}

impl SuppressionReason {
    pub const ALL: [Self; 6] = [
        Self::Unsubscribed,
        Self::Bounced,
        Self::Complained,
        Self::Manual,
        Self::SelfExcluded,
        Self::Erased,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unsubscribed => "unsubscribed",
            Self::Bounced => "bounced",
            Self::Complained => "complained",
            Self::Manual => "manual",
            Self::SelfExcluded => "self_excluded",
            Self::Erased => "erased",
        }
    }
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str().eq_ignore_ascii_case(raw.trim()))
            .ok_or_else(|| {
                Invalid::new(
                    "invalid_value",
                    "reason must be unsubscribed, bounced, complained, manual, self_excluded or erased",
                )
            })
    }
    /// Whether the recipient may lift it themselves (START by SMS, resubscribe on the page).
    pub fn lifted_by_recipient(self) -> bool {
        matches!(self, Self::Unsubscribed)
    }
}

/// One entry of the suppression list: this address gets no marketing on this channel from
/// the brands `scope` covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Suppression {
    pub channel: Channel,
    /// The normalised address; absent when only its keyed hash is kept (unsubscribe links
    /// carry only the hash; erasure drops the address).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// The address's keyed hash (`unsubscribe::AddressHasher`): what entries are found by.
    pub address_hash: String,
    pub scope: Scope,
    pub reason: SuppressionReason,
    #[serde(with = "crate::values::ts")]
    pub at: OffsetDateTime,
    /// What added it: `unsubscribe_link`, `one_click`, `sms_inbound`, `ses_bounce`, `admin`, …
    pub source: String,
}

/// Whether any of `entries` (those of the recipient's address) stops a message of `brand`
/// on `channel`.
pub fn suppressed(entries: &[Suppression], channel: Channel, brand: &Brand) -> bool {
    entries.iter().any(|e| e.channel == channel && e.scope.covers(brand))
}

/// A customer's consent to marketing from one brand on one channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Consent {
    pub granted: bool,
    #[serde(with = "crate::values::ts")]
    pub at: OffsetDateTime,
    /// `lead`, `postback`, `sms_inbound`, …
    pub source: String,
}

/// Consent per brand and channel; the latest statement wins.
pub type Consents = BTreeMap<(Brand, Channel), Consent>;

/// Records `consent` unless a later statement is already recorded.
pub fn record_consent(consents: &mut Consents, brand: &Brand, channel: Channel, consent: Consent) {
    let key = (brand.clone(), channel);
    match consents.get(&key) {
        Some(existing) if existing.at > consent.at => {}
        _ => {
            consents.insert(key, consent);
        }
    }
}

/// Parses a form's consent checkbox: `true`, `yes`, `on`, `1` (and `y`, `checked`, `opt-in`)
/// grant; `false`, `no`, `off`, `0` refuse.
pub fn parse_consent(raw: &str) -> Result<bool, Invalid> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "y" | "on" | "1" | "checked" | "opt-in" | "optin" | "si" | "sí" => Ok(true),
        "false" | "no" | "n" | "off" | "0" | "opt-out" | "optout" => Ok(false),
        _ => Err(Invalid::new(
            "invalid_value",
            "must be true/false, yes/no, on/off or 1/0",
        )),
    }
}

/// Responsible-gambling events an operator can send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExclusionKind {
    SelfExclusion,
    CoolingOff,
    AccountClosed,
}

impl ExclusionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SelfExclusion => "self_exclusion",
            Self::CoolingOff => "cooling_off",
            Self::AccountClosed => "account_closed",
        }
    }
    pub fn parse(raw: &str) -> Option<Self> {
        [Self::SelfExclusion, Self::CoolingOff, Self::AccountClosed]
            .into_iter()
            .find(|k| k.as_str() == raw)
    }
}

/// A customer's exclusion by one brand, and whether the operator later reported the account
/// reactivated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Exclusion {
    pub kind: ExclusionKind,
    #[serde(with = "crate::values::ts")]
    pub at: OffsetDateTime,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::values::ts::option")]
    pub reactivated_at: Option<OffsetDateTime>,
}

/// How a brand treats its own customers' exclusions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExclusionPolicy {
    /// An exclusion reported by this brand stops marketing from every brand.
    pub all_brands: bool,
    /// A later `reactivated` event lifts the exclusion.
    pub allow_reactivation: bool,
}

impl Exclusion {
    /// Whether it still holds under its brand's `policy`.
    pub fn holds(&self, policy: ExclusionPolicy) -> bool {
        match self.reactivated_at {
            Some(r) if policy.allow_reactivation => r < self.at,
            _ => true,
        }
    }
}

/// Whether a message of `brand` is stopped by any of `exclusions` (by brand); `policy` gives
/// each excluding brand's policy.
pub fn excluded(
    exclusions: &BTreeMap<Brand, Exclusion>,
    brand: &Brand,
    policy: impl Fn(&Brand) -> ExclusionPolicy,
) -> bool {
    exclusions.iter().any(|(by, e)| {
        let p = policy(by);
        e.holds(p) && (by == brand || p.all_brands)
    })
}

/// What an inbound SMS asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keyword {
    OptOut,
    OptIn,
}

impl Keyword {
    /// Opt-out words (CTIA's and their Spanish equivalents).
    pub const OPT_OUT: [&'static str; 10] = [
        "STOP",
        "STOPALL",
        "UNSUBSCRIBE",
        "CANCEL",
        "END",
        "QUIT",
        "BAJA",
        "ALTO",
        "PARAR",
        "CANCELAR",
    ];
    pub const OPT_IN: [&'static str; 3] = ["START", "UNSTOP", "ALTA"];
}

/// The keyword an inbound SMS starts with, case- and accent-insensitively ("Baja", "¡ALTO!",
/// "stop please"); `None` for any other text.
pub fn sms_keyword(text: &str) -> Option<Keyword> {
    let word: String = text
        .split_whitespace()
        .next()?
        .chars()
        .map(fold_accent)
        .filter(char::is_ascii_alphabetic)
        .map(|c| c.to_ascii_uppercase())
        .collect();
    if Keyword::OPT_OUT.contains(&word.as_str()) {
        Some(Keyword::OptOut)
    } else if Keyword::OPT_IN.contains(&word.as_str()) {
        Some(Keyword::OptIn)
    } else {
        None
    }
}

fn fold_accent(c: char) -> char {
    match c {
        'á' | 'à' | 'â' | 'ä' | 'ã' | 'Á' | 'À' | 'Â' | 'Ä' | 'Ã' => 'a',
        'é' | 'è' | 'ê' | 'ë' | 'É' | 'È' | 'Ê' | 'Ë' => 'e',
        'í' | 'ì' | 'î' | 'ï' | 'Í' | 'Ì' | 'Î' | 'Ï' => 'i',
        'ó' | 'ò' | 'ô' | 'ö' | 'õ' | 'Ó' | 'Ò' | 'Ô' | 'Ö' | 'Õ' => 'o',
        'ú' | 'ù' | 'û' | 'ü' | 'Ú' | 'Ù' | 'Û' | 'Ü' => 'u',
        'ñ' | 'Ñ' => 'n',
        'ç' | 'Ç' => 'c',
        c => c,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const T0: OffsetDateTime = datetime!(2026-11-22 10:00 UTC);

    fn brand(b: &str) -> Brand {
        Brand::parse(b).unwrap()
    }

    #[test]
    fn scopes_parse_and_cover() {
        assert_eq!(Scope::parse("all").unwrap(), Scope::All);
        assert_eq!(Scope::parse("*").unwrap(), Scope::All);
        let rushbet = Scope::parse("RushBet").unwrap();
        assert!(rushbet.covers(&brand("rushbet")));
        assert!(!rushbet.covers(&brand("betano")));
        assert!(Scope::All.covers(&brand("betano")));
    }

    #[test]
    fn sms_keywords_ignore_case_accents_and_trailing_words() {
        for t in [
            "STOP",
            "stop",
            " Stop please",
            "BAJA",
            "bája",
            "¡ALTO!",
            "Parar",
            "CANCELAR",
            "unsubscribe",
        ] {
            assert_eq!(sms_keyword(t), Some(Keyword::OptOut), "{t}");
        }
        for t in ["START", "start", "Alta", "ALTA."] {
            assert_eq!(sms_keyword(t), Some(Keyword::OptIn), "{t}");
        }
        for t in ["", "hola", "I want to stop", "stopping"] {
            assert_eq!(sms_keyword(t), None, "{t}");
        }
    }

    #[test]
    fn checkbox_values_parse() {
        for v in ["true", "yes", "on", "1", "YES", " On "] {
            assert_eq!(parse_consent(v), Ok(true), "{v}");
        }
        for v in ["false", "no", "off", "0"] {
            assert_eq!(parse_consent(v), Ok(false), "{v}");
        }
        assert!(parse_consent("maybe").is_err());
    }

    #[test]
    fn the_latest_consent_statement_wins() {
        let mut c = Consents::new();
        let at = |h| T0 + time::Duration::hours(h);
        let stmt = |granted, h| Consent {
            granted,
            at: at(h),
            source: "lead".into(),
        };
        record_consent(&mut c, &brand("rushbet"), Channel::Email, stmt(true, 2));
        record_consent(&mut c, &brand("rushbet"), Channel::Email, stmt(false, 1));
        assert!(c[&(brand("rushbet"), Channel::Email)].granted);
        record_consent(&mut c, &brand("rushbet"), Channel::Email, stmt(false, 3));
        assert!(!c[&(brand("rushbet"), Channel::Email)].granted);
    }

    #[test]
    fn exclusions_hold_per_brand_policy() {
        let mut ex = BTreeMap::new();
        ex.insert(
            brand("rushbet"),
            Exclusion {
                kind: ExclusionKind::SelfExclusion,
                at: T0,
                reactivated_at: None,
            },
        );
        let own = |_: &Brand| ExclusionPolicy::default();
        assert!(excluded(&ex, &brand("rushbet"), own));
        assert!(!excluded(&ex, &brand("betano"), own));
        let everywhere = |_: &Brand| ExclusionPolicy {
            all_brands: true,
            allow_reactivation: false,
        };
        assert!(excluded(&ex, &brand("betano"), everywhere));

        ex.get_mut(&brand("rushbet")).unwrap().reactivated_at = Some(T0 + time::Duration::days(1));
        assert!(excluded(&ex, &brand("rushbet"), own), "reactivation not allowed");
        let lenient = |_: &Brand| ExclusionPolicy {
            all_brands: false,
            allow_reactivation: true,
        };
        assert!(!excluded(&ex, &brand("rushbet"), lenient));
    }
}
