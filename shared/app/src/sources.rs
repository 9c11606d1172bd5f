//! Ingest sources and their keys: create a source (its first key and, when it signs, its
//! signing secret are shown once), add a key for a rotation, revoke a key or a whole source;
//! and, on every ingest request, find the source of the key it presents through a short
//! per-instance cache, so a warm instance adds no DynamoDB round trip to the hot path.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crm_core::source::{KEY_PREFIX, KeyInfo, Rules, Source, key_hash, key_last4, plausible_key, signing_secret};
use crm_store::{SourceEntry, Store, StoreError, StoredKey};
use time::OffsetDateTime;

use crate::config::Secret;

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no such source")]
    NotFound,
    #[error("the source is revoked")]
    Revoked,
    /// A signing source needs the deployment's `SOURCE_SECRET`.
    #[error("SOURCE_SECRET is not set: sources cannot sign")]
    NoSigningSecret,
}

/// Every source with its keys (by last four characters) and their use.
pub async fn list(store: &Store) -> Result<Vec<SourceEntry>, StoreError> {
    store.sources().await
}

/// One source with its keys.
pub async fn get(store: &Store, id: &str) -> Result<SourceEntry, SourceError> {
    store.source(id).await?.ok_or(SourceError::NotFound)
}

/// What creating a source or a key shows once, and never again.
#[derive(Clone)]
pub struct Issued {
    /// The source with its keys, as written.
    pub entry: SourceEntry,
    pub key: String,
    pub signing_secret: Option<String>,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued")
            .field("source_id", &self.entry.source.source_id)
            .finish_non_exhaustive()
    }
}

/// 244 random bits (two UUIDv4s), hex, behind a recognisable prefix.
fn new_key() -> String {
    let (a, b) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    format!("{KEY_PREFIX}{}{}", a.simple(), b.simple())
}

fn stored(key: &str, now: OffsetDateTime) -> StoredKey {
    StoredKey {
        hash: key_hash(key),
        info: KeyInfo {
            last4: key_last4(key),
            created_at: now,
            revoked_at: None,
            requests: 0,
            last_used_at: None,
        },
    }
}

/// The signing secret of `source`, if it signs.
pub fn signing_secret_of(master: Option<&Secret>, source: &Source) -> Result<Option<String>, SourceError> {
    match (&source.signing_salt, source.rules.require_signature) {
        (Some(salt), true) => {
            let master = master.ok_or(SourceError::NoSigningSecret)?;
            Ok(Some(signing_secret(
                master.expose().as_bytes(),
                &source.source_id,
                salt,
            )))
        }
        _ => Ok(None),
    }
}

/// Creates a source with `rules` (already validated) and its first key.
pub async fn create(
    store: &Store,
    master: Option<&Secret>,
    name: String,
    rules: Rules,
    now: OffsetDateTime,
) -> Result<Issued, SourceError> {
    if rules.require_signature && master.is_none() {
        return Err(SourceError::NoSigningSecret);
    }
    let source = Source {
        source_id: format!("src_{}", uuid::Uuid::now_v7().simple()),
        name,
        signing_salt: rules
            .require_signature
            .then(|| uuid::Uuid::new_v4().simple().to_string()),
        rules,
        created_at: now,
        revoked_at: None,
    };
    let key = new_key();
    let first = stored(&key, now);
    if !store.create_source(&source, &first).await? {
        return Err(StoreError::Unavailable("a fresh source id was taken".into()).into());
    }
    let signing_secret = signing_secret_of(master, &source)?;
    Ok(Issued {
        entry: SourceEntry {
            source,
            keys: vec![first],
        },
        key,
        signing_secret,
    })
}

/// Adds a key to a live source (rotation: both keys work until the old one is revoked).
pub async fn add_key(store: &Store, id: &str, now: OffsetDateTime) -> Result<Issued, SourceError> {
    let mut entry = store.source(id).await?.ok_or(SourceError::NotFound)?;
    if entry.source.revoked_at.is_some() {
        return Err(SourceError::Revoked);
    }
    // A new key's last four characters name it: never the same as a key the source has.
    let key = loop {
        let key = new_key();
        if !entry.keys.iter().any(|k| k.info.last4 == key_last4(&key)) {
            break key;
        }
    };
    let added = stored(&key, now);
    if !store.add_source_key(&entry.source, &added).await? {
        return Err(SourceError::Revoked);
    }
    entry.keys.push(added);
    Ok(Issued {
        entry,
        key,
        signing_secret: None,
    })
}

