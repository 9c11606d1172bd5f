//! The DynamoDB adapter: the only code that talks to the table. Conditional writes and
//! transactions are this system's correctness, so this module is tested against a real
//! DynamoDB API (the local emulator), never against a stand-in.

mod codec;
mod metrics;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use crm_core::identity::{Identifier, Owners};
use crm_core::plan::Write;
use crm_core::profile::Profile;
use crm_core::values::CustomerId;

use crate::keys::{self, Activity};
pub use codec::item_to_json;
pub use metrics::CallCounter;

pub type Item = HashMap<String, AttributeValue>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// DynamoDB could not be reached or throttled us: the caller should retry later.
    #[error("DynamoDB unavailable: {0}")]
    Unavailable(String),
    /// DynamoDB refused the request as malformed: a bug on our side.
    #[error("DynamoDB rejected the request: {0}")]
    Rejected(String),
    /// An item in the table does not have the shape this code writes.
    #[error("malformed item {key}: {message}")]
    Corrupt { key: String, message: String },
}

#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// Conditions failed: `failed` holds the indexes of the writes whose condition failed
    /// (empty when DynamoDB reported a conflicting concurrent transaction instead).
    #[error("transaction cancelled: conditions failed at {failed:?}")]
    Conflict { failed: Vec<usize> },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Most items DynamoDB accepts in one transaction.
pub const MAX_TRANSACTION_ITEMS: usize = 100;

fn classify<E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static, R: std::fmt::Debug>(
    err: SdkError<E, R>,
) -> StoreError {
    let message = DisplayErrorContext(&err).to_string();
    match err.as_service_error().and_then(|e| e.code()) {
        Some("ValidationException" | "SerializationException") => StoreError::Rejected(message),
        _ => StoreError::Unavailable(message),
    }
}

#[derive(Clone, Debug)]
pub struct Store {
    client: Client,
    table: String,
    calls: CallCounter,
}

