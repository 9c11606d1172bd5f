//! Signed unsubscribe tokens and keyed address hashes, both from one secret
//! (`UNSUBSCRIBE_SECRET`).
//!
//! - An address's *hash* (HMAC-SHA256 under a key derived for hashing) is what suppression
//!   entries are found by: the list needs no plaintext, erasure can drop it, and without the
//!   secret nobody can test which addresses it holds.
//! - A *token* names a channel, a brand, an address hash and the address masked
//!   (`t***@example.com`, for the page), signed under a signing key named by the token's key
//!   id: verifying it needs no database read, it never expires, and it carries no email or
//!   phone number (it ends up in URLs and access logs).
//!
//! The secret is permanent for hashing: changing it makes every suppression entry
//! unfindable. Signing keys rotate: `UNSUBSCRIBE_SIGNING_KEYS` lists `kid:secret` pairs,
//! newest first, and `1` for the key derived from `UNSUBSCRIBE_SECRET` (the only one when it
//! is unset). New links are signed with the first; every listed key still verifies, so links
//! sent before a rotation keep working until their key is removed from the list (retired).
//! Links from before key ids existed (`e.<brand>.<hash>.<sig>`) are key `1`'s.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::definition::Channel;
use crate::values::{Brand, CustomerId};

type HmacSha256 = Hmac<Sha256>;

/// Shortest secret accepted.
pub const MIN_SECRET_LEN: usize = 32;

fn mac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut m = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    for p in parts {
        m.update(p);
        m.update(&[0]);
    }
    m.finalize().into_bytes().into()
}

/// The keys derived from `UNSUBSCRIBE_SECRET` (and `UNSUBSCRIBE_SIGNING_KEYS`).
#[derive(Clone)]
pub struct Keys {
    /// `(key id, key)`, newest first: the first signs, every one verifies.
    signing: Vec<(String, [u8; 32])>,
    hash: [u8; 32],
    confirm: [u8; 32],
}

/// The key id of the signing key derived from `UNSUBSCRIBE_SECRET`.
pub const ROOT_KID: &str = "1";

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys(<redacted>)")
    }
}

impl Keys {
    pub fn derive(secret: &[u8]) -> Self {
        Self {
            signing: vec![(ROOT_KID.to_owned(), signing_key(secret))],
            hash: mac(secret, &[b"crm/address-hash/v1"]),
            confirm: mac(secret, &[b"crm/confirm-token/v1"]),
        }
    }

    /// A double opt-in link's token: the brand, the customer and the address's hash,
    /// signed under its own key (an unsubscribe token never confirms, nor the reverse).
    pub fn confirm_token(&self, brand: &Brand, customer: &CustomerId, address_hash: &str) -> String {
        let payload = format!("{brand}.{customer}.{address_hash}");
        let sig = hex::encode(&mac(&self.confirm, &[payload.as_bytes()])[..16]);
        format!("{payload}.{sig}")
    }

    /// A confirmation token's contents, if this deployment signed it.
    pub fn verify_confirm(&self, token: &str) -> Option<ConfirmToken> {
        if token.len() > 200 {
            return None;
        }
        let (payload, sig) = token.rsplit_once('.')?;
        let expected = hex::encode(&mac(&self.confirm, &[payload.as_bytes()])[..16]);
        if !bool::from(expected.as_bytes().ct_eq(sig.as_bytes())) {
            return None;
        }
        let mut parts = payload.splitn(3, '.');
        Some(ConfirmToken {
            brand: Brand::parse(parts.next()?).ok()?,
            customer: CustomerId::parse(parts.next()?).ok()?,
            address_hash: parts.next()?.to_owned(),
        })
    }

    /// The keyed hash of a normalised address on a channel (32 hex digits).
    pub fn address_hash(&self, channel: Channel, address: &str) -> String {
        hex::encode(&mac(&self.hash, &[channel.as_str().as_bytes(), address.as_bytes()])[..16])
    }

