//! The DynamoDB adapter: the only code that talks to the table. Conditional writes and
//! transactions are this system's correctness, so this crate is tested against a real
//! DynamoDB API (the local emulator), never against a stand-in. Callers get domain values
//! and typed records back, never raw items.

mod advance;
mod codec;
mod compliance;
mod contacts;
mod erase;
mod imports;
pub mod keys;
mod limits;
mod messages;
mod metrics;
mod names;
mod partners;
mod sources;
mod stages;
mod stats;
mod users;
mod void;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, TransactWriteItem};
use crm_core::identity::{Identifier, Owners};
use crm_core::plan::{DedupeKey, Write};
use crm_core::profile::{Follow, Profile, follow_merges};
use crm_core::records::{Activity, RecordKind};
use crm_core::retention::Retention;
use crm_core::values::{ClickId, CustomerId, redact_personal};
use time::{Date, OffsetDateTime};

pub use advance::{AdvanceDue, event_from_image};
pub use erase::ErasureRecord;
pub use messages::{Due, DueCursor, MessagePosition, Settle};
pub use metrics::CallCounter;
pub use partners::PutMode;
pub use sources::{SourceEntry, StoredKey, UsedKey};

type Item = HashMap<String, AttributeValue>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// DynamoDB could not be reached, timed out or throttled us: the caller should retry.
    /// Whether a write landed is unknown.
    #[error("DynamoDB unavailable: {0}")]
    Unavailable(String),
    /// DynamoDB refused the request as malformed: a bug on our side.
    #[error("DynamoDB rejected the request: {0}")]
    Rejected(String),
    /// An item in the table does not have the shape this code writes. `key` is log-safe.
    #[error("malformed item {key}: {message}")]
    Corrupt { key: String, message: String },
}

#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// Conditions failed: `failed` holds the indexes of the writes whose condition failed
    /// (empty when DynamoDB reported a conflicting concurrent transaction instead). Nothing
    /// was written.
    #[error("transaction cancelled: conditions failed at {failed:?}")]
    Conflict { failed: Vec<usize> },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Most items DynamoDB accepts in one transaction.
pub const MAX_TRANSACTION_ITEMS: usize = 100;

/// Message texts can echo keys and values: they are redacted before they go anywhere.
fn classify<E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static, R: std::fmt::Debug>(
    err: SdkError<E, R>,
) -> StoreError {
    let message = redact_personal(&DisplayErrorContext(&err).to_string());
    match err.as_service_error().and_then(|e| e.code()) {
        Some("ValidationException" | "SerializationException") => StoreError::Rejected(message),
        _ => StoreError::Unavailable(message),
    }
}

/// `Ok(Some(output))` when a conditional request applied, `Ok(None)` when its condition (or,
/// for a transaction, one of its conditions) failed.
fn applied<T, E, R>(result: Result<T, SdkError<E, R>>) -> Result<Option<T>, StoreError>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    match result {
        Ok(out) => Ok(Some(out)),
        Err(e)
            if matches!(
                e.as_service_error().and_then(|s| s.code()),
                Some("ConditionalCheckFailedException" | "TransactionCanceledException")
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(classify(e)),
    }
}

/// A position in a customer's timeline (its GSI1 sort key): the next page starts below it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct TimelinePosition(pub String);

/// A position in a recent-activity list: the record a page ended with (also the resume
/// point of exports and recounts, as JSON).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FeedPosition {
    #[serde(with = "crm_core::values::ts")]
    pub at: OffsetDateTime,
    pub id: String,
}

/// One page of one day of a recent-activity list, newest first.
#[derive(Debug, Clone)]
pub struct FeedPage {
    pub records: Vec<Activity>,
    /// The day holds more records after these.
    pub more: bool,
}

#[derive(Clone, Debug)]
pub struct Store {
    client: Client,
    table: String,
    calls: CallCounter,
    /// Identifiers and dedupe keys in the test namespace (`Store::for_test_traffic`).
    test: bool,
    /// How long records, messages and send logs are kept (their `removeAt`).
    retention: Retention,
}

