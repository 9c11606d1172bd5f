//! The customer search by name: an item per name key in the customer's own partition
//! (`CUSTOMER#<id>` / `NAME#<key>`, so erasure deletes it with the rest of the person),
//! listed in GSI2 under the key's first two characters, so a typed prefix is one query.
//! Written by the journey function from the table's stream when a profile's name changes:
//! the ingest transaction never waits for it.

use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Put, TransactWriteItem};
use crm_core::values::CustomerId;

use crate::codec::{self, s};
use crate::keys::{self, entity};
use crate::{Item, Store, StoreError, classify};

impl Store {
    /// Lists `customer` under each of `names` (idempotent puts), only while its profile
    /// exists and is not erased: a stream record read late never brings an erased person's
    /// name back. `false` when the profile said no.
    pub async fn index_names(&self, customer: &CustomerId, names: &[String]) -> Result<bool, StoreError> {
        if names.is_empty() {
            return Ok(true);
        }
        let check = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(codec::key(keys::customer_pk(customer), keys::PROFILE_SK)))
            .condition_expression("attribute_exists(PK) AND attribute_not_exists(erasedAt)")
            .build()
            .map_err(|e| StoreError::Rejected(e.to_string()))?;
        let mut items = vec![TransactWriteItem::builder().condition_check(check).build()];
        for name in names {
            let mut item: Item = codec::key(keys::customer_pk(customer), &keys::name_sk(name));
            item.insert(keys::ENTITY.into(), s(entity::NAME));
            item.insert("customerId".into(), s(customer.as_str()));
            item.insert(keys::GSI2PK.into(), s(keys::names_pk(name)));
            item.insert(keys::GSI2SK.into(), s(keys::names_sk(name, customer)));
            let put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .build()
                .map_err(|e| StoreError::Rejected(e.to_string()))?;
            items.push(TransactWriteItem::builder().put(put).build());
        }
        // A conflict with the profile's own next write is retried; a failed check is no.
        self.counting_transaction(items).await
    }

    /// Removes every name entry of `customer` (erasure, once its profile is a tombstone:
    /// an entry written meanwhile from a late stream record goes too).
    pub async fn delete_names(&self, customer: &CustomerId) -> Result<(), StoreError> {
        let pk = keys::customer_pk(customer);
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("PK = :pk AND begins_with(SK, :name)")
            .expression_attribute_values(":pk", s(&pk))
            .expression_attribute_values(":name", s(keys::name_sk("")))
            .consistent_read(true)
            .send()
            .await
            .map_err(classify)?;
        for item in out.items.unwrap_or_default() {
            self.delete_key(codec::item_key(&item)).await?;
        }
        Ok(())
    }

    /// Customers with a name starting with `prefix` (a name key, two characters at least),
    /// in name order, at most `limit` (one query).
    pub async fn customers_named(&self, prefix: &str, limit: i32) -> Result<Vec<CustomerId>, StoreError> {
        if prefix.chars().count() < 2 {
            return Ok(Vec::new());
        }
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(keys::GSI2)
            .key_condition_expression("GSI2PK = :pk AND begins_with(GSI2SK, :prefix)")
            .expression_attribute_values(":pk", s(keys::names_pk(prefix)))
            .expression_attribute_values(":prefix", s(prefix))
            .limit(limit)
            .send()
            .await
            .map_err(classify)?;
        let mut found: Vec<CustomerId> = Vec::new();
        for item in out.items.unwrap_or_default() {
            if let Some(AttributeValue::S(id)) = item.get("customerId")
                && let Ok(id) = CustomerId::parse(id)
                && !found.contains(&id)
            {
                found.push(id);
            }
        }
        Ok(found)
    }
}