    /// These keys signing with the rotation `spec` (`UNSUBSCRIBE_SIGNING_KEYS`:
    /// `kid:secret,…`, newest first, `1` for the key derived from `UNSUBSCRIBE_SECRET`).
    pub fn with_signing_keys(mut self, spec: &str) -> Result<Self, String> {
        let root = self.signing.iter().find(|(k, _)| k == ROOT_KID).map(|(_, key)| *key);
        let mut signing: Vec<(String, [u8; 32])> = Vec::new();
        for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (kid, key) = match entry.split_once(':') {
                None if entry == ROOT_KID => (ROOT_KID, root.ok_or("key 1 is not available")?),
                None => return Err(format!("{entry:?} needs kid:secret")),
                Some((kid, secret)) => {
                    let kid_ok = (2..=16).contains(&kid.len()) && kid.chars().all(|c| c.is_ascii_alphanumeric());
                    if !kid_ok {
                        return Err(format!("key id {kid:?} must be 2-16 letters or digits"));
                    }
                    if secret.len() < MIN_SECRET_LEN {
                        return Err(format!(
                            "the secret of key {kid} must be at least {MIN_SECRET_LEN} characters"
                        ));
                    }
                    (kid, signing_key(secret.as_bytes()))
                }
            };
            if signing.iter().any(|(k, _)| k == kid) {
                return Err(format!("key id {kid} is listed twice"));
            }
            signing.push((kid.to_owned(), key));
        }
        if signing.is_empty() {
            return Err("lists no key".into());
        }
        self.signing = signing;
        Ok(self)
    }

    /// The key id new links are signed with.
    pub fn current_kid(&self) -> &str {
        &self.signing[0].0
    }

    /// A token for unsubscribing `address` (its keyed hash, and masked for the page) from
    /// `brand` on `channel`, signed with the newest key.
    pub fn token(&self, channel: Channel, brand: &Brand, address_hash: &str, masked: &str) -> String {
        let (kid, key) = &self.signing[0];
        let masked = URL_SAFE_NO_PAD.encode(masked.as_bytes());
        let payload = format!("{kid}.{}.{brand}.{address_hash}.{masked}", channel_code(channel));
        let sig = hex::encode(&mac(key, &[payload.as_bytes()])[..16]);
        format!("{payload}.{sig}")
    }

    /// The token's contents, if a key this deployment still lists signed it.
    pub fn verify(&self, token: &str) -> Option<Token> {
        if token.len() > 400 {
            return None;
        }
        let (payload, sig) = token.rsplit_once('.')?;
        let parts: Vec<&str> = payload.split('.').collect();
        // Links from before key ids: `e.<brand>.<hash>`, key 1.
        let (kid, rest) = match parts.as_slice() {
            [_, _, _] => (ROOT_KID, &parts[..]),
            [kid, rest @ ..] if rest.len() == 4 => (*kid, rest),
            _ => return None,
        };
        let (_, key) = self.signing.iter().find(|(k, _)| k == kid)?;
        let expected = hex::encode(&mac(key, &[payload.as_bytes()])[..16]);
        if !bool::from(expected.as_bytes().ct_eq(sig.as_bytes())) {
            return None;
        }
        let channel = match rest[0] {
            "e" => Channel::Email,
            "s" => Channel::Sms,
            _ => return None,
        };
        let masked = match rest.get(3) {
            Some(m) => Some(String::from_utf8(URL_SAFE_NO_PAD.decode(m).ok()?).ok()?),
            None => None,
        };
        Some(Token {
            channel,
            brand: Brand::parse(rest[1]).ok()?,
            address_hash: rest[2].to_owned(),
            masked,
        })
    }
}

fn signing_key(secret: &[u8]) -> [u8; 32] {
    mac(secret, &[b"crm/unsubscribe-token/v1"])
}

fn channel_code(channel: Channel) -> &'static str {
    match channel {
        Channel::Email => "e",
        Channel::Sms => "s",
    }
}

/// What a verified confirmation token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfirmToken {
    pub brand: Brand,
    pub customer: CustomerId,
    pub address_hash: String,
}

