//! Contact points: each email and phone on a profile knows which kind of source gave it,
//! when, and whether its owner confirmed it; per channel, one of them is the **primary**,
//! the only address messages go to.
//!
//! The primary is the first address a trusted source (an operator or Zapier, which know the
//! person) gave, else the first address seen. A later address from a public source (a lead
//! with no key, a landing page's key) never displaces it: anyone can post a lead with a
//! victim's click id and their own address. Changing the primary is an explicit act: an
//! operator postback naming an address for its own user id, or an admin call.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::definition::Channel;
use crate::identity::Identifier;
use crate::source::SourceKind;

/// Whether a source's word on an address is trusted: operators and Zapier relay the
/// operator's own account data. Landing pages (their key is public), trackers and requests
/// with no key can be sent by anyone.
pub fn trusted(kind: Option<SourceKind>) -> bool {
    matches!(kind, Some(SourceKind::Operator | SourceKind::Zapier))
}

/// The channel an identifier is an address on, if it is one.
pub fn channel_of(identifier: &Identifier) -> Option<Channel> {
    match identifier {
        Identifier::Email(_) => Some(Channel::Email),
        Identifier::Phone(_) => Some(Channel::Sms),
        _ => None,
    }
}

/// Where one address came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContactPoint {
    /// The kind of source that first gave it; `None` for a request without a key (ingest
    /// authentication off, `make dev`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<SourceKind>,
    #[serde(with = "crate::values::ts")]
    pub at: OffsetDateTime,
    /// When its owner confirmed it (double opt-in).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::values::ts::option")]
    pub confirmed_at: Option<OffsetDateTime>,
}

impl ContactPoint {
    pub fn trusted(&self) -> bool {
        trusted(self.source)
    }
}

/// A profile's addresses with their provenance, and the two candidates for each channel's
/// primary.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Contacts {
    pub points: BTreeMap<Identifier, ContactPoint>,
    /// Per channel, the first address any source gave.
    pub first: BTreeMap<Channel, Identifier>,
    /// Per channel, the first address a trusted source gave, or the one last set explicitly.
    pub chosen: BTreeMap<Channel, Identifier>,
}

/// What one request says about addresses: the store applies it as first-write-wins updates
/// (and `replace` as a plain set), the profile in memory the same way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactUpdate {
    /// Every address the request carried, with its provenance.
    pub points: Vec<(Identifier, ContactPoint)>,
    /// Per channel, the request's first address: the channel's first if it has none.
    pub first: Vec<(Channel, Identifier)>,
    /// Per channel, the request's address as the chosen one: set if none is (a trusted
    /// source), or replacing it (`replace`: an operator naming its own user's address).
    pub chosen: Vec<(Channel, Identifier)>,
    pub replace: bool,
}

impl ContactUpdate {
    /// What a request from `source` carrying `identifiers` says; `names_its_user`: it is an
    /// operator's statement about its own user id (a postback with `userId`).
    pub fn of(
        identifiers: &[Identifier],
        source: Option<SourceKind>,
        names_its_user: bool,
        at: OffsetDateTime,
    ) -> Self {
        let mut first = Vec::new();
        let mut points = Vec::new();
        for identifier in identifiers {
            let Some(channel) = channel_of(identifier) else {
                continue;
            };
            if points.iter().any(|(i, _)| i == identifier) {
                continue;
            }
            if !first.iter().any(|(c, _)| *c == channel) {
                first.push((channel, identifier.clone()));
            }
            let point = ContactPoint {
                source,
                at,
                confirmed_at: None,
            };
            points.push((identifier.clone(), point));
        }
        let chosen = if trusted(source) { first.clone() } else { Vec::new() };
        Self {
            points,
            first,
            chosen,
            replace: trusted(source) && names_its_user,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }
}

impl Contacts {
    pub fn apply(&mut self, update: &ContactUpdate) {
        for (identifier, point) in &update.points {
            self.points.entry(identifier.clone()).or_insert_with(|| point.clone());
        }
        for (channel, identifier) in &update.first {
            self.first.entry(*channel).or_insert_with(|| identifier.clone());
        }
        for (channel, identifier) in &update.chosen {
            if update.replace {
                self.chosen.insert(*channel, identifier.clone());
            } else {
                self.chosen.entry(*channel).or_insert_with(|| identifier.clone());
            }
        }
    }

    /// Folds another profile's contacts into these (a merge): the earliest provenance per
    /// address, and for each channel this profile's choice before the other's.
    pub fn merge(&mut self, other: &Contacts) {
        for (identifier, point) in &other.points {
            let mine = self.points.entry(identifier.clone()).or_insert_with(|| point.clone());
            if point.at < mine.at {
                let confirmed = mine.confirmed_at.max(point.confirmed_at);
                *mine = point.clone();
                mine.confirmed_at = confirmed;
            }
            mine.confirmed_at = mine.confirmed_at.max(point.confirmed_at);
        }
        for (channel, identifier) in &other.chosen {
            self.chosen.entry(*channel).or_insert_with(|| identifier.clone());
        }
        for (channel, identifier) in &other.first {
            let theirs_earlier = self.first.get(channel).is_none_or(|mine| {
                let at = |i: &Identifier| self.points.get(i).map(|p| p.at);
                at(identifier) < at(mine)
            });
            if theirs_earlier {
                self.first.insert(*channel, identifier.clone());
            }
        }
    }

