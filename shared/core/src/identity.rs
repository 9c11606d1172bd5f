//! The identity graph's vocabulary: what identifies a customer, and the pure decision of
//! which customer a set of identifiers belongs to.
//!
//! Invariant (enforced by the store with conditional writes): each identifier belongs to at
//! most one customer. When one request carries identifiers owned by different customers,
//! they merge and the customer created first survives (customer ids are UUIDv7, so the
//! smallest id is the oldest).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Serialize;

use crate::values::{Brand, ClickId, CustomerId, DeviceId, Email, Invalid, PhoneE164, UserId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum IdentifierKind {
    ClickId,
    Email,
    Phone,
    DeviceId,
    UserId,
}

impl IdentifierKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClickId => "CLICK_ID",
            Self::Email => "EMAIL",
            Self::Phone => "PHONE",
            Self::DeviceId => "DEVICE_ID",
            Self::UserId => "USER_ID",
        }
    }
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        Ok(match raw {
            "CLICK_ID" => Self::ClickId,
            "EMAIL" => Self::Email,
            "PHONE" => Self::Phone,
            "DEVICE_ID" => Self::DeviceId,
            "USER_ID" => Self::UserId,
            _ => {
                return Err(Invalid::new(
                    "invalid_format",
                    format!("unknown identifier type {raw:?}"),
                ));
            }
        })
    }
}

/// One identity key. IP addresses and user agents are click attributes, never identifiers.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Identifier {
    ClickId(ClickId),
    Email(Email),
    Phone(PhoneE164),
    DeviceId(DeviceId),
    /// Operator user ids are only unique within their operator.
    UserId {
        operator: Brand,
        user: UserId,
    },
}

impl Identifier {
    pub fn kind(&self) -> IdentifierKind {
        match self {
            Self::ClickId(_) => IdentifierKind::ClickId,
            Self::Email(_) => IdentifierKind::Email,
            Self::Phone(_) => IdentifierKind::Phone,
            Self::DeviceId(_) => IdentifierKind::DeviceId,
            Self::UserId { .. } => IdentifierKind::UserId,
        }
    }

    /// The value as stored and shown; a user id is `operator:user`.
    pub fn value(&self) -> String {
        match self {
            Self::ClickId(v) => v.to_string(),
            Self::Email(v) => v.to_string(),
            Self::Phone(v) => v.to_string(),
            Self::DeviceId(v) => v.to_string(),
            Self::UserId { operator, user } => format!("{operator}:{user}"),
        }
    }

    /// Reads back an identifier from its stored `(kind, value)` form.
    pub fn from_parts(kind: IdentifierKind, value: &str) -> Result<Self, Invalid> {
        Ok(match kind {
            IdentifierKind::ClickId => Self::ClickId(ClickId::parse(value)?),
            IdentifierKind::Email => Self::Email(Email::parse(value)?),
            IdentifierKind::Phone => Self::Phone(PhoneE164::try_from(value.to_owned())?),
            IdentifierKind::DeviceId => Self::DeviceId(DeviceId::parse(value)?),
            IdentifierKind::UserId => {
                let (operator, user) = value
                    .split_once(':')
                    .ok_or_else(|| Invalid::new("invalid_format", "user id must be operator:user"))?;
                Self::UserId {
                    operator: Brand::parse(operator)?,
                    user: UserId::parse(user)?,
                }
            }
        })
    }

    /// `KIND#value`, the compact form kept in a profile's identifier set.
    pub fn tag(&self) -> String {
        format!("{}#{}", self.kind().as_str(), self.value())
    }

    pub fn from_tag(tag: &str) -> Result<Self, Invalid> {
        let (kind, value) = tag
            .split_once('#')
            .ok_or_else(|| Invalid::new("invalid_format", "identifier tag needs KIND#value"))?;
        Self::from_parts(IdentifierKind::parse(kind)?, value)
    }

    /// Whether this identifier is personal data that must not appear in logs.
    pub fn is_personal(&self) -> bool {
        matches!(self, Self::Email(_) | Self::Phone(_))
    }
}

/// Log-safe rendering: personal identifiers show only their kind.
impl fmt::Display for Identifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_personal() {
            write!(f, "{}#<redacted>", self.kind().as_str())
        } else {
            write!(f, "{}", self.tag())
        }
    }
}

/// Who owns each identifier of a request, as read from the store.
pub type Owners = BTreeMap<Identifier, CustomerId>;

/// Which customer a request's identifiers resolve to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// None of them is known: a new customer.
    New,
    /// All known ones belong to this customer.
    Existing(CustomerId),
    /// They belong to several customers: the oldest survives and absorbs the others.
    Merge {
        survivor: CustomerId,
        absorbed: Vec<CustomerId>,
    },
}

/// Pure resolution over the distinct owners of a request's identifiers.
pub fn resolve<'a>(owners: impl IntoIterator<Item = &'a CustomerId>) -> Resolution {
    let distinct: BTreeSet<&CustomerId> = owners.into_iter().collect();
    let mut it = distinct.into_iter();
    match (it.next(), it.len()) {
        (None, _) => Resolution::New,
        (Some(only), 0) => Resolution::Existing(only.clone()),
        (Some(oldest), _) => Resolution::Merge {
            survivor: oldest.clone(),
            absorbed: it.cloned().collect(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cid(n: u8) -> CustomerId {
        CustomerId::parse(&format!("0192f0c1-7b7e-7cc0-9b1a-3c3f2d6e8a{n:02}")).unwrap()
    }

    #[test]
    fn no_owner_means_new_customer() {
        assert_eq!(resolve([]), Resolution::New);
    }

    #[test]
    fn one_owner_repeated_is_existing() {
        assert_eq!(resolve([&cid(1), &cid(1)]), Resolution::Existing(cid(1)));
    }

    #[test]
    fn several_owners_merge_into_the_oldest() {
        assert_eq!(
            resolve([&cid(3), &cid(1), &cid(2)]),
            Resolution::Merge {
                survivor: cid(1),
                absorbed: vec![cid(2), cid(3)]
            }
        );
    }

    #[test]
    fn identifier_tags_round_trip() {
        let ids = [
            Identifier::Email(Email::parse("a@b.co").unwrap()),
            Identifier::UserId {
                operator: Brand::parse("rushbet").unwrap(),
                user: UserId::parse("u:1").unwrap(),
            },
            Identifier::ClickId(ClickId::parse("x#y").unwrap()),
        ];
        for id in ids {
            assert_eq!(Identifier::from_tag(&id.tag()).unwrap(), id);
        }
    }

    #[test]
    fn personal_identifiers_are_redacted_in_display() {
        let email = Identifier::Email(Email::parse("secret@example.com").unwrap());
        assert_eq!(email.to_string(), "EMAIL#<redacted>");
        let click = Identifier::ClickId(ClickId::parse("c1").unwrap());
        assert_eq!(click.to_string(), "CLICK_ID#c1");
    }
}
