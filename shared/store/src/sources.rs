//! Ingest sources and their keys. A source item holds the rules; each key is its own item,
//! found by the SHA-256 of the key a request presents, holding a copy of the source's rules
//! (so checking a request is one read) and the key's usage counters. The source and its key
//! items are written together, in one transaction.

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use crm_core::source::{KeyInfo, Source};
use time::OffsetDateTime;

use crate::codec::{self, Expr, n, s, ts};
use crate::keys::{self, entity};
use crate::{Item, Store, StoreError, applied};

/// A key as stored: its hash (the item's key, never shown) and what lists show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredKey {
    pub hash: String,
    pub info: KeyInfo,
}

/// A source with all its keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceEntry {
    pub source: Source,
    pub keys: Vec<StoredKey>,
}

/// What a request's key resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsedKey {
    pub source: Source,
    pub revoked: bool,
}

const SOURCE_ATTR: &str = "source";

fn source_item(source: &Source) -> Result<Item, StoreError> {
    let mut item = codec::document_item(
        source,
        keys::source_pk(&source.source_id),
        keys::SOURCE_SK,
        entity::SOURCE,
    )?;
    item.insert(keys::GSI2PK.into(), s(keys::SOURCE_LIST));
    item.insert(keys::GSI2SK.into(), s(keys::source_list_sk(&source.source_id)));
    Ok(item)
}

fn key_item(source: &Source, key: &StoredKey) -> Result<Item, StoreError> {
    let mut item = codec::document_item(
        &key.info,
        keys::source_key_pk(&key.hash),
        keys::SOURCE_KEY_SK,
        entity::SOURCE_KEY,
    )?;
    item.insert("sourceId".into(), s(&source.source_id));
    item.insert(SOURCE_ATTR.into(), codec::doc(source)?);
    item.insert("requests".into(), n(0));
    item.insert(keys::GSI2PK.into(), s(keys::SOURCE_LIST));
    item.insert(
        keys::GSI2SK.into(),
        s(keys::source_key_list_sk(&source.source_id, &key.info.last4)),
    );
    Ok(item)
}

fn key_from_item(item: &Item, at: &str) -> Result<StoredKey, StoreError> {
    let pk = codec::string(item, keys::PK, at)?;
    let hash = pk
        .strip_prefix(&keys::source_key_pk(""))
        .ok_or_else(|| codec::corrupt(at, "not a source key"))?
        .to_owned();
    let mut info: KeyInfo = codec::document_from_item(item, at)?;
    // The counters live beside the document: requests ADD them without reading it.
    info.requests = match item.get("requests") {
        Some(AttributeValue::N(v)) => v.parse().map_err(|_| codec::corrupt(at, "requests"))?,
        _ => 0,
    };
    info.last_used_at = codec::opt_string(item, "lastUsedAt")
        .map(|t| crm_core::values::parse_ts(&t).map_err(|e| codec::corrupt(at, e.message)))
        .transpose()?;
    info.revoked_at = info.revoked_at.or(codec::opt_string(item, "revokedAt")
        .map(|t| crm_core::values::parse_ts(&t).map_err(|e| codec::corrupt(at, e.message)))
        .transpose()?);
    Ok(StoredKey { hash, info })
}

fn entries(items: Vec<Item>) -> Result<Vec<SourceEntry>, StoreError> {
    let mut out: Vec<SourceEntry> = Vec::new();
    let mut keys: Vec<(String, StoredKey)> = Vec::new();
    for item in items {
        let at = codec::string(&item, keys::PK, "source list")?;
        match codec::opt_string(&item, keys::ENTITY).as_deref() {
            Some(entity::SOURCE) => out.push(SourceEntry {
                source: codec::document_from_item(&item, &at)?,
                keys: vec![],
            }),
            Some(entity::SOURCE_KEY) => keys.push((codec::string(&item, "sourceId", &at)?, key_from_item(&item, &at)?)),
            _ => return Err(codec::corrupt(&at, "unexpected item in the source list")),
        }
    }
    for (owner, key) in keys {
        if let Some(entry) = out.iter_mut().find(|e| e.source.source_id == owner) {
            entry.keys.push(key);
        }
    }
    for entry in &mut out {
        entry.keys.sort_by_key(|k| k.info.created_at);
    }
    Ok(out)
}

impl Store {
    /// A new source and its first key, together; `false` if the id is taken.
    pub async fn create_source(&self, source: &Source, key: &StoredKey) -> Result<bool, StoreError> {
        let items = vec![
            codec::put(
                &self.table,
                source_item(source)?,
                "attribute_not_exists(PK)",
                Expr::default(),
            )?,
            codec::put(
                &self.table,
                key_item(source, key)?,
                "attribute_not_exists(PK)",
                Expr::default(),
            )?,
        ];
        self.transact_if(items).await
    }

    /// Sources with their keys from the list (GSI2 `SOURCES`), all or those under `prefix`.
    async fn source_list(&self, prefix: Option<String>) -> Result<Vec<SourceEntry>, StoreError> {
        let condition = match prefix {
            Some(_) => "GSI2PK = :pk AND begins_with(GSI2SK, :id)",
            None => "GSI2PK = :pk",
        };
        let q = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(keys::GSI2)
            .key_condition_expression(condition)
            .expression_attribute_values(":pk", s(keys::SOURCE_LIST));
        let q = match prefix {
            Some(p) => q.expression_attribute_values(":id", s(p)),
            None => q,
        };
        entries(self.all_pages(q).await?)
    }