/// Revokes a source and all its keys. Revoking twice changes nothing.
pub async fn revoke(
    store: &Store,
    cache: &KeyCache,
    id: &str,
    now: OffsetDateTime,
) -> Result<SourceEntry, SourceError> {
    let entry = store.source(id).await?.ok_or(SourceError::NotFound)?;
    // Every key still live is revoked, even when the source already is (a second DELETE
    // finishes what a first one left); a key the list missed is refused all the same, since
    // every key check reads its source.
    if entry.source.revoked_at.is_none() || entry.keys.iter().any(|k| k.info.revoked_at.is_none()) {
        store.revoke_source(&entry, now).await?;
    }
    for key in &entry.keys {
        cache.forget(&key.hash);
    }
    let mut revoked = entry;
    revoked.source.revoked_at = revoked.source.revoked_at.or(Some(now));
    for key in &mut revoked.keys {
        key.info.revoked_at = key.info.revoked_at.or(Some(now));
    }
    Ok(revoked)
}

/// Revokes the key of source `id` whose last four characters are `last4`.
pub async fn revoke_key(
    store: &Store,
    cache: &KeyCache,
    id: &str,
    last4: &str,
    now: OffsetDateTime,
) -> Result<SourceEntry, SourceError> {
    let mut entry = store.source(id).await?.ok_or(SourceError::NotFound)?;
    let matching: Vec<&mut StoredKey> = entry.keys.iter_mut().filter(|k| k.info.last4 == last4).collect();
    if matching.is_empty() {
        return Err(SourceError::NotFound);
    }
    // Every key with these last four characters (keys are made unique by them, but two
    // rotations at once could collide).
    for key in matching {
        if key.info.revoked_at.is_none() {
            store.revoke_source_key(&key.hash, now).await?;
            key.info.revoked_at = Some(now);
        }
        cache.forget(&key.hash);
    }
    Ok(entry)
}

/// What an instance remembers of one key: the source (or that there is none, or that it
/// is revoked), when it last asked, and how many requests used it since.
struct Cached {
    source: Option<Arc<Source>>,
    fetched: Instant,
    uses: u64,
}

/// A per-instance cache of keys. An entry is trusted for `ttl`; the next request after that
/// re-reads the key with one `UpdateItem` that also reports the uses counted meanwhile.
/// Revocation therefore reaches every instance within `ttl` (`SOURCE_CACHE_SECONDS`).
#[derive(Clone)]
pub struct KeyCache {
    ttl: Duration,
    entries: Arc<Mutex<HashMap<String, Cached>>>,
}

impl std::fmt::Debug for KeyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyCache")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

/// Most keys one instance remembers (unknown keys included): a flood of made-up keys
/// cannot grow it without bound.
const MAX_ENTRIES: usize = 10_000;

impl KeyCache {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    fn forget(&self, hash: &str) {
        self.entries.lock().expect("cache lock").remove(hash);
    }

    /// The live source `key` belongs to; `None` for an unknown or revoked key.
    pub async fn source(
        &self,
        store: &Store,
        key: &str,
        now: OffsetDateTime,
    ) -> Result<Option<Arc<Source>>, StoreError> {
        if !plausible_key(key) {
            return Ok(None);
        }
        let hash = key_hash(key);
        let uses = {
            let mut entries = self.entries.lock().expect("cache lock");
            match entries.get_mut(&hash) {
                Some(c) if c.fetched.elapsed() < self.ttl => {
                    c.uses += 1;
                    return Ok(c.source.clone());
                }
                Some(c) => c.uses + 1,
                None => 1,
            }
        };
        let used = store.use_source_key(&hash, uses, now).await?;
        let source = used.filter(|u| !u.revoked).map(|u| Arc::new(u.source));
        let mut entries = self.entries.lock().expect("cache lock");
        if entries.len() >= MAX_ENTRIES {
            // Unknown keys go first: made-up keys cannot push the real ones out.
            entries.retain(|_, c| c.source.is_some());
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(
            hash,
            Cached {
                source: source.clone(),
                fetched: Instant::now(),
                uses: 0,
            },
        );
        Ok(source)
    }
}

/// What removing a source's test records took away.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Removed {
    /// Records by kind (`clicks`, `leads`, `events`, `merges`, `messages`).
    pub records: std::collections::BTreeMap<String, usize>,
    /// Test customers removed whole (their profile, identifiers, messages).
    pub customers: usize,
}

