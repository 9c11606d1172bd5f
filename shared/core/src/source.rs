//! Who is talking to the ingest endpoints. A **source** is one sender (a tracker, a landing
//! page, an operator, a Zapier zap, an SMS provider) with its own keys and rules: which
//! routes it may call, for which brand, from which networks and browser origins, and
//! whether it must sign its requests. Everything here is pure: the shell looks the key up,
//! reads the clock and the client address, and asks `admit`, `brand_for` and `verify`.

use std::collections::BTreeSet;
use std::fmt;
use std::net::IpAddr;

use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::values::{Brand, Invalid};

/// What kind of sender a source is; it sets the routes a key may use by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// A click tracker (Redtrack) sending clicks.
    Tracker,
    /// A landing page: its key is public (it sits in the page), so it is bound to a brand
    /// and to browser origins, and its answers reveal nothing.
    Landing,
    /// An operator sending conversions for its own brand.
    Operator,
    /// Zapier (or another automation tool) relaying conversions and leads.
    Zapier,
    /// The SMS provider forwarding replies (STOP, START): the only kind that changes an
    /// SMS opt-out.
    Sms,
}

impl SourceKind {
    pub const ALL: [Self; 5] = [Self::Tracker, Self::Landing, Self::Operator, Self::Zapier, Self::Sms];

    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == raw.trim().to_ascii_lowercase())
            .ok_or_else(|| {
                Invalid::new(
                    "invalid_value",
                    "kind must be tracker, landing, operator, zapier or sms",
                )
            })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tracker => "tracker",
            Self::Landing => "landing",
            Self::Operator => "operator",
            Self::Zapier => "zapier",
            Self::Sms => "sms",
        }
    }

    /// The routes a key of this kind may use unless the source narrows them; a tracker
    /// that sends its conversion postbacks too (`conversions`) may also post them.
    pub fn default_routes(self, conversions: bool) -> &'static [Route] {
        match self {
            Self::Tracker if conversions => &[Route::Click, Route::Postback],
            Self::Tracker => &[Route::Click],
            Self::Landing => &[Route::Lead, Route::Click],
            Self::Operator => &[Route::Postback],
            Self::Zapier => &[Route::Postback, Route::Lead],
            Self::Sms => &[Route::SmsInbound],
        }
    }

    /// Whether a source of this kind must be bound to one brand.
    pub fn needs_brand(self) -> bool {
        matches!(self, Self::Landing | Self::Operator)
    }
}

/// An ingest endpoint a key may be allowed to call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Route {
    #[serde(rename = "click")]
    Click,
    #[serde(rename = "lead")]
    Lead,
    #[serde(rename = "postback")]
    Postback,
    #[serde(rename = "sms-inbound")]
    SmsInbound,
}

impl Route {
    pub const ALL: [Self; 4] = [Self::Click, Self::Lead, Self::Postback, Self::SmsInbound];

    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == raw.trim())
            .ok_or_else(|| Invalid::new("invalid_value", "routes may hold click, lead, postback and sms-inbound"))
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Click => "click",
            Self::Lead => "lead",
            Self::Postback => "postback",
            Self::SmsInbound => "sms-inbound",
        }
    }
}

/// An IPv4 or IPv6 network (`203.0.113.0/24`, `2001:db8::/32`); a bare address is a
/// network of one. Host bits are cleared, so `10.1.2.3/8` is `10.0.0.0/8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

fn to_bits(ip: IpAddr) -> (u128, u8) {
    match ip {
        IpAddr::V4(v4) => (u128::from(u32::from(v4)), 32),
        IpAddr::V6(v6) => (u128::from(v6), 128),
    }
}

fn mask(width: u8, prefix: u8) -> u128 {
    if prefix == 0 {
        0
    } else {
        let ones = (!0u128) << (128 - u32::from(prefix));
        ones >> (128 - u32::from(width))
    }
}