/// What a verified token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub channel: Channel,
    pub brand: Brand,
    pub address_hash: String,
    /// The address masked (`t***@example.com`), for the page; `None` in links from before.
    pub masked: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Keys {
        Keys::derive(b"a test secret that is long enough!!")
    }

    #[test]
    fn a_token_round_trips_and_carries_no_address() {
        let k = keys();
        let hash = k.address_hash(Channel::Email, "ana@example.com");
        let brand = Brand::parse("rushbet").unwrap();
        let token = k.token(Channel::Email, &brand, &hash, "a***@example.com");
        assert!(!token.contains("ana") && !token.contains('@') && token.starts_with("1.e.rushbet."));
        assert_eq!(
            k.verify(&token),
            Some(Token {
                channel: Channel::Email,
                brand,
                address_hash: hash,
                masked: Some("a***@example.com".into()),
            })
        );
    }

    #[test]
    fn a_rotation_signs_with_the_new_key_and_old_links_work_until_their_key_is_retired() {
        let root = keys();
        let brand = Brand::parse("rushbet").unwrap();
        let hash = root.address_hash(Channel::Email, "ana@example.com");
        let before = root.token(Channel::Email, &brand, &hash, "a***@example.com");
        // A link from before key ids: `e.<brand>.<hash>.<sig>` under key 1.
        let payload = format!("e.rushbet.{hash}");
        let legacy = format!(
            "{payload}.{}",
            hex::encode(&mac(&root.signing[0].1, &[payload.as_bytes()])[..16])
        );
        assert!(root.verify(&legacy).is_some_and(|t| t.masked.is_none()));

        let rotated = keys()
            .with_signing_keys("k2:a-new-signing-secret-long-enough-for-it,1")
            .unwrap();
        assert_eq!(rotated.current_kid(), "k2");
        let after = rotated.token(Channel::Email, &brand, &hash, "a***@example.com");
        assert!(after.starts_with("k2."));
        for t in [&before, &legacy, &after] {
            assert!(rotated.verify(t).is_some(), "{t}");
        }
        // The hash key never rotates: the suppression list stays findable.
        assert_eq!(rotated.address_hash(Channel::Email, "ana@example.com"), hash);
        let retired = keys()
            .with_signing_keys("k2:a-new-signing-secret-long-enough-for-it")
            .unwrap();
        assert!(retired.verify(&after).is_some());
        assert_eq!(retired.verify(&before), None);
        assert_eq!(retired.verify(&legacy), None);
        for bad in ["", "k2", "x:a-new-signing-secret-long-enough-for-it", "k2:short", "1,1"] {
            assert!(keys().with_signing_keys(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_confirmation_token_round_trips_and_is_no_unsubscribe_token() {
        let k = keys();
        let brand = Brand::parse("rushbet").unwrap();
        let customer = CustomerId::parse("0192f0c1-7b7e-7cc0-9b1a-3c3f2d6e8a10").unwrap();
        let hash = k.address_hash(Channel::Email, "ana@example.com");
        let token = k.confirm_token(&brand, &customer, &hash);
        assert_eq!(
            k.verify_confirm(&token),
            Some(ConfirmToken {
                brand: brand.clone(),
                customer,
                address_hash: hash.clone()
            })
        );
        assert_eq!(k.verify(&token), None);
        assert_eq!(
            k.verify_confirm(&k.token(Channel::Email, &brand, &hash, "a***@example.com")),
            None
        );
        assert_eq!(k.verify_confirm(&token.replacen("rushbet", "betano", 1)), None);
    }

    #[test]
    fn a_changed_or_foreign_token_is_refused() {
        let k = keys();
        let brand = Brand::parse("rushbet").unwrap();
        let token = k.token(
            Channel::Email,
            &brand,
            &k.address_hash(Channel::Email, "ana@example.com"),
            "a***@example.com",
        );
        let other_brand = token.replacen("rushbet", "betano", 1);
        assert_eq!(k.verify(&other_brand), None);
        assert_eq!(
            Keys::derive(b"another secret, also long enough...").verify(&token),
            None
        );
        assert_eq!(k.verify("e.rushbet.abc"), None);
        assert_eq!(k.verify(""), None);
    }

    #[test]
    fn hashes_are_keyed_and_per_channel() {
        let k = keys();
        let a = k.address_hash(Channel::Email, "ana@example.com");
        assert_eq!(a.len(), 32);
        assert_eq!(a, k.address_hash(Channel::Email, "ana@example.com"));
        assert_ne!(a, k.address_hash(Channel::Sms, "ana@example.com"));
        assert_ne!(
            a,
            Keys::derive(b"another secret, also long enough...").address_hash(Channel::Email, "ana@example.com")
        );
    }
}
