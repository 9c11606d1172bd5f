//! Erasure (GDPR art. 17) at the item level: every item of one customer id (its partition
//! and its timeline, GSI1), the personal attributes removed, pending messages cancelled,
//! identifier items deleted, the profile made an anonymous tombstone. Counts, journeys,
//! revenue and brand statistics stay. Every step is idempotent: an interrupted erasure is
//! finished by running it again.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use aws_sdk_dynamodb::types::AttributeValue;
use crm_core::identity::Identifier;
use crm_core::message::{Reason, Status};
use crm_core::personal::{ERASED_VALUE, Scrub, erased_rows, scrub, sub_id_moves};
use crm_core::profile::Profile;
use crm_core::records::RecordKind;
use crm_core::stats::CountedRow;
use crm_core::values::CustomerId;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::codec::{self, Expr, s, ts};
use crate::keys::{self, entity};
use crate::{Item, Store, StoreError, applied, classify};

/// The record of an erasure: kept (it holds no personal data) so the erasure can be shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErasureRecord {
    pub customer_id: CustomerId,
    /// Every customer id of the person (merged ones included).
    pub customers: Vec<CustomerId>,
    #[serde(with = "crm_core::values::ts")]
    pub erased_at: OffsetDateTime,
    /// Who asked: the authenticated actor (a user's email, or `ADMIN_API_KEY`).
    pub erased_by: String,
    /// What was erased, by kind: `names`; identifiers `emails`, `phones`, `clickIds`,
    /// `deviceIds`, `userIds`; records scrubbed `clicks`, `leads`, `events`, `merges`,
    /// `messages`; `messagesCancelled`; `suppressions` (entries added as keyed hashes).
    pub erased: BTreeMap<String, usize>,
}

impl Store {
    /// Every item of `customer`: its own partition and its timeline.
    async fn customer_items(&self, customer: &CustomerId) -> Result<Vec<Item>, StoreError> {
        let pk = keys::customer_pk(customer);
        let mut items = Vec::new();
        for index in [None, Some(keys::GSI1)] {
            let mut start = None;
            loop {
                let key = if index.is_some() { keys::GSI1PK } else { keys::PK };
                let out = self
                    .client
                    .query()
                    .table_name(&self.table)
                    .set_index_name(index.map(str::to_owned))
                    .key_condition_expression(format!("{key} = :pk"))
                    .expression_attribute_values(":pk", s(&pk))
                    .set_exclusive_start_key(start)
                    .send()
                    .await
                    .map_err(classify)?;
                items.extend(out.items.unwrap_or_default());
                start = out.last_evaluated_key;
                if start.is_none() {
                    break;
                }
            }
        }
        let mut seen = HashSet::new();
        items.retain(|i| seen.insert((codec::opt_string(i, keys::PK), codec::opt_string(i, keys::SK))));
        Ok(items)
    }

