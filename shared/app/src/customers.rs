//! Reading customers and their records: a profile as it is now, one timeline of its
//! records, the feeds of clicks, leads and events. The admin API and the console both come
//! here.

use crm_core::identity::Identifier;
use crm_core::profile::{Profile, name_key};
use crm_core::records::{Activity, ContactRecord, RecordKind};
use crm_core::values::CustomerId;
use crm_store::{FeedPosition, Store, StoreError, TimelinePosition};
use time::{Date, OffsetDateTime};

/// Whose an identifier is (an id merged since resolves to the survivor when read).
pub async fn owner(store: &Store, identifier: &Identifier) -> Result<Option<CustomerId>, StoreError> {
    store.owner(identifier).await
}

#[derive(Debug, thiserror::Error)]
pub enum ContactError {
    #[error("no such customer")]
    NoSuchCustomer,
    /// The address is not one of the customer's (a 400 on `address`).
    #[error("not an address of this customer")]
    NotListed,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Makes one of a customer's addresses the primary on its channel (where messages go),
/// recorded on the timeline with who chose it. Answers the customer as they are now.
pub async fn choose_primary(
    store: &Store,
    id: &CustomerId,
    identifier: Identifier,
    by: &str,
    now: OffsetDateTime,
) -> Result<Profile, ContactError> {
    let profile = current(store, id).await?.ok_or(ContactError::NoSuchCustomer)?;
    let channel = crm_core::contact::channel_of(&identifier).ok_or(ContactError::NotListed)?;
    if !profile.identifiers.contains(&identifier) {
        return Err(ContactError::NotListed);
    }
    let record = ContactRecord {
        change_id: uuid::Uuid::now_v7().to_string(),
        customer_id: profile.id.clone(),
        channel,
        address: identifier.value(),
        previous: profile.primary(channel).map(Identifier::value),
        by: by.to_owned(),
        at: now,
    };
    if !store.choose_contact(&record, &identifier).await? {
        return Err(ContactError::NotListed);
    }
    current(store, &profile.id).await?.ok_or(ContactError::NoSuchCustomer)
}

/// A customer as they are now (an id merged into another resolves to the survivor).
pub async fn current(store: &Store, id: &CustomerId) -> Result<Option<Profile>, StoreError> {
    store.current_profile(id).await
}

/// The newest records (clicks, leads, events, messages, merges) of a customer and of the
/// customers merged into it (the first `max_merged` of them: one query each), before a
/// position: up to `limit`, and whether more follow.
pub async fn timeline(
    store: &Store,
    profile: &Profile,
    before: Option<&TimelinePosition>,
    limit: i32,
    max_merged: usize,
) -> Result<(Vec<(TimelinePosition, Activity)>, bool), StoreError> {
    let mut entries = Vec::new();
    for customer in std::iter::once(&profile.id).chain(profile.merged_from.iter().take(max_merged)) {
        entries.extend(store.timeline(customer, before, limit + 1).await?);
    }
    entries.sort_by(|a, b| b.0.cmp(&a.0));
    let more = entries.len() > limit as usize;
    entries.truncate(limit as usize);
    Ok((entries, more))
}

/// The newest records of one kind from `day` back, a day partition at a time (at most
/// `days` of them), after a position: up to `limit`, and whether more follow (one record
/// past the limit is read, so `false` means the end).
pub async fn feed(
    store: &Store,
    kind: RecordKind,
    mut day: Date,
    mut after: Option<FeedPosition>,
    limit: usize,
    days: usize,
) -> Result<(Vec<Activity>, bool), StoreError> {
    let want = limit + 1;
    let mut records: Vec<Activity> = Vec::new();
    // The last page read said its day holds more (a page cut short by DynamoDB's 1 MB).
    let mut unread = false;
    for _ in 0..days {
        let page = store
            .feed_page(kind, day, after.as_ref(), (want - records.len()) as i32)
            .await?;
        unread = page.more;
        records.extend(page.records);
        if records.len() >= want {
            break;
        }
        after = match (page.more, records.last()) {
            (true, Some(last)) => Some(FeedPosition {
                at: last.at(),
                id: last.id().to_owned(),
            }),
            _ => match day.previous_day() {
                Some(previous) => {
                    day = previous;
                    None
                }
                None => break,
            },
        };
    }
    let more = records.len() > limit || unread;
    records.truncate(limit);
    Ok((records, more))
}

/// Records of one kind that arrived after `since`, oldest first, up to `limit`: the rest of
/// that day (UTC), then, past midnight, `today`'s first.
pub async fn arrived_since(
    store: &Store,
    kind: RecordKind,
    since: &FeedPosition,
    today: Date,
    limit: i32,
) -> Result<Vec<Activity>, StoreError> {
    let (mut records, _) = store.records_after(kind, since.at.date(), Some(since), limit).await?;
    if since.at.date() < today && (records.len() as i32) < limit {
        let (more, _) = store
            .records_after(kind, today, None, limit - records.len() as i32)
            .await?;
        records.extend(more);
    }
    Ok(records)
}

/// Customers found by a search: the owners of `identifiers` (what the term parses as: one
/// batch read), then those whose name starts with `term` (one query of the name index),
/// then their profiles (one batch, and one more for survivors of merges). Merged ids show
/// as their survivor once; erased people never.
pub async fn search(
    store: &Store,
    identifiers: &[Identifier],
    term: &str,
    limit: i32,
) -> Result<Vec<Profile>, StoreError> {
    let mut ids: Vec<CustomerId> = store.owners(identifiers).await?.into_values().collect();
    for id in store.customers_named(&name_key(term), limit).await? {
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    let mut found = store.profiles(&ids).await?;
    let survivors: Vec<CustomerId> = found
        .values()
        .filter_map(|p| p.merged_into.clone())
        .filter(|s| !found.contains_key(s))
        .collect();
    found.extend(store.profiles(&survivors).await?);
    let mut profiles: Vec<Profile> = Vec::new();
    for id in &ids {
        let mut p = found.get(id);
        // A merge chain longer than one hop is followed no further here: its survivor
        // is listed when it is found itself.
        if let Some(into) = p.and_then(|p| p.merged_into.as_ref()) {
            p = found.get(into);
        }
        if let Some(p) = p.filter(|p| !p.erased && p.merged_into.is_none())
            && !profiles.iter().any(|q| q.id == p.id)
        {
            profiles.push(p.clone());
        }
    }
    Ok(profiles)
}

/// The newest customers, up to `limit`: today's first, walking back at most `days` days
/// (a query each).
pub async fn newest(store: &Store, today: Date, days: i64, limit: i32) -> Result<Vec<Profile>, StoreError> {
    let mut profiles: Vec<Profile> = Vec::new();
    for back in 0..days {
        let left = limit - profiles.len() as i32;
        if left <= 0 {
            break;
        }
        profiles.extend(store.customers_newest(today - time::Duration::days(back), left).await?);
    }
    Ok(profiles)
}