/// Records per page while walking a day (removing test records, voiding).
const REMOVE_PAGE: i32 = 100;

/// Removes the test records source `id` wrote on the UTC days `from..=to`, and the test
/// customers they belong to (with everything else of theirs: test customers only ever hold
/// test traffic). Live records are never removed here (they are voided instead).
pub async fn remove_test_records(
    store: &Store,
    id: &str,
    from: time::Date,
    to: time::Date,
) -> Result<Removed, SourceError> {
    get(store, id).await?;
    let mut removed = Removed::default();
    let customers: std::collections::BTreeSet<_> = source_records(store, id, from, to)
        .await?
        .iter()
        .filter(|r| r.is_test())
        .map(|r| r.customer().clone())
        .collect();
    for customer in customers {
        let Some(profile) = store.profile(&customer).await? else {
            continue;
        };
        if !profile.test {
            continue;
        }
        for (kind, n) in store.purge_test_customer(&profile).await? {
            *removed.records.entry(kind).or_default() += n;
        }
        removed.customers += 1;
    }
    Ok(removed)
}

/// What voiding a source's records did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Voided {
    /// Records newly voided, by kind (`clicks`, `leads`, `events`).
    pub records: std::collections::BTreeMap<String, usize>,
    /// Of those, how many had been counted (and were taken back out of the counters).
    pub uncounted: usize,
    /// Pending messages of the stages they entered, cancelled.
    pub messages_cancelled: usize,
}

/// Timeline records read per page when looking for a customer's next first record.
const TIMELINE_PAGE: i32 = 200;

/// Voids the live records source `id` wrote on the UTC days `from..=to`: each is marked
/// voided (shown, never counted again), what it counted is taken back out of the counters,
/// a customer it counted first in a row is counted there by the record that would have been
/// first without it, and the pending messages of the stage it entered are cancelled.
/// Voiding twice changes nothing.
pub async fn void(
    store: &Store,
    id: &str,
    from: time::Date,
    to: time::Date,
    now: OffsetDateTime,
) -> Result<Voided, SourceError> {
    get(store, id).await?;
    let mut out = Voided::default();
    for record in source_records(store, id, from, to).await? {
        if !record.is_test() && !record.is_voided() {
            void_one(store, &record, now, &mut out).await?;
        }
    }
    Ok(out)
}

/// Every click, lead and event source `id` wrote on the UTC days `from..=to` (at most 92),
/// walking the day index page by page.
async fn source_records(
    store: &Store,
    id: &str,
    from: time::Date,
    to: time::Date,
) -> Result<Vec<crm_core::records::Activity>, StoreError> {
    use crm_core::records::RecordKind;
    let mut found = Vec::new();
    let mut day = from;
    while day <= to {
        for kind in [RecordKind::Click, RecordKind::Lead, RecordKind::Event] {
            let mut after = None;
            loop {
                let (page, more) = store.records_after(kind, day, after.as_ref(), REMOVE_PAGE).await?;
                after = page.last().map(|r| crm_store::FeedPosition {
                    at: r.at(),
                    id: r.id().to_owned(),
                });
                found.extend(page.into_iter().filter(|r| r.source_id() == Some(id)));
                if !more {
                    break;
                }
            }
        }
        let Some(next) = day.next_day() else { break };
        day = next;
    }
    Ok(found)
}

async fn void_one(
    store: &Store,
    record: &crm_core::records::Activity,
    now: OffsetDateTime,
    out: &mut Voided,
) -> Result<(), StoreError> {
    use crm_core::stats::{CountedRow, Delta, Metric, reversal};
    let (kind, id, customer) = (record.kind(), record.id(), record.customer().clone());
    let Some(voided) = store.void_record(kind, id, now).await? else {
        return Ok(());
    };
    let plural = format!("{}s", kind.as_str().to_ascii_lowercase());
    *out.records.entry(plural).or_default() += 1;
    let deltas: Vec<Delta> = voided.counted_rows().iter().filter_map(CountedRow::delta).collect();
    if !deltas.is_empty() && store.uncount(kind, id, &reversal(&deltas)).await? {
        out.uncounted += 1;
        // What it was first at passes to the record that would have been first without it.
        for first in deltas.iter().filter(|d| d.metrics.contains_key(&Metric::Customers)) {
            let seen = crm_store::keys::seen_attr(&first.row);
            store.release(&customer, &seen, id).await?;
            promote_next(store, &customer, &voided, Firsts::Row(first)).await?;
        }
        if deltas.iter().any(|d| d.metrics.contains_key(&Metric::Ftds))
            && let crm_core::records::Activity::Event(e) = &voided
        {
            let seen = crm_store::keys::first_deposit_attr(&e.brand);
            store.release(&customer, &seen, id).await?;
            promote_next(store, &customer, &voided, Firsts::Deposit(&e.brand)).await?;
        }
    }
    for m in store.customer_messages(&customer).await? {
        if m.stage_entered_at == voided.at()
            && m.status.is_cancellable()
            && store
                .cancel_message(&customer, &m.message_id, crm_core::message::Reason::Voided, now)
                .await?
        {
            out.messages_cancelled += 1;
        }
    }
    Ok(())
}

