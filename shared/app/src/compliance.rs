//! The recipient's own choices: unsubscribe links (and resubscribing), STOP/START by SMS,
//! each a write to the suppression list, effective for the very next send (the sender reads
//! the list with every message); and erasure of a person's data.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;

use crm_core::compliance::{Keyword, Scope, Suppression, SuppressionReason, sms_keyword};
use crm_core::definition::Channel;
use crm_core::identity::Identifier;
use crm_core::profile::Profile;
use crm_core::unsubscribe::{Keys, Token};
use crm_core::values::{Brand, CustomerId, Email, Invalid, PhoneE164, PhoneRegion};
use crm_store::{ErasureRecord, Store, StoreError};
use time::OffsetDateTime;

/// Suppresses the token's address for `scope` (the token's brand, or every brand).
pub async fn unsubscribe(
    store: &Store,
    token: &Token,
    all_brands: bool,
    source: &str,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    let scope = if all_brands {
        Scope::All
    } else {
        Scope::Brand(token.brand.clone())
    };
    store
        .suppress(&Suppression {
            channel: token.channel,
            address: None,
            address_hash: token.address_hash.clone(),
            scope,
            reason: SuppressionReason::Unsubscribed,
            at: now,
            source: source.to_owned(),
        })
        .await?;
    tracing::info!(channel = token.channel.as_str(), brand = %token.brand, all_brands, source, "unsubscribed");
    Ok(())
}

/// Lifts the recipient's own unsubscribes of the token's address (for its brand and for
/// all brands); bounces, complaints and operators' entries stay.
pub async fn resubscribe(store: &Store, token: &Token) -> Result<(), StoreError> {
    for scope in [Scope::Brand(token.brand.clone()), Scope::All] {
        store
            .unsuppress(
                token.channel,
                &token.address_hash,
                &scope,
                Some(SuppressionReason::Unsubscribed),
            )
            .await?;
    }
    tracing::info!(channel = token.channel.as_str(), brand = %token.brand, "resubscribed");
    Ok(())
}

/// Whether the address is suppressed for the token's brand, and for every brand.
pub async fn unsubscribed(store: &Store, token: &Token) -> Result<(bool, bool), StoreError> {
    let entries = store.suppressions(token.channel, &token.address_hash).await?;
    let brand = entries.iter().any(|e| e.scope.covers(&token.brand));
    let all = entries.iter().any(|e| e.scope == Scope::All);
    Ok((brand, all))
}

/// What an inbound SMS did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmsAction {
    OptedOut,
    OptedIn,
    /// Not a keyword: nothing changed.
    Ignored,
}

impl SmsAction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OptedOut => "opted_out",
            Self::OptedIn => "opted_in",
            Self::Ignored => "ignored",
        }
    }
}