impl Cidr {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let bad = || {
            Invalid::new(
                "invalid_format",
                format!("{raw:?} is not an IP address or CIDR network"),
            )
        };
        let (addr, prefix) = match raw.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (raw.trim(), None),
        };
        let ip: IpAddr = addr.parse().map_err(|_| bad())?;
        // An IPv4-mapped IPv6 address is its IPv4 address (dual-stack sockets report them).
        let ip = canonical(ip);
        let width = to_bits(ip).1;
        let prefix = match prefix {
            None => width,
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= width).ok_or_else(bad)?,
        };
        let (bits, _) = to_bits(ip);
        let network_bits = bits & mask(width, prefix);
        let network = match ip {
            IpAddr::V4(_) => IpAddr::V4(std::net::Ipv4Addr::from(network_bits as u32)),
            IpAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::from(network_bits)),
        };
        Ok(Self { network, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        let ((net, width), (bits, ip_width)) = (to_bits(self.network), to_bits(ip));
        width == ip_width && bits & mask(width, self.prefix) == net
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

impl TryFrom<String> for Cidr {
    type Error = Invalid;
    fn try_from(value: String) -> Result<Self, Invalid> {
        Self::parse(&value)
    }
}

impl From<Cidr> for String {
    fn from(value: Cidr) -> String {
        value.to_string()
    }
}

/// A browser origin exactly as browsers send it in `Origin`: `https://host` or
/// `http://host:port`, lowercase, no path. Anything else would silently never match.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Origin(String);

impl Origin {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let bad = |why: &str| {
            Err(Invalid::new(
                "invalid_format",
                format!("{raw:?} is not an origin like https://lp.example.com ({why})"),
            ))
        };
        let Some((scheme, rest)) = raw.split_once("://") else {
            return bad("no scheme");
        };
        if scheme != "https" && scheme != "http" {
            return bad("scheme must be http or https");
        }
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (rest, None),
        };
        let host_ok = !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-');
        if !host_ok {
            return bad("host must be lowercase letters, digits, dots and dashes, with no path");
        }
        if port.is_some_and(|p| p.parse::<u16>().is_err()) {
            return bad("port must be a number");
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Origin {
    type Error = Invalid;
    fn try_from(value: String) -> Result<Self, Invalid> {
        Self::parse(&value)
    }
}

impl From<Origin> for String {
    fn from(value: Origin) -> String {
        value.0
    }
}

/// What a source may do. Parsed once (admin API), checked on every request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rules {
    pub kind: SourceKind,
    /// `Some`: the source writes for this brand only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brand: Option<Brand>,
    /// The routes allowed: the kind's defaults, or a subset of them.
    pub routes: BTreeSet<Route>,
    /// Empty: any address.
    #[serde(default)]
    pub allowed_ips: Vec<Cidr>,
    /// Browser origins allowed (required for `landing` sources).
    #[serde(default)]
    pub allowed_origins: Vec<Origin>,
    #[serde(default)]
    pub require_signature: bool,
    /// Everything this source sends is test traffic.
    #[serde(default)]
    pub test: bool,
    /// A tracker that also sends its conversion postbacks (Redtrack's campaign S2S
    /// postback); a tracker's default is clicks only.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub conversions: bool,
    /// What a landing page's tag (`/c.js`) does beyond reporting the visit.
    #[serde(flatten)]
    pub tag: TagSettings,
}

/// A landing source's settings for its pages' tag: which links it hands the click id to,
/// under which parameter, and whether it waits for the visitor's consent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TagSettings {
    /// Links to these hosts (and their subdomains) carry the click id: the brand's operator
    /// domains. Never a tracker's own `/click` or `/preclick` links.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub decorate_domains: Vec<Domain>,
    /// The parameter they carry it in: the one the operator's affiliate platform reads
    /// (`btag`, `clickid`, `subid` …). Default `clickid`.
    #[serde(default)]
    pub decorate_param: ParamName,
    /// The tag stores and sends nothing until the page says the visitor consented
    /// (`window.crmConsent = true`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub wait_for_consent: bool,
}

impl Default for ParamName {
    fn default() -> Self {
        Self("clickid".into())
    }
}

/// A host name as links carry it: lowercase letters, digits, dashes, at least one dot.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Domain(String);

impl Domain {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let host = raw.trim().trim_end_matches('.').to_ascii_lowercase();
        let label_ok = |l: &str| {
            (1..=63).contains(&l.len())
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if host.len() > 253 || !host.contains('.') || !host.split('.').all(label_ok) {
            let message = format!("{raw:?} is not a domain like rushbet.com (no scheme, no path)");
            return Err(Invalid::new("invalid_format", message));
        }
        Ok(Self(host))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Domain {
    type Error = Invalid;
    fn try_from(value: String) -> Result<Self, Invalid> {
        Self::parse(&value)
    }
}

impl From<Domain> for String {
    fn from(value: Domain) -> String {
        value.0
    }
}

/// A URL query parameter's name: letters, digits, `_`, `-`, `.`; at most 64.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ParamName(String);

impl ParamName {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let ok = (1..=64).contains(&raw.len()) && raw.chars().all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c));
        if !ok {
            let message = "a parameter name: up to 64 letters, digits, _, - or .";
            return Err(Invalid::new("invalid_format", message));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ParamName {
    type Error = Invalid;
    fn try_from(value: String) -> Result<Self, Invalid> {
        Self::parse(&value)
    }
}

impl From<ParamName> for String {
    fn from(value: ParamName) -> String {
        value.0
    }
}

/// Why a rule refused a request (403), and the field to name when it is the request's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("this key may not call the {0} endpoint")]
    Route(&'static str),
    #[error("this key may not be used from this network")]
    Network,
    #[error("this key may not be used from this origin")]
    Origin,
    #[error("this source signs its requests: send them as POST with X-Signature")]
    Unsigned,
    #[error("this key writes for brand {0} only")]
    Brand(Brand),
}

/// What the shell knows of a request before reading its body.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    pub route: Route,
    /// `GET`: the whole request is in its URL, so it cannot carry a body signature.
    pub is_get: bool,
    /// The client address API Gateway reports (never a header the client sets).
    pub ip: Option<IpAddr>,
    /// The `Origin` header, if any.
    pub origin: Option<&'a str>,
}

impl Rules {
    /// Checks a parsed rule set is one a source may have: routes within the kind's, a brand
    /// where the kind needs one, origins for landing pages. `Err` names the field.
    pub fn validate(&self) -> Result<(), (&'static str, Invalid)> {
        if self.kind.needs_brand() && self.brand.is_none() {
            let message = format!(
                "a {} source writes for one brand: brand is required",
                self.kind.as_str()
            );
            return Err(("brand", Invalid::new("missing", message)));
        }
        if self.conversions && self.kind != SourceKind::Tracker {
            let message = "only a tracker source is told to send conversions: other kinds name their routes";
            return Err(("conversions", Invalid::new("invalid_value", message)));
        }
        let allowed = self.kind.default_routes(self.conversions);
        if self.routes.is_empty() {
            return Err(("routes", Invalid::new("invalid_value", "routes may not be empty")));
        }
        if let Some(r) = self.routes.iter().find(|r| !allowed.contains(r)) {
            let message = format!("a {} source may not call {}", self.kind.as_str(), r.as_str());
            return Err(("routes", Invalid::new("invalid_value", message)));
        }
        if self.kind == SourceKind::Landing && self.allowed_origins.is_empty() {
            let message = "a landing key is public: list the page origins that may use it";
            return Err(("allowedOrigins", Invalid::new("missing", message)));
        }
        if self.kind != SourceKind::Landing && self.tag != TagSettings::default() {
            let field = if self.tag.decorate_domains.is_empty() {
                if self.tag.wait_for_consent {
                    "waitForConsent"
                } else {
                    "decorateParam"
                }
            } else {
                "decorateDomains"
            };
            let message = "only a landing source has a tag to configure";
            return Err((field, Invalid::new("invalid_value", message)));
        }
        Ok(())
    }

    /// Whether this source may make `call` (route, network, origin, signing).
    pub fn admit(&self, call: &Call<'_>) -> Result<(), Refusal> {
        if !self.routes.contains(&call.route) {
            return Err(Refusal::Route(call.route.as_str()));
        }
        if !self.allowed_ips.is_empty()
            && !call
                .ip
                .is_some_and(|ip| self.allowed_ips.iter().any(|c| c.contains(ip)))
        {
            return Err(Refusal::Network);
        }
        // A landing key works only from its pages; any other source with origins listed
        // is held to them when a browser sends one.
        let origin_ok = |o: &str| self.allowed_origins.iter().any(|a| a.as_str() == o);
        let origin_needed = self.kind == SourceKind::Landing;
        match call.origin {
            Some(o) if !self.allowed_origins.is_empty() && !origin_ok(o) => return Err(Refusal::Origin),
            None if origin_needed => return Err(Refusal::Origin),
            _ => {}
        }
        if self.require_signature && call.is_get {
            return Err(Refusal::Unsigned);
        }
        Ok(())
    }

    /// The brand a request of this source writes for: its own when bound (a request naming
    /// another is refused), else whatever the request named.
    pub fn brand_for(&self, named: &Brand) -> Result<(), Refusal> {
        match &self.brand {
            Some(own) if own != named => Err(Refusal::Brand(own.clone())),
            _ => Ok(()),
        }
    }
}

/// Most networks, origins or domains one source may list.
pub const MAX_LIST: usize = 50;

/// A source's rules as a person names them (an API body, a console form): `text`, `list`
/// and `flag` give each field as sent. Each is checked, the first wrong one named, and the
/// whole validated.
pub fn rules_from(
    text: impl Fn(&'static str) -> Option<String>,
    list: impl Fn(&'static str) -> Option<Vec<String>>,
    flag: impl Fn(&'static str) -> bool,
) -> Result<Rules, (&'static str, Invalid)> {
    fn each<T>(
        field: &'static str,
        items: Option<Vec<String>>,
        parse: impl Fn(&str) -> Result<T, Invalid>,
    ) -> Result<Vec<T>, (&'static str, Invalid)> {
        let items = items.unwrap_or_default();
        if items.len() > MAX_LIST {
            let message = format!("{field} may list at most {MAX_LIST} entries");
            return Err((field, Invalid::new("too_long", message)));
        }
        items.iter().map(|i| parse(i).map_err(|e| (field, e))).collect()
    }
    let kind = match text("kind").filter(|k| !k.trim().is_empty()) {
        Some(k) => SourceKind::parse(&k).map_err(|e| ("kind", e))?,
        None => return Err(("kind", Invalid::new("missing", "kind is required"))),
    };
    let conversions = flag("conversions");
    let named_routes = list("routes");
    let rules = Rules {
        kind,
        brand: text("brand")
            .filter(|b| !b.trim().is_empty())
            .map(|b| Brand::parse(&b))
            .transpose()
            .map_err(|e| ("brand", e))?,
        routes: routes_of(kind, conversions, named_routes.as_deref()).map_err(|e| ("routes", e))?,
        conversions,
        allowed_ips: each("allowedIps", list("allowedIps"), Cidr::parse)?,
        allowed_origins: each("allowedOrigins", list("allowedOrigins"), Origin::parse)?,
        require_signature: flag("requireSignature"),
        test: flag("test"),
        tag: TagSettings {
            decorate_domains: each("decorateDomains", list("decorateDomains"), Domain::parse)?,
            decorate_param: match text("decorateParam").filter(|p| !p.trim().is_empty()) {
                Some(p) => ParamName::parse(&p).map_err(|e| ("decorateParam", e))?,
                None => ParamName::default(),
            },
            wait_for_consent: flag("waitForConsent"),
        },
    };
    rules.validate()?;
    Ok(rules)
}

/// The routes of a kind, or the subset a request named.
pub fn routes_of(kind: SourceKind, conversions: bool, named: Option<&[String]>) -> Result<BTreeSet<Route>, Invalid> {
    match named {
        None => Ok(kind.default_routes(conversions).iter().copied().collect()),
        Some(list) => list.iter().map(|r| Route::parse(r)).collect(),
    }
}

/// A source as stored: its rules and what the admin API lists. Its keys and signing secret
/// are never stored; only their hashes (keys) or what derives them (the signing salt).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Source {
    pub source_id: String,
    pub name: String,
    #[serde(flatten)]
    pub rules: Rules,
    /// Random per source; with the deployment's `SOURCE_SECRET` it derives the signing
    /// secret (`signing_secret`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_salt: Option<String>,
    #[serde(with = "crate::values::ts")]
    pub created_at: OffsetDateTime,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::values::ts::option")]
    pub revoked_at: Option<OffsetDateTime>,
}

/// One key of a source as the admin API lists it: never the key, never its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyInfo {
    pub last4: String,
    #[serde(with = "crate::values::ts")]
    pub created_at: OffsetDateTime,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::values::ts::option")]
    pub revoked_at: Option<OffsetDateTime>,
    /// Requests that presented the key, as of each function instance's last check-in
    /// (instances report their count when they re-read the key, at most a minute apart).
    #[serde(default)]
    pub requests: u64,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::values::ts::option")]
    pub last_used_at: Option<OffsetDateTime>,
}

/// Prefix of every ingest key: recognisable in a leaked-secret scan, and never an email.
pub const KEY_PREFIX: &str = "crm_";

/// The stored form of a key: SHA-256, hex. Keys carry 240 random bits, so a fast hash is
/// enough (a slow one protects guessable passwords, not random keys).
pub fn key_hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// The last four characters of a key: what lists show, and how a key is revoked.
pub fn key_last4(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    chars[chars.len().saturating_sub(4)..].iter().collect()
}

/// Random hex digits after the prefix.
pub const KEY_DIGITS: usize = 64;

/// Whether `raw` has the exact shape of our keys (`crm_` and 64 lowercase hex digits), so
/// anything else is refused before a lookup.
pub fn plausible_key(raw: &str) -> bool {
    raw.strip_prefix(KEY_PREFIX).is_some_and(|digits| {
        digits.len() == KEY_DIGITS && digits.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

type HmacSha256 = Hmac<Sha256>;

fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut m = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().into()
}

/// Prefix of every signing secret.
pub const SIGNING_SECRET_PREFIX: &str = "whsec_";

/// A source's signing secret, derived from the deployment's `SOURCE_SECRET`, the source id
/// and its salt: nothing stored can sign, and rotating the salt issues a new secret.
pub fn signing_secret(master: &[u8], source_id: &str, salt: &str) -> String {
    let mac = hmac(
        master,
        &[b"crm source signing v1\0", source_id.as_bytes(), b"\0", salt.as_bytes()],
    );
    format!("{SIGNING_SECRET_PREFIX}{}", hex::encode(mac))
}

/// How far a signature's `t` may be from now.
pub const SIGNATURE_TOLERANCE_SECS: i64 = 300;

/// Why a signature was refused (401).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BadSignature {
    #[error("X-Signature is required for this source")]
    Missing,
    #[error("X-Signature must look like t=<unix seconds>,v1=<hex HMAC-SHA256>")]
    Malformed,
    #[error("X-Signature's t is more than 300 seconds from now")]
    Stale,
    #[error("X-Signature does not match the body")]
    Mismatch,
    #[error("this signature was already used: sign each attempt with a new t")]
    Replayed,
}

/// A signature that verified: its time and the digest that matched (the replay claim's key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    pub t: i64,
    pub digest: String,
}

/// Verifies `X-Signature: t=<unix seconds>,v1=<hex>` over `"<t>.<body>"` with HMAC-SHA256
/// under `secret`, as Stripe's webhooks do. Several `v1` may be sent (during a rotation);
/// one must match. `t` must be within `SIGNATURE_TOLERANCE_SECS` of `now`.
pub fn verify_signature(secret: &str, header: Option<&str>, body: &[u8], now: i64) -> Result<Signed, BadSignature> {
    let header = header.ok_or(BadSignature::Missing)?;
    let mut t: Option<&str> = None;
    let mut candidates = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = Some(v),
            Some(("v1", v)) => candidates.push(v),
            _ => {}
        }
    }
    let t_raw = t.ok_or(BadSignature::Malformed)?;
    let t: i64 = t_raw.parse().map_err(|_| BadSignature::Malformed)?;
    if candidates.is_empty() {
        return Err(BadSignature::Malformed);
    }
    if now.abs_diff(t) > SIGNATURE_TOLERANCE_SECS as u64 {
        return Err(BadSignature::Stale);
    }
    let expected = hmac(secret.as_bytes(), &[t_raw.as_bytes(), b".", body]);
    candidates
        .into_iter()
        .find(|c| {
            use subtle::ConstantTimeEq;
            hex::decode(c).is_ok_and(|given| given.len() == 32 && bool::from(given.ct_eq(&expected)))
        })
        .map(|c| Signed {
            t,
            digest: c.to_ascii_lowercase(),
        })
        .ok_or(BadSignature::Mismatch)
}

/// The header value a sender computes: for tests and documentation examples.
pub fn sign(secret: &str, t: i64, body: &[u8]) -> String {
    let t = t.to_string();
    format!(
        "t={t},v1={}",
        hex::encode(hmac(secret.as_bytes(), &[t.as_bytes(), b".", body]))
    )
}

/// Whether a source that sends conversions (an operator's, or Zapier relaying them) has gone
/// quiet: it was used before, and none of its keys since `silence`. A paused Zap, a changed
/// postback URL or an operator's outage all look like this, and none of them tells us.
/// Revoked and test sources never count; nor do requests with a key after its revocation
/// (refused, they arrived nowhere: an operator still posting with a rotated-out key).
pub fn is_silent(source: &Source, keys: &[KeyInfo], now: OffsetDateTime, silence: time::Duration) -> bool {
    let sends_conversions = matches!(source.rules.kind, SourceKind::Operator | SourceKind::Zapier)
        && source.rules.routes.contains(&Route::Postback);
    // A revoked key's requests are refused: what it "used" since does not count.
    let last_used = keys
        .iter()
        .filter_map(|k| match (k.last_used_at, k.revoked_at) {
            (Some(used), Some(revoked)) if used > revoked => None,
            (used, _) => used,
        })
        .max();
    source.revoked_at.is_none()
        && !source.rules.test
        && sends_conversions
        && last_used.is_some_and(|at| now - at >= silence)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_operator_source_used_before_and_quiet_since_is_silent() {
        let now = OffsetDateTime::now_utc();
        let hours = time::Duration::hours;
        let source = |kind| Source {
            source_id: "src_1".into(),
            name: "Rushbet postbacks".into(),
            rules: rules(kind),
            signing_salt: None,
            created_at: now - hours(100),
            revoked_at: None,
        };
        let key = |used: Option<i64>| KeyInfo {
            last4: "abcd".into(),
            created_at: now - hours(100),
            revoked_at: None,
            requests: used.map_or(0, |_| 1),
            last_used_at: used.map(|h| now - hours(h)),
        };
        let operator = source(SourceKind::Operator);
        let silent = |s: &Source, keys: &[KeyInfo]| is_silent(s, keys, now, hours(24));
        assert!(silent(&operator, &[key(Some(30))]));
        assert!(
            !silent(&operator, &[key(Some(30)), key(Some(2))]),
            "the newest key counts"
        );
        assert!(!silent(&operator, &[key(None)]), "never used: not wired up yet");
        assert!(!silent(&operator, &[key(Some(23))]));
        assert!(silent(&source(SourceKind::Zapier), &[key(Some(30))]));
        for quiet_by_nature in [SourceKind::Tracker, SourceKind::Landing, SourceKind::Sms] {
            assert!(
                !silent(&source(quiet_by_nature), &[key(Some(30))]),
                "{quiet_by_nature:?}"
            );
        }
        let rotated_out = KeyInfo {
            revoked_at: Some(now - hours(40)),
            ..key(Some(1))
        };
        assert!(
            silent(&operator, &[key(Some(30)), rotated_out]),
            "requests refused with a revoked key are not postbacks"
        );
        let revoked = Source {
            revoked_at: Some(now - hours(1)),
            ..operator.clone()
        };
        assert!(!silent(&revoked, &[key(Some(30))]));
        let mut test = operator.clone();
        test.rules.test = true;
        assert!(!silent(&test, &[key(Some(30))]));
        let mut leads_only = source(SourceKind::Zapier);
        leads_only.rules.routes = [Route::Lead].into_iter().collect();
        assert!(!silent(&leads_only, &[key(Some(30))]));
    }

    fn rules(kind: SourceKind) -> Rules {
        Rules {
            kind,
            brand: kind.needs_brand().then(|| Brand::parse("rushbet").unwrap()),
            routes: kind.default_routes(false).iter().copied().collect(),
            allowed_ips: vec![],
            allowed_origins: if kind == SourceKind::Landing {
                vec![Origin::parse("https://lp.rushbet.example").unwrap()]
            } else {
                vec![]
            },
            require_signature: false,
            test: false,
            conversions: false,
            tag: TagSettings::default(),
        }
    }

    fn call(route: Route) -> Call<'static> {
        Call {
            route,
            is_get: false,
            ip: None,
            origin: None,
        }
    }

    #[test]
    fn each_kind_calls_only_its_routes() {
        let table = [
            (SourceKind::Tracker, vec![Route::Click]),
            (SourceKind::Landing, vec![Route::Lead, Route::Click]),
            (SourceKind::Operator, vec![Route::Postback]),
            (SourceKind::Zapier, vec![Route::Postback, Route::Lead]),
            (SourceKind::Sms, vec![Route::SmsInbound]),
        ];
        for (kind, allowed) in table {
            let r = rules(kind);
            for route in Route::ALL {
                let c = Call {
                    origin: Some("https://lp.rushbet.example"),
                    ..call(route)
                };
                assert_eq!(r.admit(&c).is_ok(), allowed.contains(&route), "{kind:?} {route:?}");
            }
        }
    }

    #[test]
    fn narrowed_routes_must_stay_within_the_kind() {
        let mut r = rules(SourceKind::Zapier);
        r.routes = [Route::Lead].into();
        assert!(r.validate().is_ok());
        assert_eq!(r.admit(&call(Route::Postback)), Err(Refusal::Route("postback")));
        r.routes = [Route::Click].into();
        assert_eq!(r.validate().unwrap_err().0, "routes");
        r.routes = BTreeSet::new();
        assert_eq!(r.validate().unwrap_err().0, "routes");
    }

    #[test]
    fn operators_and_landing_pages_need_a_brand_and_landing_pages_origins() {
        let mut r = rules(SourceKind::Operator);
        r.brand = None;
        assert_eq!(r.validate().unwrap_err().0, "brand");
        let mut r = rules(SourceKind::Landing);
        r.allowed_origins.clear();
        assert_eq!(r.validate().unwrap_err().0, "allowedOrigins");
        assert!(rules(SourceKind::Tracker).validate().is_ok());
    }

    #[test]
    fn only_landing_pages_configure_the_tag_and_its_values_are_checked() {
        let mut r = rules(SourceKind::Tracker);
        r.tag.decorate_domains = vec![Domain::parse("rushbet.com").unwrap()];
        assert_eq!(r.validate().unwrap_err().0, "decorateDomains");
        r.kind = SourceKind::Landing;
        r.brand = Some(Brand::parse("rushbet").unwrap());
        r.allowed_origins = vec![Origin::parse("https://lp.rushbet.example").unwrap()];
        assert!(r.validate().is_ok());
        assert_eq!(Domain::parse(" RushBet.COM. ").unwrap().as_str(), "rushbet.com");
        for bad in [
            "rushbet",
            "https://rushbet.com",
            "rushbet.com/register",
            "-a.com",
            "a..com",
            "",
        ] {
            assert!(Domain::parse(bad).is_err(), "{bad}");
        }
        assert!(ParamName::parse("btag").is_ok());
        assert!(ParamName::parse("a b").is_err() && ParamName::parse("").is_err());
        // Stored before the tag existed: the defaults.
        let old: Rules = serde_json::from_str(r#"{"kind":"landing","routes":["lead"]}"#).unwrap();
        assert_eq!(old.tag, TagSettings::default());
        assert_eq!(old.tag.decorate_param.as_str(), "clickid");
    }

    #[test]
    fn a_bound_source_writes_for_its_brand_only() {
        let r = rules(SourceKind::Operator);
        assert!(r.brand_for(&Brand::parse("RushBet").unwrap()).is_ok());
        assert_eq!(
            r.brand_for(&Brand::parse("roobet").unwrap()),
            Err(Refusal::Brand(Brand::parse("rushbet").unwrap()))
        );
        assert!(
            rules(SourceKind::Zapier)
                .brand_for(&Brand::parse("roobet").unwrap())
                .is_ok()
        );
    }

    #[test]
    fn landing_keys_work_only_from_their_origins() {
        let r = rules(SourceKind::Landing);
        let from = |origin| Call {
            origin,
            ..call(Route::Lead)
        };
        assert!(r.admit(&from(Some("https://lp.rushbet.example"))).is_ok());
        assert_eq!(r.admit(&from(Some("https://evil.example"))), Err(Refusal::Origin));
        assert_eq!(r.admit(&from(None)), Err(Refusal::Origin), "no browser, no landing key");
    }

    #[test]
    fn networks_match_v4_and_v6_and_nothing_else() {
        let mut r = rules(SourceKind::Tracker);
        r.allowed_ips = vec![
            Cidr::parse("203.0.113.0/24").unwrap(),
            Cidr::parse("2001:db8::/32").unwrap(),
        ];
        let from = |ip: &str| Call {
            ip: Some(ip.parse().unwrap()),
            ..call(Route::Click)
        };
        assert!(r.admit(&from("203.0.113.77")).is_ok());
        assert!(r.admit(&from("::ffff:203.0.113.9")).is_ok(), "IPv4-mapped");
        assert!(r.admit(&from("2001:db8:1::5")).is_ok());
        assert_eq!(r.admit(&from("203.0.114.1")), Err(Refusal::Network));
        assert_eq!(r.admit(&from("2001:db9::1")), Err(Refusal::Network));
        assert_eq!(r.admit(&call(Route::Click)), Err(Refusal::Network), "unknown address");
    }

    #[test]
    fn cidrs_parse_normalise_and_refuse_nonsense() {
        assert_eq!(Cidr::parse("10.1.2.3/8").unwrap().to_string(), "10.0.0.0/8");
        assert_eq!(Cidr::parse("192.0.2.1").unwrap().to_string(), "192.0.2.1/32");
        assert_eq!(Cidr::parse("2001:db8::1/64").unwrap().to_string(), "2001:db8::/64");
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains("8.8.8.8".parse().unwrap()));
        for bad in ["10.0.0.0/33", "::/129", "300.1.1.1", "example.com", "10.0.0.0/x", ""] {
            assert!(Cidr::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn signing_sources_refuse_get() {
        let mut r = rules(SourceKind::Operator);
        r.require_signature = true;
        assert_eq!(
            r.admit(&Call {
                is_get: true,
                ..call(Route::Postback)
            }),
            Err(Refusal::Unsigned)
        );
        assert!(r.admit(&call(Route::Postback)).is_ok());
    }

    #[test]
    fn signatures_verify_the_exact_body_within_the_tolerance() {
        let secret = signing_secret(b"master key of at least thirty-two chars", "src_1", "salt");
        assert!(secret.starts_with(SIGNING_SECRET_PREFIX));
        let body = br#"{"eventType":"deposit","depositAmount":100}"#;
        let now = 1_800_000_000;
        let header = sign(&secret, now - 10, body);
        let ok = verify_signature(&secret, Some(&header), body, now).unwrap();
        assert_eq!(ok.t, now - 10);
        let tampered = br#"{"eventType":"deposit","depositAmount":900}"#;
        assert_eq!(
            verify_signature(&secret, Some(&header), tampered, now),
            Err(BadSignature::Mismatch)
        );
        assert_eq!(
            verify_signature(&secret, Some(&header), body, now + 301),
            Err(BadSignature::Stale)
        );
        let other = signing_secret(b"master key of at least thirty-two chars", "src_2", "salt");
        assert_eq!(
            verify_signature(&other, Some(&header), body, now),
            Err(BadSignature::Mismatch)
        );
        assert_eq!(verify_signature(&secret, None, body, now), Err(BadSignature::Missing));
        // A t near the integer limits is stale, never an overflow.
        let far = format!("t={},v1={}", i64::MIN, "0".repeat(64));
        assert_eq!(
            verify_signature(&secret, Some(&far), body, now),
            Err(BadSignature::Stale)
        );
        for bad in ["", "t=abc,v1=00", "v1=00", "t=1800000000"] {
            assert_eq!(
                verify_signature(&secret, Some(bad), body, now),
                Err(BadSignature::Malformed),
                "{bad}"
            );
        }
        // During a rotation a sender may send two v1: one must match.
        let both = format!("{header},v1={}", "0".repeat(64));
        assert!(verify_signature(&secret, Some(&both), body, now).is_ok());
    }

    #[test]
    fn keys_are_stored_as_hashes_and_shown_by_their_last_four() {
        let key = format!("crm_{}", "0123456789abcdef".repeat(4));
        assert_eq!(key_hash(&key).len(), 64);
        assert_ne!(key_hash(&key), key_hash(&key.replace('f', "e")));
        assert_eq!(key_last4(&key), "cdef");
        assert!(plausible_key(&key));
        assert!(!plausible_key(&key.to_uppercase()));
        assert!(!plausible_key(&format!("{key}0")), "one digit too many");
        assert!(!plausible_key("local-admin-key"));
        assert!(!plausible_key("crm_a/../b"));
    }
}
