//! Tracked links: the CRM owns the first hop of an influencer's traffic. `GET /l/{code}`
//! records a click (a new visit) and redirects to the link's destination (usually the
//! Redtrack campaign URL) with the influencer and the visit appended, so a later click,
//! lead or conversion that carries them back joins the same visit.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::values::{Brand, Invalid};

/// A link's code: what follows `/l/` (4–32 letters, digits, `-` or `_`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct LinkCode(String);

/// Letters and digits a generated code is made of.
const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
/// Length of a generated code: 57^8 ≈ 1.1e14, so a guessed code is a miss.
pub const GENERATED_LEN: usize = 8;

impl LinkCode {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let ok =
            (4..=32).contains(&raw.len()) && raw.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(Invalid::new(
                "invalid_format",
                "a link code is 4-32 letters, digits, - or _",
            ))
        }
    }
    /// A code from random bytes (the shell supplies them), without look-alike characters.
    pub fn generate(random: [u8; GENERATED_LEN]) -> Self {
        Self(
            random
                .iter()
                .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
                .collect(),
        )
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for LinkCode {
    type Error = Invalid;
    fn try_from(v: String) -> Result<Self, Invalid> {
        Self::parse(&v)
    }
}

impl From<LinkCode> for String {
    fn from(c: LinkCode) -> Self {
        c.0
    }
}

impl std::fmt::Display for LinkCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Placeholders a destination may use for what the CRM fills in; a destination without
/// any gets `sub9=<influencerId>&sub10=<visitId>` appended (Redtrack's sub-ids).
pub const PLACEHOLDERS: [&str; 3] = ["{visitId}", "{influencerId}", "{campaign}"];

/// Where a link sends its visitors: an absolute http(s) URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Destination(String);

impl Destination {
    pub const MAX_LEN: usize = 2048;

    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let raw = raw.trim();
        if raw.len() > Self::MAX_LEN {
            return Err(Invalid::new("too_long", "longer than 2048 characters"));
        }
        // Placeholders are not URL syntax: check the URL with them filled in.
        let filled = PLACEHOLDERS.iter().fold(raw.to_owned(), |s, p| s.replace(p, "x"));
        let url = url::Url::parse(&filled)
            .map_err(|_| Invalid::new("invalid_format", "must be an absolute http or https URL"))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
            return Err(Invalid::new("invalid_format", "must be an absolute http or https URL"));
        }
        if raw.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(Invalid::new(
                "invalid_format",
                "must not contain spaces or control characters",
            ));
        }
        Ok(Self(raw.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Destination {
    type Error = Invalid;
    fn try_from(v: String) -> Result<Self, Invalid> {
        Self::parse(&v)
    }
}

impl From<Destination> for String {
    fn from(d: Destination) -> Self {
        d.0
    }
}

/// A tracked link, as stored and as the admin API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Link {
    pub code: LinkCode,
    pub influencer_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brand: Option<Brand>,
    pub destination: Destination,
    #[serde(with = "crate::values::ts")]
    pub created_at: OffsetDateTime,
    #[serde(with = "crate::values::ts")]
    pub updated_at: OffsetDateTime,
    /// Archived links keep redirecting; they leave the list.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::values::ts::option")]
    pub archived_at: Option<OffsetDateTime>,
}

/// Query parameters a link's visitor brings that the CRM reads itself (the rest pass
/// through to the destination untouched).
pub fn is_own_parameter(name: &str) -> bool {
    matches!(name, "sub9" | "sub10")
}

impl Link {
    /// Where a visit goes: the destination with the placeholders filled in (or `sub9` and
    /// `sub10` appended), then every parameter the visitor brought, in their order. A visit
    /// that was not recorded carries no visit id (`None`): a click that came back with one
    /// would be taken for a repeat of a visit nobody counted.
    pub fn target(&self, visit_id: Option<&str>, passed: &[(String, String)]) -> String {
        let raw = self.destination.as_str();
        let values = [
            visit_id.unwrap_or_default(),
            self.influencer_id.as_str(),
            self.campaign_id.as_deref().unwrap_or_default(),
        ];
        let templated = PLACEHOLDERS.iter().any(|p| raw.contains(p));
        let mut out = PLACEHOLDERS.iter().zip(values).fold(raw.to_owned(), |s, (p, v)| {
            s.replace(
                p,
                &url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>(),
            )
        });
        let (mut base, fragment) = match out.split_once('#') {
            Some((b, f)) => (b.to_owned(), Some(f.to_owned())),
            None => (std::mem::take(&mut out), None),
        };
        let mut added = url::form_urlencoded::Serializer::new(String::new());
        if !templated {
            added.append_pair("sub9", &self.influencer_id);
            if let Some(visit_id) = visit_id {
                added.append_pair("sub10", visit_id);
            }
        }
        for (k, v) in passed.iter().filter(|(k, _)| !is_own_parameter(k)) {
            added.append_pair(k, v);
        }
        let added = added.finish();
        if !added.is_empty() {
            base.push(if base.contains('?') { '&' } else { '?' });
            base.push_str(&added);
        }
        match fragment {
            Some(f) => format!("{base}#{f}"),
            None => base,
        }
    }
}

/// User agents that fetch a link to show a preview, index it or prefetch it: redirected,
/// never counted. Matched as case-insensitive substrings; documented in integrations.md.
pub const PREVIEW_AGENTS: &[&str] = &[
    "slackbot",
    "slack-imgproxy",
    "facebookexternalhit",
    "facebookcatalog",
    "facebot",
    "meta-externalagent",
    "twitterbot",
    "whatsapp",
    "telegrambot",
    "discordbot",
    "googlebot",
    "adsbot-google",
    "google-inspectiontool",
    "googleother",
    "mediapartners-google",
    "bingbot",
    "bingpreview",
    "linkedinbot",
    "skypeuripreview",
    "applebot",
    "pinterestbot",
    "redditbot",
    "vkshare",
    "yandexbot",
    "embedly",
    "iframely",
];

/// Whether a request is a preview, a crawler or a prefetch rather than a person's visit:
/// a known agent, no agent at all, or a `Purpose`/`Sec-Purpose: prefetch` header.
pub fn is_not_a_visit(user_agent: Option<&str>, purpose: Option<&str>) -> bool {
    if purpose.is_some_and(|p| p.to_ascii_lowercase().contains("prefetch")) {
        return true;
    }
    match user_agent.map(str::trim).filter(|ua| !ua.is_empty()) {
        None => true,
        Some(ua) => {
            let ua = ua.to_ascii_lowercase();
            PREVIEW_AGENTS.iter().any(|bot| ua.contains(bot))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn link(destination: &str) -> Link {
        Link {
            code: LinkCode::parse("abcd1234").unwrap(),
            influencer_id: "carlos".into(),
            campaign_id: Some("cmp 1".into()),
            brand: None,
            destination: Destination::parse(destination).unwrap(),
            created_at: datetime!(2026-12-01 0:00 UTC),
            updated_at: datetime!(2026-12-01 0:00 UTC),
            archived_at: None,
        }
    }

    #[test]
    fn a_plain_destination_gets_the_influencer_and_the_visit_as_redtrack_sub_ids() {
        let l = link("https://trk.example.com/abc?cmpid=64f");
        let passed = vec![
            ("utm_source".to_owned(), "ig".to_owned()),
            ("sub10".to_owned(), "forged".to_owned()),
        ];
        assert_eq!(
            l.target(Some("v123"), &passed),
            "https://trk.example.com/abc?cmpid=64f&sub9=carlos&sub10=v123&utm_source=ig"
        );
        assert_eq!(
            link("https://op.example/#top").target(Some("v1"), &[]),
            "https://op.example/?sub9=carlos&sub10=v1#top"
        );
    }

    #[test]
    fn placeholders_are_filled_url_encoded_and_nothing_else_is_appended() {
        let l = link("https://op.example/r?aff={influencerId}&c={campaign}&click={visitId}");
        assert_eq!(
            l.target(Some("v9"), &[]),
            "https://op.example/r?aff=carlos&c=cmp+1&click=v9"
        );
        assert_eq!(l.target(None, &[]), "https://op.example/r?aff=carlos&c=cmp+1&click=");
        assert_eq!(
            link("https://trk.example.com/a").target(None, &[]),
            "https://trk.example.com/a?sub9=carlos"
        );
    }

    #[test]
    fn destinations_are_absolute_web_urls_and_codes_are_bounded() {
        for bad in [
            "javascript:alert(1)",
            "/relative",
            "ftp://x.example",
            "https://",
            "https://a b.example",
        ] {
            assert!(Destination::parse(bad).is_err(), "{bad}");
        }
        assert!(Destination::parse("https://trk.example.com/c?sub10={visitId}").is_ok());
        assert!(LinkCode::parse("ab").is_err() && LinkCode::parse("a/b/c/d").is_err());
        let generated = LinkCode::generate([0, 1, 2, 255, 128, 64, 32, 16]);
        assert_eq!(generated.as_str().len(), GENERATED_LEN);
        assert!(LinkCode::parse(generated.as_str()).is_ok());
    }

    #[test]
    fn previews_crawlers_and_prefetches_are_not_visits() {
        assert!(is_not_a_visit(
            Some("Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)"),
            None
        ));
        assert!(is_not_a_visit(Some("facebookexternalhit/1.1"), None));
        assert!(is_not_a_visit(Some("WhatsApp/2.23.20.0"), None));
        assert!(is_not_a_visit(None, None));
        let phone = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148";
        assert!(!is_not_a_visit(Some(phone), None));
        assert!(is_not_a_visit(Some(phone), Some("prefetch")));
    }
}