    /// Every source with its keys, in id order (sources are few: one query).
    pub async fn sources(&self) -> Result<Vec<SourceEntry>, StoreError> {
        self.source_list(None).await
    }

    pub async fn source(&self, id: &str) -> Result<Option<SourceEntry>, StoreError> {
        Ok(self
            .source_list(Some(keys::source_list_prefix(id)))
            .await?
            .into_iter()
            .next())
    }

    /// Adds a key to a source that exists and is not revoked; `false` otherwise.
    pub async fn add_source_key(&self, source: &Source, key: &StoredKey) -> Result<bool, StoreError> {
        let check = aws_sdk_dynamodb::types::ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(codec::key(keys::source_pk(&source.source_id), keys::SOURCE_SK)))
            .condition_expression("attribute_exists(PK) AND attribute_not_exists(document.revokedAt)")
            .build()
            .map_err(|e| StoreError::Rejected(e.to_string()))?;
        let items = vec![
            aws_sdk_dynamodb::types::TransactWriteItem::builder()
                .condition_check(check)
                .build(),
            codec::put(
                &self.table,
                key_item(source, key)?,
                "attribute_not_exists(PK)",
                Expr::default(),
            )?,
        ];
        self.transact_if(items).await
    }

    /// Revokes a source and every key of it, in one transaction.
    pub async fn revoke_source(&self, entry: &SourceEntry, at: OffsetDateTime) -> Result<(), StoreError> {
        let mut revoked = entry.source.clone();
        revoked.revoked_at = Some(at);
        let mut items = vec![codec::put(
            &self.table,
            source_item(&revoked)?,
            "attribute_exists(PK)",
            Expr::default(),
        )?];
        for key in entry.keys.iter().filter(|k| k.info.revoked_at.is_none()) {
            items.push(revoke_key_item(&self.table, &key.hash, at)?);
        }
        for chunk in items.chunks(crate::MAX_TRANSACTION_ITEMS) {
            self.client
                .transact_write_items()
                .set_transact_items(Some(chunk.to_vec()))
                .send()
                .await
                .map_err(crate::classify)?;
        }
        Ok(())
    }

    /// Revokes one key; `false` when there is no such key.
    pub async fn revoke_source_key(&self, hash: &str, at: OffsetDateTime) -> Result<bool, StoreError> {
        self.transact_if(vec![revoke_key_item(&self.table, hash, at)?]).await
    }

    /// The source of the key whose hash is `hash`, recording `uses` requests since this
    /// instance last asked (one `UpdateItem`: the count and the key's read are one round
    /// trip), and whether the key or its source is revoked (one consistent `GetItem`).
    /// `None` for a key that does not exist.
    pub async fn use_source_key(
        &self,
        hash: &str,
        uses: u64,
        at: OffsetDateTime,
    ) -> Result<Option<UsedKey>, StoreError> {
        let mut e = Expr::default();
        let expr = format!(
            "SET {last} = {at} ADD requests {uses}",
            last = e.name("lastUsedAt"),
            at = e.value(ts(at)),
            uses = e.value(n(uses)),
        );
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(codec::key(keys::source_key_pk(hash), keys::SOURCE_KEY_SK)))
            .update_expression(expr)
            .condition_expression("attribute_exists(PK)")
            .set_expression_attribute_names(Some(e.names))
            .set_expression_attribute_values(Some(e.values))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        let Some(out) = applied(result)? else { return Ok(None) };
        let item = out.attributes.unwrap_or_default();
        let at_key = "source key";
        let key = key_from_item(&item, at_key)?;
        let source: Source = serde_dynamo::from_attribute_value(
            item.get(SOURCE_ATTR)
                .cloned()
                .ok_or_else(|| codec::corrupt(at_key, "missing source"))?,
        )
        .map_err(|e| codec::corrupt(at_key, e.to_string()))?;
        if key.info.revoked_at.is_some() {
            return Ok(Some(UsedKey { source, revoked: true }));
        }
        // The key item's copy of the source is as of the key's creation: whether the source
        // was revoked since is read from the source itself (consistently: a key added while
        // its source was being revoked may have escaped the revocation's list).
        let current: Option<Source> = self
            .get_as(
                keys::source_pk(&source.source_id),
                keys::SOURCE_SK,
                codec::document_from_item,
            )
            .await?;
        let revoked = current.as_ref().is_none_or(|s| s.revoked_at.is_some());
        Ok(Some(UsedKey { source, revoked }))
    }

    /// Claims a signature's one use outside an ingest transaction (the SMS replies, and a
    /// signed repeat); `false` when it was used before.
    pub async fn claim_signature(&self, claim: &crm_core::plan::SignatureClaim) -> Result<bool, StoreError> {
        let item = codec::transact_item(
            &self.table,
            &crm_core::plan::Write::ClaimSignature(claim.clone()),
            false,
            &self.retention,
        )?;
        self.transact_if(vec![item]).await
    }
}

fn revoke_key_item(
    table: &str,
    hash: &str,
    at: OffsetDateTime,
) -> Result<aws_sdk_dynamodb::types::TransactWriteItem, StoreError> {
    let mut e = Expr::default();
    let expr = format!("SET revokedAt = {}", e.value(ts(at)));
    codec::update(
        table,
        codec::key(keys::source_key_pk(hash), keys::SOURCE_KEY_SK),
        expr,
        Some("attribute_exists(PK) AND attribute_not_exists(revokedAt)"),
        e,
    )
}