/// STOP (and its aliases) suppresses the number for `brand` (when the provider's webhook
/// names one) or for every brand; START lifts the number's own opt-outs.
pub async fn sms_inbound(
    store: &Store,
    keys: &Keys,
    from: &PhoneE164,
    text: &str,
    brand: Option<Brand>,
    now: OffsetDateTime,
) -> Result<SmsAction, StoreError> {
    let hash = keys.address_hash(Channel::Sms, from.as_str());
    let scope = brand.map_or(Scope::All, Scope::Brand);
    match sms_keyword(text) {
        Some(Keyword::OptOut) => {
            store
                .suppress(&Suppression {
                    channel: Channel::Sms,
                    address: Some(from.to_string()),
                    address_hash: hash,
                    scope,
                    reason: SuppressionReason::Unsubscribed,
                    at: now,
                    source: "sms_inbound".into(),
                })
                .await?;
            Ok(SmsAction::OptedOut)
        }
        Some(Keyword::OptIn) => {
            for entry in store.suppressions(Channel::Sms, &hash).await? {
                let mine = scope == Scope::All || entry.scope == scope;
                if mine && entry.reason.lifted_by_recipient() {
                    store
                        .unsuppress(Channel::Sms, &hash, &entry.scope, Some(SuppressionReason::Unsubscribed))
                        .await?;
                }
            }
            Ok(SmsAction::OptedIn)
        }
        None => Ok(SmsAction::Ignored),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EraseError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A dead-letter queue could not be cleared (nothing was erased: retry).
    #[error("parked notifications: {0}")]
    Parked(String),
}

/// Erases a person (GDPR right to erasure): the customer `id` resolves to and every customer
/// merged into it. In this order, so an interruption never leaves them reachable and a
/// second run finishes the job:
/// 0. `purge_parked` removes the parked copies of notifications naming their addresses
///    (lower-cased; phones also without `+`) from the dead-letter queues;
/// 1. every email and phone goes on the suppression list for all brands as a keyed hash
///    (`erased`), and existing entries of those addresses lose their plaintext;
/// 2. identifier items are deleted (a later click or lead creates a new customer, who stays
///    suppressed), records are scrubbed, pending messages cancelled;
/// 3. profiles become anonymous tombstones; the erasure is recorded.
///
/// `None` when there is no such customer (and no earlier erasure of it).
pub async fn erase<P, F>(
    store: &Store,
    keys: &Keys,
    id: &CustomerId,
    actor: &str,
    now: OffsetDateTime,
    purge_parked: P,
) -> Result<Option<ErasureRecord>, EraseError>
where
    P: FnOnce(Vec<String>) -> F,
    F: Future<Output = Result<usize, String>>,
{
    let survivor = match store.profile(id).await? {
        Some(p) if p.erased => return Ok(Some(finish_record(store, id, &p, actor, now).await?)),
        Some(_) => match store.current_profile(id).await? {
            Some(p) => p,
            None => return Ok(None),
        },
        None => return Ok(None),
    };
    let mut people = vec![survivor.clone()];
    for absorbed in &survivor.merged_from {
        if let Some(p) = store.profile(absorbed).await? {
            people.push(p);
        }
    }
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut identifiers: BTreeSet<(CustomerId, Identifier)> = people
        .iter()
        .flat_map(|p| p.identifiers.iter().map(|i| (p.id.clone(), i.clone())))
        .collect();
    // A full profile does not list every identifier: its records keep the others.
    for p in &people {
        for i in store.unlisted_identifiers(&p.id).await? {
            identifiers.insert((p.id.clone(), i));
        }
    }
    let addresses: BTreeSet<(Channel, String)> = identifiers
        .iter()
        .filter_map(|(_, i)| match i {
            Identifier::Email(e) => Some((Channel::Email, e.to_string())),
            Identifier::Phone(p) => Some((Channel::Sms, p.to_string())),
            _ => None,
        })
        .collect();
    // Copies waiting in dead-letter queues go first: if that fails nothing is erased yet,
    // and the retry finds the person as they were.
    let needles = addresses
        .iter()
        .flat_map(|(_, a)| {
            let a = a.to_lowercase();
            // A phone also appears without its `+` in some providers' payloads.
            let bare = a.strip_prefix('+').map(str::to_owned);
            std::iter::once(a).chain(bare)
        })
        .collect();
    let parked = purge_parked(needles).await.map_err(EraseError::Parked)?;
    if parked > 0 {
        counts.insert("parkedNotifications".into(), parked);
    }
    for (channel, address) in &addresses {
        let hash = keys.address_hash(*channel, address);
        for mut entry in store.suppressions(*channel, &hash).await? {
            if entry.address.take().is_some() {
                store.suppress(&entry).await?;
            }
        }
        store
            .suppress(&Suppression {
                channel: *channel,
                address: None,
                address_hash: hash,
                scope: Scope::All,
                reason: SuppressionReason::Erased,
                at: now,
                source: "erasure".into(),
            })
            .await?;
        *counts.entry("suppressions".into()).or_default() += 1;
    }
    for (owner, identifier) in &identifiers {
        store.delete_identifier(identifier, owner).await?;
        let kind = match identifier.kind().as_str() {
            "CLICK_ID" => "clickIds",
            "EMAIL" => "emails",
            "PHONE" => "phones",
            "DEVICE_ID" => "deviceIds",
            _ => "userIds",
        };
        *counts.entry(kind.to_owned()).or_default() += 1;
    }
    if people.iter().any(|p| p.first_name.is_some() || p.last_name.is_some()) {
        counts.insert("names".into(), 1);
    }
    for p in &people {
        store.erase_records(&p.id, now, &mut counts).await?;
    }
    // The survivor last: a run interrupted before it is tombstoned is run again in full.
    for p in people.iter().rev() {
        store.tombstone_profile(&p.id, now).await?;
    }
    // A name the journey function indexed from a stream record read while this ran.
    for p in &people {
        store.delete_names(&p.id).await?;
    }
    let record = ErasureRecord {
        customer_id: survivor.id.clone(),
        customers: people.iter().map(|p| p.id.clone()).collect(),
        erased_at: now,
        erased_by: actor.to_owned(),
        erased: counts,
    };
    store.put_erasure(&record).await?;
    tracing::info!(customer_id = %survivor.id, customers = record.customers.len(), actor, "customer erased");
    Ok(Some(record))
}

/// A repeated erasure: the recorded one, or (interrupted after the tombstone) a new record.
async fn finish_record(
    store: &Store,
    id: &CustomerId,
    p: &Profile,
    actor: &str,
    now: OffsetDateTime,
) -> Result<ErasureRecord, StoreError> {
    let survivor = p.merged_into.clone().unwrap_or_else(|| id.clone());
    if let Some(r) = store.erasure(&survivor).await? {
        return Ok(r);
    }
    let mut counts = BTreeMap::new();
    store.erase_records(id, now, &mut counts).await?;
    let record = ErasureRecord {
        customer_id: survivor,
        customers: std::iter::once(id.clone())
            .chain(p.merged_from.iter().cloned())
            .collect(),
        erased_at: now,
        erased_by: actor.to_owned(),
        erased: counts,
    };
    store.put_erasure(&record).await?;
    Ok(record)
}

/// Why an operator's change to the suppression list was refused.
#[derive(Debug, thiserror::Error)]
pub enum SuppressionError {
    /// A field that does not parse (`channel`, `address`, `scope`, `reason`).
    #[error("{field}: {invalid}")]
    Invalid { field: &'static str, invalid: Invalid },
    /// The address belongs to an erased person: it stays suppressed as erased.
    #[error("the address belongs to an erased person and stays suppressed as erased")]
    Erased,
    #[error("no such entry")]
    NotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn invalid(field: &'static str) -> impl FnOnce(Invalid) -> SuppressionError {
    move |invalid| SuppressionError::Invalid { field, invalid }
}

/// An address as the suppression list keys it, on its channel (lowercased email, E.164
/// phone), and that key.
/// Which entries of a channel's suppression list to show: those of one address, or a page
/// newest first (after the last entry of the page before).
pub enum SuppressionQuery<'a> {
    Address { raw: &'a str, region: PhoneRegion },
    Page { limit: i32, after: Option<&'a Suppression> },
}

/// A channel's suppression list: one address's entries (found by its keyed hash, never by
/// its plaintext), or a page and whether more follow.
pub async fn suppressions(
    store: &Store,
    keys: &Keys,
    channel: Channel,
    query: SuppressionQuery<'_>,
) -> Result<(Vec<Suppression>, bool), SuppressionError> {
    Ok(match query {
        SuppressionQuery::Address { raw, region } => {
            let (_, hash) = listed_address(keys, channel, raw, region)?;
            (store.suppressions(channel, &hash).await?, false)
        }
        SuppressionQuery::Page { limit, after } => store.suppression_page(channel, limit, after).await?,
    })
}

/// Entries of the suppression list for the addresses messages to this customer go to (the
/// primary email and phone), for every brand and for the brands of its journeys: one
/// batch read.
pub async fn suppressions_of(store: &Store, keys: &Keys, p: &Profile) -> Result<Vec<Suppression>, StoreError> {
    let addresses: Vec<(Channel, String)> = [Channel::Email, Channel::Sms]
        .into_iter()
        .filter_map(|channel| Some((channel, keys.address_hash(channel, &p.primary(channel)?.value()))))
        .collect();
    let scopes: Vec<Scope> = std::iter::once(Scope::All)
        .chain(p.journeys().into_iter().map(|j| Scope::Brand(j.brand)))
        .collect();
    store.suppressions_in(&addresses, &scopes).await
}

pub fn listed_address(
    keys: &Keys,
    channel: Channel,
    raw: &str,
    region: PhoneRegion,
) -> Result<(String, String), SuppressionError> {
    let address = match channel {
        Channel::Email => Email::parse(raw).map(|e| e.to_string()),
        Channel::Sms => PhoneE164::parse(raw, region).map(|p| p.to_string()),
    }
    .map_err(invalid("address"))?;
    let hash = keys.address_hash(channel, &address);
    Ok((address, hash))
}

/// What an operator asks to add: the fields as typed (scope and reason optional: every
/// brand, `manual`).
pub struct ManualSuppression<'a> {
    pub channel: &'a str,
    pub address: &'a str,
    pub scope: Option<&'a str>,
    pub reason: Option<&'a str>,
}

/// Adds an operator's entry (admin API and console alike); `source` says where from.
pub async fn suppress_manually(
    store: &Store,
    keys: &Keys,
    region: PhoneRegion,
    asked: &ManualSuppression<'_>,
    source: &str,
    now: OffsetDateTime,
) -> Result<Suppression, SuppressionError> {
    let channel = Channel::parse(asked.channel).map_err(invalid("channel"))?;
    let (address, address_hash) = listed_address(keys, channel, asked.address, region)?;
    let scope = match asked.scope.filter(|s| !s.trim().is_empty()) {
        None => Scope::All,
        Some(raw) => Scope::parse(raw).map_err(invalid("scope"))?,
    };
    let reason = match asked.reason.filter(|s| !s.trim().is_empty()) {
        None => SuppressionReason::Manual,
        Some(raw) => SuppressionReason::parse(raw).map_err(invalid("reason"))?,
    };
    let entry = Suppression {
        channel,
        address_hash,
        address: Some(address),
        scope,
        reason,
        at: now,
        source: source.to_owned(),
    };
    if !store.suppress(&entry).await? {
        return Err(SuppressionError::Erased);
    }
    tracing::info!(
        channel = channel.as_str(),
        scope = entry.scope.as_str(),
        reason = reason.as_str(),
        "suppression added"
    );
    Ok(entry)
}

/// Removes the entry of one address (by its key) for `scope`. An erased person's entry is
/// the only trace that keeps them from being marketed to: it stays.
pub async fn lift_suppression(
    store: &Store,
    channel: Channel,
    address_hash: &str,
    scope: &Scope,
) -> Result<(), SuppressionError> {
    let entries = store.suppressions(channel, address_hash).await?;
    match entries.iter().find(|e| e.scope == *scope) {
        None => Err(SuppressionError::NotFound),
        Some(e) if e.reason == SuppressionReason::Erased => Err(SuppressionError::Erased),
        Some(e) => {
            store.unsuppress(channel, address_hash, scope, Some(e.reason)).await?;
            tracing::info!(
                channel = channel.as_str(),
                scope = scope.as_str(),
                "suppression removed"
            );
            Ok(())
        }
    }
}