impl Store {
    /// Builds the client from the environment (`AWS_ENDPOINT_URL` points it at an emulator).
    /// Timeouts keep a stalled dependency well inside API Gateway's 30 s and the functions'
    /// 10 s; DynamoDB answers are small, so stalled-stream protection (a per-body timer)
    /// adds CPU for nothing the attempt timeout does not already cover.
    pub async fn connect(table: impl Into<String>) -> Self {
        let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .timeout_config(
                aws_config::timeout::TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(1))
                    .operation_attempt_timeout(Duration::from_secs(2))
                    .operation_timeout(Duration::from_secs(3))
                    .build(),
            )
            .stalled_stream_protection(aws_config::stalled_stream_protection::StalledStreamProtectionConfig::disabled())
            .load()
            .await;
        Self::from_sdk_config(&shared, table)
    }

    pub fn from_sdk_config(shared: &aws_config::SdkConfig, table: impl Into<String>) -> Self {
        let calls = CallCounter::default();
        let config = aws_sdk_dynamodb::config::Builder::from(shared)
            .interceptor(calls.clone())
            .build();
        Self {
            client: Client::from_conf(config),
            table: table.into(),
            calls,
            test: false,
            retention: Retention::default(),
        }
    }

    /// The same table through a client with `interceptor` added (the bench meters the
    /// SDK's own CPU with one).
    pub fn with_interceptor(
        self,
        interceptor: impl aws_smithy_runtime_api::client::interceptors::Intercept + 'static,
    ) -> Self {
        let config = self.client.config().to_builder().interceptor(interceptor).build();
        Self {
            client: Client::from_conf(config),
            ..self
        }
    }

    /// This store keeping records as long as `retention` says.
    pub fn with_retention(self, retention: Retention) -> Self {
        Self { retention, ..self }
    }

    /// The same table, with identifiers and dedupe keys in the test namespace: what a test
    /// request's ingest resolves and claims never meets live data.
    pub fn for_test_traffic(&self) -> Self {
        Self {
            test: true,
            ..self.clone()
        }
    }

    /// The SDK client, for bootstrap code (creating the local table) and benchmarks.
    pub fn client(&self) -> &Client {
        &self.client
    }
    pub fn table(&self) -> &str {
        &self.table
    }
    /// DynamoDB requests sent through this store, per operation.
    pub fn calls(&self) -> &CallCounter {
        &self.calls
    }

    /// Commits `writes` atomically in one `TransactWriteItems`. When DynamoDB cannot be
    /// reached or times out, the same transaction is sent again with the same
    /// `ClientRequestToken` until `deadline`: DynamoDB applies a token once, so a retry of an
    /// attempt that did land succeeds without writing twice. `Unavailable` after the deadline
    /// means the outcome is unknown (the caller's retry is safe: every ingest is guarded).
    pub async fn commit(&self, writes: &[Write], deadline: Instant) -> Result<(), CommitError> {
        if writes.len() > MAX_TRANSACTION_ITEMS {
            return Err(StoreError::Rejected(format!("{} writes exceed one transaction", writes.len())).into());
        }
        let items = writes
            .iter()
            .map(|w| codec::transact_item(&self.table, w, self.test, &self.retention))
            .collect::<Result<Vec<_>, _>>()?;
        let token = client_request_token();
        let mut pause = Duration::from_millis(50);
        loop {
            match self.transact(items.clone(), &token).await {
                Err(CommitError::Store(StoreError::Unavailable(message))) if Instant::now() + pause < deadline => {
                    tracing::warn!(error = %message, "transaction outcome unknown; sending it again with its token");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(1));
                }
                result => return result,
            }
        }
    }

    async fn transact(&self, items: Vec<TransactWriteItem>, token: &str) -> Result<(), CommitError> {
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .client_request_token(token)
            .send()
            .await;
        let Err(err) = result else { return Ok(()) };
        match err.as_service_error() {
            Some(TransactWriteItemsError::TransactionCanceledException(c)) => {
                let failed = c
                    .cancellation_reasons()
                    .iter()
                    .enumerate()
                    .filter(|(_, r)| r.code() == Some("ConditionalCheckFailed"))
                    .map(|(i, _)| i)
                    .collect();
                Err(CommitError::Conflict { failed })
            }
            // The same token is still being applied: its outcome is not known yet.
            Some(TransactWriteItemsError::TransactionInProgressException(_)) => {
                Err(StoreError::Unavailable("transaction with this token still in progress".into()).into())
            }
            _ => Err(classify(err).into()),
        }
    }

    /// Strongly consistent batch read of `(PK, SK)` keys; returns items by PK.
    async fn batch_get(&self, keys: BTreeSet<(String, &'static str)>) -> Result<HashMap<String, Item>, StoreError> {
        let keys = keys.into_iter().map(|(pk, sk)| codec::key(pk, sk)).collect();
        Ok(self
            .batch_get_items(keys)
            .await?
            .into_iter()
            .filter_map(|item| match item.get(keys::PK) {
                Some(AttributeValue::S(pk)) => Some((pk.clone(), item)),
                _ => None,
            })
            .collect())
    }

    /// Strongly consistent batch read of keys (at most 100): the items that exist.
    pub(crate) async fn batch_get_items(&self, keys: Vec<Item>) -> Result<Vec<Item>, StoreError> {
        let mut found = Vec::new();
        let mut pending = keys;
        for attempt in 0..6u32 {
            if pending.is_empty() {
                break;
            }
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(20 << attempt)).await;
            }
            let request = KeysAndAttributes::builder()
                .set_keys(Some(std::mem::take(&mut pending)))
                .consistent_read(true)
                .build()
                .map_err(|e| StoreError::Rejected(e.to_string()))?;
            let mut out = self
                .client
                .batch_get_item()
                .request_items(&self.table, request)
                .send()
                .await
                .map_err(classify)?;
            found.extend(
                out.responses
                    .as_mut()
                    .and_then(|r| r.remove(&self.table))
                    .unwrap_or_default(),
            );
            pending = out
                .unprocessed_keys
                .and_then(|mut u| u.remove(&self.table))
                .map(|k| k.keys)
                .unwrap_or_default();
        }
        if pending.is_empty() {
            Ok(found)
        } else {
            Err(StoreError::Unavailable(
                "BatchGetItem left keys unprocessed after retries".into(),
            ))
        }
    }

    /// One conditional `UpdateItem`: the item after the update, or `None` when the
    /// condition failed (someone else moved it first).
    async fn conditional_update(
        &self,
        key: Item,
        update: String,
        condition: impl Into<Option<String>>,
        expr: codec::Expr,
    ) -> Result<Option<Item>, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .update_expression(update)
            .set_condition_expression(condition.into())
            .set_expression_attribute_names(Some(expr.names))
            .set_expression_attribute_values(Some(expr.values))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
            .send()
            .await;
        Ok(applied(result)?.map(|out| out.attributes.unwrap_or_default()))
    }

    /// One page of the due index (GSI3) partition `pk`: entries due before `bound`, oldest
    /// first.
    async fn due_index_page(
        &self,
        pk: String,
        bound: OffsetDateTime,
        limit: i32,
        start: Option<DueCursor>,
    ) -> Result<(Vec<Item>, Option<DueCursor>), StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(keys::GSI3)
            .key_condition_expression("GSI3PK = :pk AND GSI3SK < :bound")
            .expression_attribute_values(":pk", AttributeValue::S(pk))
            .expression_attribute_values(":bound", AttributeValue::S(keys::due_bound(bound)))
            .limit(limit)
            .set_exclusive_start_key(start.map(|c| c.0))
            .send()
            .await
            .map_err(classify)?;
        Ok((out.items.unwrap_or_default(), out.last_evaluated_key.map(DueCursor)))
    }

    async fn get(&self, pk: String, sk: &str) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(codec::key(pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(classify)?;
        Ok(out.item)
    }

    /// The items of `identifiers` that exist (in this store's namespace), with their
    /// identifier.
    async fn identifier_items(
        &self,
        identifiers: &[Identifier],
    ) -> Result<Vec<(Identifier, String, Item)>, StoreError> {
        let by_pk: HashMap<String, &Identifier> = identifiers
            .iter()
            .map(|i| (keys::identifier_pk_in(i, self.test), i))
            .collect();
        let items = self
            .batch_get(by_pk.keys().map(|pk| (pk.clone(), keys::IDENT_SK)).collect())
            .await?;
        Ok(items
            .into_iter()
            .filter_map(|(pk, item)| Some(((*by_pk.get(&pk)?).clone(), pk, item)))
            .collect())
    }

    /// Who owns each of `identifiers` (absent ones are simply not in the map).
    pub async fn owners(&self, identifiers: &[Identifier]) -> Result<Owners, StoreError> {
        let mut owners = Owners::new();
        for (identifier, pk, item) in self.identifier_items(identifiers).await? {
            owners.insert(identifier, codec::owner(&item, &pk)?);
        }
        Ok(owners)
    }

    /// When each of `identifiers` was first claimed (absent ones are left out).
    pub async fn identifier_ages(
        &self,
        identifiers: &[Identifier],
    ) -> Result<BTreeMap<Identifier, OffsetDateTime>, StoreError> {
        let mut ages = BTreeMap::new();
        for (identifier, _, item) in self.identifier_items(identifiers).await? {
            if let Some(at) = codec::opt_string(&item, "createdAt")
                && let Ok(at) = crm_core::values::parse_ts(&at)
            {
                ages.insert(identifier, at);
            }
        }
        Ok(ages)
    }

    pub async fn profiles(&self, ids: &[CustomerId]) -> Result<BTreeMap<CustomerId, Profile>, StoreError> {
        if ids.is_empty() {
            return Ok(BTreeMap::new());
        }
        let items = self
            .batch_get(ids.iter().map(|id| (keys::customer_pk(id), keys::PROFILE_SK)).collect())
            .await?;
        items
            .into_iter()
            .map(|(pk, item)| codec::profile_from_item(&item, &pk).map(|p| (p.id.clone(), p)))
            .collect()
    }

    /// One item by its key, decoded; `decode` gets the key for its error messages.
    async fn get_as<T>(
        &self,
        pk: String,
        sk: &str,
        decode: impl FnOnce(&Item, &str) -> Result<T, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        self.get(pk.clone(), sk)
            .await?
            .map(|item| decode(&item, &pk))
            .transpose()
    }

    pub async fn profile(&self, id: &CustomerId) -> Result<Option<Profile>, StoreError> {
        self.get_as(keys::customer_pk(id), keys::PROFILE_SK, codec::profile_from_item)
            .await
    }

    /// A profile, following merge tombstones to the survivor (one `GetItem` per hop).
    pub async fn current_profile(&self, id: &CustomerId) -> Result<Option<Profile>, StoreError> {
        let mut profiles = BTreeMap::new();
        loop {
            match follow_merges(id, &profiles) {
                // An erased customer is nobody any more.
                Follow::Current(current) => return Ok(profiles.remove(&current).filter(|p| !p.erased)),
                Follow::Load(next) => match self.profile(&next).await? {
                    Some(p) => {
                        profiles.insert(next, p);
                    }
                    None => return Ok(None),
                },
                Follow::TooLong => {
                    return Err(StoreError::Corrupt {
                        key: keys::customer_pk(id),
                        message: "merge chain too long".into(),
                    });
                }
            }
        }
    }

    pub async fn owner(&self, identifier: &Identifier) -> Result<Option<CustomerId>, StoreError> {
        self.get_as(
            keys::identifier_pk_in(identifier, self.test),
            keys::IDENT_SK,
            codec::owner,
        )
        .await
    }

    /// The record a held dedupe key points at: `(recordId, customerId)`.
    pub async fn dedupe_hit(&self, key: &DedupeKey) -> Result<Option<(String, CustomerId)>, StoreError> {
        self.get_as(
            keys::dedupe_pk_in(key, self.test),
            keys::DEDUPE_SK,
            codec::dedupe_from_item,
        )
        .await
    }

    /// The customer a recorded click belongs to (at the time it was recorded).
    pub async fn click_owner(&self, click_id: &ClickId) -> Result<Option<CustomerId>, StoreError> {
        let pk = keys::record_pk(RecordKind::Click, click_id.as_str());
        self.get_as(pk, RecordKind::Click.as_str(), codec::owner).await
    }

    /// Up to `limit` timeline records of one customer, newest first, strictly below `before`.
    pub async fn timeline(
        &self,
        customer: &CustomerId,
        before: Option<&TimelinePosition>,
        limit: i32,
    ) -> Result<Vec<(TimelinePosition, Activity)>, StoreError> {
        let mut q = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(keys::GSI1)
            .expression_attribute_values(":pk", AttributeValue::S(keys::customer_pk(customer)))
            .scan_index_forward(false)
            .limit(limit);
        q = match before {
            Some(b) => q
                .key_condition_expression("GSI1PK = :pk AND GSI1SK < :before")
                .expression_attribute_values(":before", AttributeValue::S(b.0.clone())),
            None => q.key_condition_expression("GSI1PK = :pk"),
        };
        let items = q.send().await.map_err(classify)?.items.unwrap_or_default();
        items.into_iter().map(codec::timeline_entry).collect()
    }

    /// Up to `limit` records of one kind from one day, newest first, after `after`.
    pub async fn feed_page(
        &self,
        kind: RecordKind,
        day: Date,
        after: Option<&FeedPosition>,
        limit: i32,
    ) -> Result<FeedPage, StoreError> {
        let start = after.map(|p| codec::feed_start_key(kind, p));
        let (items, more) = self.newest_first_page(keys::feed_pk(kind, day), limit, start).await?;
        let records = items
            .into_iter()
            .map(|item| codec::timeline_entry(item).map(|(_, record)| record))
            .collect::<Result<_, _>>()?;
        Ok(FeedPage { records, more })
    }

    /// Up to `limit` items of the GSI2 list `pk`, newest first, after `start`; `true` when
    /// more follow. Recent activity, messages and suppression entries are such lists.
    async fn newest_first_page(
        &self,
        pk: String,
        limit: i32,
        start: Option<Item>,
    ) -> Result<(Vec<Item>, bool), StoreError> {
        self.list_page(pk, limit, start, false).await
    }

    async fn list_page(
        &self,
        pk: String,
        limit: i32,
        start: Option<Item>,
        oldest_first: bool,
    ) -> Result<(Vec<Item>, bool), StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(keys::GSI2)
            .key_condition_expression("GSI2PK = :pk")
            .expression_attribute_values(":pk", AttributeValue::S(pk))
            .scan_index_forward(oldest_first)
            .limit(limit)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(classify)?;
        Ok((out.items.unwrap_or_default(), out.last_evaluated_key.is_some()))
    }

    /// Up to `limit` records of one kind (clicks, leads, events, messages) from one UTC day,
    /// oldest first, after `after`: the exports' walk.
    pub async fn records_after(
        &self,
        kind: RecordKind,
        day: Date,
        after: Option<&FeedPosition>,
        limit: i32,
    ) -> Result<(Vec<Activity>, bool), StoreError> {
        let start = after.map(|p| codec::feed_start_key(kind, p));
        let (items, more) = self.list_page(keys::feed_pk(kind, day), limit, start, true).await?;
        let records = items
            .into_iter()
            .map(|item| codec::timeline_entry(item).map(|(_, record)| record))
            .collect::<Result<_, _>>()?;
        Ok((records, more))
    }

    /// Up to `limit` customers created on one UTC day, oldest first, after `after`.
    pub async fn customers_after(
        &self,
        day: Date,
        after: Option<&FeedPosition>,
        limit: i32,
    ) -> Result<(Vec<Profile>, bool), StoreError> {
        let start = after
            .map(|p| -> Result<Item, StoreError> {
                let id = CustomerId::parse(&p.id).map_err(|e| StoreError::Rejected(e.message))?;
                let mut start = codec::key(keys::customer_pk(&id), keys::PROFILE_SK);
                start.insert(keys::GSI2PK.into(), AttributeValue::S(keys::customer_feed_pk(day)));
                start.insert(keys::GSI2SK.into(), AttributeValue::S(keys::feed_sk(p.at, &p.id)));
                Ok(start)
            })
            .transpose()?;
        let (items, more) = self.list_page(keys::customer_feed_pk(day), limit, start, true).await?;
        let profiles = items
            .into_iter()
            .map(|item| {
                let key = codec::opt_string(&item, keys::PK).unwrap_or_default();
                codec::profile_from_item(&item, &key)
            })
            .collect::<Result<_, _>>()?;
        Ok((profiles, more))
    }

    /// Up to `limit` customers created on one UTC day, newest first.
    pub async fn customers_newest(&self, day: Date, limit: i32) -> Result<Vec<Profile>, StoreError> {
        let (items, _) = self.newest_first_page(keys::customer_feed_pk(day), limit, None).await?;
        items
            .into_iter()
            .map(|item| {
                let key = codec::opt_string(&item, keys::PK).unwrap_or_default();
                codec::profile_from_item(&item, &key)
            })
            .collect()
    }

    /// Every item a query finds, page after page (for lists known to be small, or bounded
    /// by their key: a day's counters, a customer's clicks in a window).
    async fn all_pages(
        &self,
        query: aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder,
    ) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let page = query
                .clone()
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(classify)?;
            items.extend(page.items.unwrap_or_default());
            start = page.last_evaluated_key;
            if start.is_none() {
                return Ok(items);
            }
        }
    }

    /// Applies `items` in one transaction; `false` when a condition failed.
    async fn transact_if(&self, items: Vec<TransactWriteItem>) -> Result<bool, StoreError> {
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        Ok(applied(result)?.is_some())
    }

    /// Puts an item unless one has its key; `false` when one had.
    pub(crate) async fn put_new(&self, item: Item) -> Result<bool, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(PK)")
            .send()
            .await;
        Ok(applied(result)?.is_some())
    }

    /// Puts an item unconditionally.
    async fn put(&self, item: Item) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }

    /// A real read against the table: proves credentials, network and table.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.get(keys::HEALTH_PK.into(), keys::HEALTH_PK).await.map(|_| ())
    }
}