    /// Scrubs every record of `customer` as the core decides (`crm_core::personal::scrub`),
    /// cancels its pending messages and moves its counts out of the rows keyed by its
    /// tracker sub-ids; counts by kind.
    pub async fn erase_records(
        &self,
        customer: &CustomerId,
        now: OffsetDateTime,
        counts: &mut BTreeMap<String, usize>,
    ) -> Result<(), StoreError> {
        for item in self.customer_items(customer).await? {
            let kind = codec::opt_string(&item, keys::ENTITY).unwrap_or_default();
            let key = codec::item_key(&item);
            self.move_sub_counts(&kind, &item).await?;
            let status = codec::opt_string(&item, "status").and_then(|v| Status::parse(&v).ok());
            let names: Vec<&str> = item.keys().map(String::as_str).collect();
            let (present, cancel_from) = match scrub(&kind, &names, status) {
                Scrub::Keep => continue,
                Scrub::Delete => {
                    self.delete_key(key).await?;
                    continue;
                }
                Scrub::Remove {
                    attributes,
                    cancel_from,
                } => (attributes, cancel_from),
            };
            let mut e = Expr::default();
            let mut set = vec![format!("{} = {}", e.name("erasedAt"), e.value(ts(now)))];
            let mut remove: Vec<String> = present.iter().map(|p| e.path(p)).collect();
            let mut condition = None;
            if let Some(st) = cancel_from {
                set.push(format!(
                    "{} = {}",
                    e.name("status"),
                    e.value(s(Status::Cancelled.as_str()))
                ));
                set.push(format!(
                    "{} = {}",
                    e.name("reason"),
                    e.value(s(Reason::Erased.as_str()))
                ));
                remove.extend([keys::GSI3PK, keys::GSI3SK, "leaseUntil"].map(|a| e.name(a)));
                condition = Some(format!("{} = {}", e.name("status"), e.value(s(st.as_str()))));
            }
            let mut update = format!("SET {}", set.join(", "));
            if !remove.is_empty() {
                update.push_str(&format!(" REMOVE {}", remove.join(", ")));
            }
            let cancelled = condition.is_some();
            if self
                .conditional_update(key.clone(), update, condition, e)
                .await?
                .is_none()
            {
                // The message moved on meanwhile (a sender claimed it): scrub it only.
                let mut e = Expr::default();
                let remove: Vec<String> = present.iter().map(|p| e.path(p)).collect();
                let update = format!(
                    "SET {} = {} REMOVE {}",
                    e.name("erasedAt"),
                    e.value(ts(now)),
                    remove.join(", ")
                );
                if !remove.is_empty() {
                    self.conditional_update(key, update, None, e).await?;
                }
            } else if cancelled {
                *counts.entry("messagesCancelled".into()).or_default() += 1;
            }
            if !present.is_empty() {
                let plural = RecordKind::parse(&kind).map_or("messages", RecordKind::plural);
                *counts.entry(plural.into()).or_default() += 1;
            }
        }
        Ok(())
    }

    /// Moves what a record counted under its person's tracker sub-ids to the `(erased)` rows
    /// (`crm_core::personal::sub_id_moves`), and its `countedRows` with it (so voiding it
    /// later takes back from where the counts are), once.
    async fn move_sub_counts(&self, kind: &str, item: &Item) -> Result<(), StoreError> {
        let Some(AttributeValue::L(_)) = item.get("countedRows") else {
            return Ok(());
        };
        if item.contains_key("subCountsErased") {
            return Ok(());
        }
        let rows: Vec<CountedRow> = serde_dynamo::from_attribute_value(item["countedRows"].clone())
            .map_err(|e| StoreError::Rejected(format!("countedRows of a {kind}: {e}")))?;
        let moves = sub_id_moves(&rows);
        if moves.is_empty() {
            return Ok(());
        }
        let mut e = Expr::default();
        let marked = e.name("subCountsErased");
        let update = format!(
            "SET {} = {}, {marked} = {}",
            e.name("countedRows"),
            e.value(codec::doc(&erased_rows(&rows))?),
            e.value(AttributeValue::Bool(true))
        );
        let cond = format!("attribute_not_exists({marked})");
        let mut items = vec![codec::update(
            &self.table,
            codec::item_key(item),
            update,
            Some(&cond),
            e,
        )?];
        for d in &moves {
            items.push(self.counter_update(d)?);
        }
        self.counting_transaction(items).await?;
        // A row only this person counted in is empty now, and its key is their value: gone.
        for d in moves.iter().filter(|d| d.row.value != ERASED_VALUE) {
            self.delete_if_empty(
                keys::stats_pk(d.row.dimension, d.hour.day),
                &keys::stats_sk(d.hour.day, &d.row.brand, &d.row.value),
            )
            .await?;
        }
        Ok(())
    }

    /// Deletes a counter row whose every counter is zero (and only while it is).
    async fn delete_if_empty(&self, pk: String, sk: &str) -> Result<(), StoreError> {
        let Some(row) = self.get(pk.clone(), sk).await? else {
            return Ok(());
        };
        let counters: Vec<&String> = row.keys().filter(|a| a.contains('@')).collect();
        let empty = counters
            .iter()
            .all(|a| matches!(&row[*a], AttributeValue::N(v) if v.parse::<f64>().is_ok_and(|n| n == 0.0)));
        if !empty {
            return Ok(());
        }
        let mut e = Expr::default();
        let zero = e.value(AttributeValue::N("0".into()));
        let cond = counters
            .iter()
            .map(|a| format!("{} = {zero}", e.name(a)))
            .chain(std::iter::once("attribute_exists(PK)".to_owned()))
            .collect::<Vec<_>>()
            .join(" AND ");
        let delete = codec::delete(&self.table, codec::key(pk, sk), &cond, e)?;
        self.transact_if(vec![delete]).await.map(|_| ())
    }