impl Store {
    /// Builds the client from the environment (`AWS_ENDPOINT_URL` points it at an emulator),
    /// with timeouts well inside API Gateway's 30 s so a stalled dependency becomes a 503.
    pub async fn connect(table: impl Into<String>) -> Self {
        let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .timeout_config(
                aws_config::timeout::TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(2))
                    .operation_attempt_timeout(Duration::from_secs(3))
                    .operation_timeout(Duration::from_secs(8))
                    .build(),
            )
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
        }
    }

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

    /// Commits `writes` atomically in one `TransactWriteItems`.
    pub async fn commit(&self, writes: &[Write]) -> Result<(), CommitError> {
        if writes.len() > MAX_TRANSACTION_ITEMS {
            return Err(StoreError::Rejected(format!("{} writes exceed one transaction", writes.len())).into());
        }
        let items = writes
            .iter()
            .map(|w| codec::transact_item(&self.table, w))
            .collect::<Result<Vec<_>, _>>()?;
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .client_request_token(uuid::Uuid::new_v4().to_string())
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err) => match err.as_service_error() {
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
                Some(TransactWriteItemsError::TransactionInProgressException(_)) => {
                    Err(CommitError::Conflict { failed: vec![] })
                }
                _ => Err(classify(err).into()),
            },
        }
    }

    /// Strongly consistent batch read of `(PK, SK)` keys; returns items by PK.
    async fn batch_get(&self, keys: Vec<(String, &'static str)>) -> Result<HashMap<String, Item>, StoreError> {
        let mut found = HashMap::new();
        // BatchGetItem rejects duplicate keys.
        let unique: std::collections::BTreeSet<(String, &str)> = keys.into_iter().collect();
        let mut pending: Vec<Item> = unique
            .into_iter()
            .map(|(pk, sk)| {
                Item::from([
                    (keys::PK.into(), AttributeValue::S(pk)),
                    (keys::SK.into(), AttributeValue::S(sk.into())),
                ])
            })
            .collect();
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
            let out = self
                .client
                .batch_get_item()
                .request_items(&self.table, request)
                .send()
                .await
                .map_err(classify)?;
            for item in out.responses().and_then(|r| r.get(&self.table)).into_iter().flatten() {
                if let Some(AttributeValue::S(pk)) = item.get(keys::PK) {
                    found.insert(pk.clone(), item.clone());
                }
            }
            pending = out
                .unprocessed_keys()
                .and_then(|u| u.get(&self.table))
                .map(|k| k.keys().to_vec())
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

    /// Who owns each of `identifiers` (absent ones are simply not in the map).
    pub async fn owners(&self, identifiers: &[Identifier]) -> Result<Owners, StoreError> {
        let by_pk: HashMap<String, &Identifier> = identifiers.iter().map(|i| (keys::identifier_pk(i), i)).collect();
        let items = self
            .batch_get(by_pk.keys().map(|pk| (pk.clone(), keys::IDENT_SK)).collect())
            .await?;
        let mut owners = Owners::new();
        for (pk, item) in items {
            let customer = codec::customer_id(&item, "customerId", &pk)?;
            if let Some(identifier) = by_pk.get(&pk) {
                owners.insert((*identifier).clone(), customer);
            }
        }
        Ok(owners)
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

    pub async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(keys::PK, AttributeValue::S(pk.into()))
            .key(keys::SK, AttributeValue::S(sk.into()))
            .consistent_read(true)
            .send()
            .await
            .map_err(classify)?;
        Ok(out.item)
    }

    pub async fn profile(&self, id: &CustomerId) -> Result<Option<Profile>, StoreError> {
        let pk = keys::customer_pk(id);
        self.get(&pk, keys::PROFILE_SK)
            .await?
            .map(|item| codec::profile_from_item(&item, &pk))
            .transpose()
    }

    /// A profile, following merge tombstones to the survivor.
    pub async fn current_profile(&self, id: &CustomerId) -> Result<Option<Profile>, StoreError> {
        let mut next = id.clone();
        for _ in 0..16 {
            match self.profile(&next).await? {
                Some(Profile {
                    merged_into: Some(into),
                    ..
                }) => next = into,
                other => return Ok(other),
            }
        }
        Err(StoreError::Corrupt {
            key: keys::customer_pk(id),
            message: "merge chain longer than 16".into(),
        })
    }

    pub async fn owner(&self, identifier: &Identifier) -> Result<Option<CustomerId>, StoreError> {
        let pk = keys::identifier_pk(identifier);
        self.get(&pk, keys::IDENT_SK)
            .await?
            .map(|item| codec::customer_id(&item, "customerId", &pk))
            .transpose()
    }

    /// The record a dedupe key points at: `(recordId, customerId)`.
    pub async fn dedupe_hit(&self, key: &str) -> Result<Option<(String, CustomerId)>, StoreError> {
        let pk = keys::dedupe_pk(key);
        let Some(item) = self.get(&pk, keys::DEDUPE_SK).await? else {
            return Ok(None);
        };
        let record = codec::string(&item, "recordId", &pk)?;
        Ok(Some((record, codec::customer_id(&item, "customerId", &pk)?)))
    }

    /// The customer a recorded click belongs to (at the time it was recorded).
    pub async fn click_owner(&self, click_id: &str) -> Result<Option<CustomerId>, StoreError> {
        let pk = keys::activity_pk(Activity::Click, click_id);
        self.get(&pk, Activity::Click.as_str())
            .await?
            .map(|item| codec::customer_id(&item, "customerId", &pk))
            .transpose()
    }

    /// Newest-first timeline items of one customer, strictly older than `before` (a GSI1SK).
    pub async fn timeline(
        &self,
        customer: &CustomerId,
        before: Option<&str>,
        limit: i32,
    ) -> Result<Vec<Item>, StoreError> {
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
                .expression_attribute_values(":before", AttributeValue::S(b.into())),
            None => q.key_condition_expression("GSI1PK = :pk"),
        };
        Ok(q.send().await.map_err(classify)?.items.unwrap_or_default())
    }

    /// One page of a day's recent-activity partition, newest first.
    pub async fn feed_page(
        &self,
        kind: Activity,
        day: &str,
        start: Option<Item>,
        limit: i32,
    ) -> Result<(Vec<Item>, Option<Item>), StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(keys::GSI2)
            .key_condition_expression("GSI2PK = :pk")
            .expression_attribute_values(":pk", AttributeValue::S(keys::feed_pk(kind, day)))
            .scan_index_forward(false)
            .limit(limit)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(classify)?;
        Ok((out.items.unwrap_or_default(), out.last_evaluated_key))
    }

    /// A real read against the table: proves credentials, network and table.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.get(keys::HEALTH_PK, keys::HEALTH_PK).await.map(|_| ())
    }
}
