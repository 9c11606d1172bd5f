//! Signed unsubscribe tokens and keyed address hashes, both from one secret
//! (`UNSUBSCRIBE_SECRET`).
//!
//! - An address's *hash* (HMAC-SHA256 under a key derived for hashing) is what suppression
//!   entries are found by: the list needs no plaintext, erasure can drop it, and without the
//!   secret nobody can test which addresses it holds.
//! - A *token* names a channel, a brand and an address hash, signed under a second derived
//!   key: verifying it needs no database read, it never expires, and it carries no email or
//!   phone number (it ends up in URLs and access logs).
//!
//! The secret is permanent: changing it breaks every link already sent and makes every
//! suppression entry unfindable.

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

/// The keys derived from `UNSUBSCRIBE_SECRET`.
#[derive(Clone)]
pub struct Keys {
    sign: [u8; 32],
    hash: [u8; 32],
    confirm: [u8; 32],
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys(<redacted>)")
    }
}

impl Keys {
    pub fn derive(secret: &[u8]) -> Self {
        Self {
            sign: mac(secret, &[b"crm/unsubscribe-token/v1"]),
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

    /// A token for unsubscribing `address_hash` from `brand` on `channel`.
    pub fn token(&self, channel: Channel, brand: &Brand, address_hash: &str) -> String {
        let payload = format!("{}.{}.{}", channel_code(channel), brand, address_hash);
        let sig = hex::encode(&mac(&self.sign, &[payload.as_bytes()])[..16]);
        format!("{payload}.{sig}")
    }

    /// The token's contents, if this deployment signed it.
    pub fn verify(&self, token: &str) -> Option<Token> {
        if token.len() > 200 {
            return None;
        }
        let (payload, sig) = token.rsplit_once('.')?;
        let expected = hex::encode(&mac(&self.sign, &[payload.as_bytes()])[..16]);
        if !bool::from(expected.as_bytes().ct_eq(sig.as_bytes())) {
            return None;
        }
        let mut parts = payload.splitn(3, '.');
        let channel = match parts.next()? {
            "e" => Channel::Email,
            "s" => Channel::Sms,
            _ => return None,
        };
        let brand = Brand::parse(parts.next()?).ok()?;
        let address_hash = parts.next()?.to_owned();
        Some(Token {
            channel,
            brand,
            address_hash,
        })
    }
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
        let token = k.token(Channel::Email, &brand, &hash);
        assert!(!token.contains("ana") && !token.contains('@'));
        assert_eq!(
            k.verify(&token),
            Some(Token {
                channel: Channel::Email,
                brand,
                address_hash: hash
            })
        );
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
        assert_eq!(k.verify_confirm(&k.token(Channel::Email, &brand, &hash)), None);
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