    /// The channel's primary among `listed` (the profile's identifiers): the chosen
    /// address, else the first seen; for a profile written before contact points were kept,
    /// the listed address that sorts first.
    pub fn primary<'a>(&'a self, channel: Channel, listed: &'a BTreeSet<Identifier>) -> Option<&'a Identifier> {
        let on = |i: &&Identifier| listed.contains(*i);
        self.chosen
            .get(&channel)
            .filter(on)
            .or_else(|| self.first.get(&channel).filter(on))
            .or_else(|| {
                // Neither is listed (erased, voided, or never recorded): the earliest
                // address with provenance, else the first listed.
                listed
                    .iter()
                    .filter(|i| channel_of(i) == Some(channel))
                    .min_by_key(|i| {
                        (
                            self.points.get(*i).map(|p| p.at).is_none(),
                            self.points.get(*i).map(|p| p.at),
                        )
                    })
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::values::Email;
    use time::macros::datetime;

    fn email(s: &str) -> Identifier {
        Identifier::Email(Email::parse(s).unwrap())
    }

    fn touch(
        contacts: &mut Contacts,
        listed: &mut BTreeSet<Identifier>,
        ids: &[Identifier],
        source: Option<SourceKind>,
        user: bool,
    ) {
        listed.extend(ids.iter().cloned());
        contacts.apply(&ContactUpdate::of(ids, source, user, datetime!(2026-12-01 10:00 UTC)));
    }

    #[test]
    fn a_later_public_address_never_displaces_the_first_and_a_trusted_one_is_preferred() {
        let (mut c, mut listed) = (Contacts::default(), BTreeSet::new());
        touch(
            &mut c,
            &mut listed,
            &[email("victim@example.com")],
            Some(SourceKind::Landing),
            false,
        );
        touch(
            &mut c,
            &mut listed,
            &[email("aaa@attacker.test")],
            Some(SourceKind::Landing),
            false,
        );
        touch(&mut c, &mut listed, &[email("aab@attacker.test")], None, false);
        assert_eq!(c.primary(Channel::Email, &listed), Some(&email("victim@example.com")));
        // A tracker's word is no better than a landing page's.
        touch(
            &mut c,
            &mut listed,
            &[email("aac@attacker.test")],
            Some(SourceKind::Tracker),
            false,
        );
        assert_eq!(c.primary(Channel::Email, &listed), Some(&email("victim@example.com")));
        // The operator's address for the person wins over the first public one, and a second
        // trusted statement without the user id does not move it.
        touch(
            &mut c,
            &mut listed,
            &[email("juan@operator.example")],
            Some(SourceKind::Operator),
            false,
        );
        touch(
            &mut c,
            &mut listed,
            &[email("other@zap.example")],
            Some(SourceKind::Zapier),
            false,
        );
        assert_eq!(
            c.primary(Channel::Email, &listed),
            Some(&email("juan@operator.example"))
        );
        // An operator naming an address for its own user id changes it.
        touch(
            &mut c,
            &mut listed,
            &[email("juan.new@operator.example")],
            Some(SourceKind::Operator),
            true,
        );
        assert_eq!(
            c.primary(Channel::Email, &listed),
            Some(&email("juan.new@operator.example"))
        );
        // A public source naming a user id changes nothing.
        touch(
            &mut c,
            &mut listed,
            &[email("aad@attacker.test")],
            Some(SourceKind::Landing),
            true,
        );
        assert_eq!(
            c.primary(Channel::Email, &listed),
            Some(&email("juan.new@operator.example"))
        );
        assert_eq!(c.points[&email("aaa@attacker.test")].source, Some(SourceKind::Landing));
    }

    #[test]
    fn an_unlisted_primary_falls_back_and_a_legacy_profile_uses_its_first_listed_address() {
        let (mut c, mut listed) = (Contacts::default(), BTreeSet::new());
        touch(&mut c, &mut listed, &[email("b@example.com")], None, false);
        touch(&mut c, &mut listed, &[email("a@example.com")], None, false);
        listed.remove(&email("b@example.com"));
        assert_eq!(c.primary(Channel::Email, &listed), Some(&email("a@example.com")));
        let legacy = BTreeSet::from([email("z@example.com"), email("y@example.com")]);
        assert_eq!(
            Contacts::default().primary(Channel::Email, &legacy),
            Some(&email("y@example.com"))
        );
        assert_eq!(Contacts::default().primary(Channel::Sms, &legacy), None);
    }

    #[test]
    fn a_merge_keeps_the_survivors_choice_and_the_earliest_first_address() {
        let t = datetime!(2026-12-01 10:00 UTC);
        let mut a = Contacts::default();
        a.apply(&ContactUpdate::of(&[email("late@example.com")], None, false, t));
        let mut b = Contacts::default();
        b.apply(&ContactUpdate::of(
            &[email("early@example.com")],
            None,
            false,
            t - time::Duration::hours(1),
        ));
        a.merge(&b);
        let listed = BTreeSet::from([email("late@example.com"), email("early@example.com")]);
        assert_eq!(a.primary(Channel::Email, &listed), Some(&email("early@example.com")));
        let mut trusted = Contacts::default();
        trusted.apply(&ContactUpdate::of(
            &[email("op@example.com")],
            Some(SourceKind::Operator),
            false,
            t,
        ));
        a.merge(&trusted);
        let listed = BTreeSet::from([
            email("late@example.com"),
            email("early@example.com"),
            email("op@example.com"),
        ]);
        assert_eq!(a.primary(Channel::Email, &listed), Some(&email("op@example.com")));
    }
}