    /// Identifiers the customer's records keep because its profile did not list them.
    pub async fn unlisted_identifiers(&self, customer: &CustomerId) -> Result<BTreeSet<Identifier>, StoreError> {
        let mut out = BTreeSet::new();
        for item in self.customer_items(customer).await? {
            if let Some(AttributeValue::L(tags)) = item.get("unlistedIdentifiers") {
                out.extend(
                    tags.iter()
                        .filter_map(|t| t.as_s().ok())
                        .filter_map(|t| Identifier::from_tag(t).ok()),
                );
            }
        }
        Ok(out)
    }

    /// Removes a test customer entirely: its partition (profile, messages, send logs, timers,
    /// seen rows), its records and its test-namespace identifiers. Returns the records
    /// removed by kind (`clicks`, `leads`, `events`, `merges`, `messages`).
    pub async fn purge_test_customer(&self, profile: &Profile) -> Result<BTreeMap<String, usize>, StoreError> {
        let mut removed = BTreeMap::new();
        for item in self.customer_items(&profile.id).await? {
            let kind = codec::opt_string(&item, keys::ENTITY).unwrap_or_default();
            let plural = RecordKind::parse(&kind).map(RecordKind::plural);
            self.delete_key(codec::item_key(&item)).await?;
            if let Some(plural) = plural {
                *removed.entry(plural.to_owned()).or_default() += 1;
            }
        }
        for identifier in &profile.identifiers {
            self.for_test_traffic()
                .delete_identifier(identifier, &profile.id)
                .await?;
        }
        Ok(removed)
    }

    pub(crate) async fn delete_key(&self, key: Item) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }

    /// Deletes the identifier's item if `customer` still owns it; `true` when it did.
    pub async fn delete_identifier(&self, identifier: &Identifier, customer: &CustomerId) -> Result<bool, StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(codec::key(
                keys::identifier_pk_in(identifier, self.test),
                keys::IDENT_SK,
            )))
            .condition_expression("customerId = :c")
            .expression_attribute_values(":c", s(customer.as_str()))
            .send()
            .await;
        Ok(applied(result)?.is_some())
    }

    /// Makes the profile an anonymous tombstone: no names, identifiers, consents, exclusions
    /// or time zone; journeys, revenue and merge links stay. `false` if there is none.
    pub async fn tombstone_profile(&self, customer: &CustomerId, now: OffsetDateTime) -> Result<bool, StoreError> {
        let pk = keys::customer_pk(customer);
        let Some(item) = self.get(pk.clone(), keys::PROFILE_SK).await? else {
            return Ok(false);
        };
        let mut e = Expr::default();
        let mut remove: Vec<String> = ["firstName", "lastName", "identifiers", "timezone"]
            .into_iter()
            .filter(|a| item.contains_key(*a))
            .map(|a| e.name(a))
            .collect();
        remove.extend(
            item.keys()
                .filter(|a| keys::parse_profile_fact(a).is_some())
                .map(|a| e.name(a)),
        );
        let mut update = format!(
            "SET {} = {}, {} = {} ADD {} {}",
            e.name("erasedAt"),
            e.value(ts(now)),
            e.name("updatedAt"),
            e.value(ts(now)),
            e.name("version"),
            e.value(AttributeValue::N("1".into())),
        );
        if !remove.is_empty() {
            update.push_str(&format!(" REMOVE {}", remove.join(", ")));
        }
        self.conditional_update(codec::key(pk, keys::PROFILE_SK), update, None, e)
            .await?;
        Ok(true)
    }

    pub async fn put_erasure(&self, record: &ErasureRecord) -> Result<(), StoreError> {
        let item = codec::document_item(
            record,
            keys::erasure_pk(&record.customer_id),
            keys::ERASURE_SK,
            entity::ERASURE,
        )?;
        self.put(item).await
    }

    pub async fn erasure(&self, customer: &CustomerId) -> Result<Option<ErasureRecord>, StoreError> {
        self.get_as(keys::erasure_pk(customer), keys::ERASURE_SK, codec::document_from_item)
            .await
    }
}