/// The click, lead or event in a stream record's image (`None` for any other item).
pub fn record_from_image(image: serde_dynamo::Item) -> Result<Option<Activity>, StoreError> {
    let item: Item = image.into();
    let counted = [RecordKind::Click, RecordKind::Lead, RecordKind::Event];
    let is_record =
        matches!(item.get(keys::ENTITY), Some(AttributeValue::S(e)) if counted.iter().any(|k| k.as_str() == e));
    if !is_record {
        return Ok(None);
    }
    codec::timeline_entry(item).map(|(_, record)| Some(record))
}

/// The customer profile in a stream record's image (`None` for any other item). Stream
/// images arrive as `serde_dynamo` items (the Lambda event's type).
pub fn profile_from_image(image: serde_dynamo::Item) -> Result<Option<Profile>, StoreError> {
    let item: Item = image.into();
    let is_profile = matches!(item.get(keys::ENTITY), Some(AttributeValue::S(e)) if e == keys::entity::CUSTOMER);
    if !is_profile {
        return Ok(None);
    }
    let key = match item.get(keys::PK) {
        Some(AttributeValue::S(pk)) => pk.clone(),
        _ => String::new(),
    };
    codec::profile_from_item(&item, &key).map(Some)
}

/// A fresh idempotency token for one transaction (DynamoDB allows 36 characters).
fn client_request_token() -> String {
    uuid::Uuid::new_v4().to_string()
}