/// What a voided record was first at.
enum Firsts<'a> {
    /// The customer's first record in this row (its delta): `Customers` there.
    Row(&'a crm_core::stats::Delta),
    /// The customer's first deposit for this brand: `Ftds` on every row it counted.
    Deposit(&'a str),
}

/// The customer's earliest other live counted record that `firsts` would have gone to
/// without the voided one gets it: its counters, its `countedRows` and `counted`, the seen
/// mark.
async fn promote_next(
    store: &Store,
    customer: &crm_core::values::CustomerId,
    voided: &crm_core::records::Activity,
    firsts: Firsts<'_>,
) -> Result<(), StoreError> {
    use crm_core::records::Activity;
    use crm_core::stats::{CountedRow, Metric};
    let same_row = |r: &CountedRow, d: &crm_core::stats::Delta| {
        r.dimension == d.row.dimension.as_str() && r.brand == d.row.brand && r.value == d.row.value
    };
    let eligible = |r: &Activity| match &firsts {
        Firsts::Row(d) => r.counted_rows().iter().any(|row| same_row(row, d)),
        Firsts::Deposit(brand) => matches!(r, Activity::Event(e)
            if e.brand == *brand && matches!(e.event_type.as_str(), "deposit" | "ftd")),
    };
    // The time it counts at: an event's when-it-happened.
    let when = |r: &Activity| match r {
        Activity::Event(e) => e.occurred_at.unwrap_or(e.at),
        other => other.at(),
    };
    let mut candidates = Vec::new();
    let mut before = None;
    loop {
        let page = store.timeline(customer, before.as_ref(), TIMELINE_PAGE).await?;
        let full = page.len() == TIMELINE_PAGE as usize;
        before = page.last().map(|(position, _)| position.clone());
        candidates.extend(page.into_iter().map(|(_, r)| r).filter(|r| {
            r.id() != voided.id()
                && !r.is_voided()
                && !r.is_test()
                && r.customer() == customer
                && !r.counted_rows().is_empty()
                && eligible(r)
        }));
        if !full {
            break;
        }
    }
    let Some(next) = candidates.into_iter().min_by_key(|r| (when(r), r.id().to_owned())) else {
        return Ok(());
    };
    let (metric, seen) = match &firsts {
        Firsts::Row(d) => (Metric::Customers, crm_store::keys::seen_attr(&d.row)),
        Firsts::Deposit(brand) => (Metric::Ftds, crm_store::keys::first_deposit_attr(brand)),
    };
    let one = rust_decimal::Decimal::ONE;
    let mut rows = next.counted_rows().to_vec();
    let mut added = Vec::new();
    for row in &mut rows {
        let applies = match &firsts {
            Firsts::Row(d) => same_row(row, d),
            Firsts::Deposit(_) => true,
        };
        if applies {
            *row.metrics.entry(metric.name()).or_default() += one;
            if let Some(mut delta) = row.delta() {
                delta.metrics = [(metric.clone(), one)].into();
                added.push(delta);
            }
        }
    }
    let mut counted = match &next {
        Activity::Click(r) => r.counted.clone(),
        Activity::Lead(r) => r.counted.clone(),
        Activity::Event(r) => r.counted.clone(),
        Activity::Merge(_) | Activity::Message(_) | Activity::Contact(_) => None,
    }
    .unwrap_or_default();
    // `counted` holds what a record counts whatever the row (customers are per row).
    if let Firsts::Deposit(_) = firsts {
        *counted.entry(metric.name()).or_default() += one;
    }
    store.promote(customer, &next, &seen, &added, &rows, &counted).await?;
    Ok(())
}
