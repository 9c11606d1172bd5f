//! The suppression list, the send logs frequency caps count over, and transient-bounce
//! counts. Suppression entries are keyed by the address's keyed hash, so the list works
//! (and erasure can drop every plaintext address) without ever needing the address itself.

use aws_sdk_dynamodb::types::AttributeValue;
use crm_core::caps::{SendLog, Sent};
use crm_core::compliance::{Scope, Suppression, SuppressionReason};
use crm_core::definition::Channel;
use crm_core::values::{CustomerId, parse_ts};
use time::{Duration, OffsetDateTime};

use crate::codec::{self, Expr, n, s};
use crate::keys::{self, entity};
use crate::{Item, Store, StoreError, applied, classify};

impl Store {
    /// Every entry for one address on one channel (one query).
    pub async fn suppressions(&self, channel: Channel, address_hash: &str) -> Result<Vec<Suppression>, StoreError> {
        let pk = keys::suppression_pk(channel, address_hash);
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("PK = :pk")
            .expression_attribute_values(":pk", s(&pk))
            .consistent_read(true)
            .send()
            .await
            .map_err(classify)?;
        out.items
            .unwrap_or_default()
            .iter()
            .map(|item| codec::document_from_item(item, &pk))
            .collect()
    }

    /// The entries of these addresses (channel, hash) for these scopes: one batch read.
    pub async fn suppressions_in(
        &self,
        addresses: &[(Channel, String)],
        scopes: &[Scope],
    ) -> Result<Vec<Suppression>, StoreError> {
        let keys: Vec<Item> = addresses
            .iter()
            .flat_map(|(channel, hash)| {
                scopes
                    .iter()
                    .map(|scope| codec::key(keys::suppression_pk(*channel, hash), &keys::suppression_sk(scope)))
            })
            .take(100)
            .collect();
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        self.batch_get_items(keys)
            .await?
            .iter()
            .map(|item| {
                let pk = codec::opt_string(item, keys::PK).unwrap_or_default();
                codec::document_from_item(item, &pk)
            })
            .collect()
    }

    /// Adds (or refreshes) an entry. An `erased` entry is never replaced, and an entry of an
    /// address with one is stored without its plaintext: nothing may turn an erased person
    /// back into an address. `false` when an erased entry was in the way.
    pub async fn suppress(&self, entry: &Suppression) -> Result<bool, StoreError> {
        // An erased person's address is kept as its hash alone, whatever scope this entry
        // is for (the erased entry is for every brand: another scope is another item).
        let stripped;
        let entry = if entry.address.is_some()
            && self
                .suppressions(entry.channel, &entry.address_hash)
                .await?
                .iter()
                .any(|e| e.reason == SuppressionReason::Erased)
        {
            stripped = Suppression {
                address: None,
                ..entry.clone()
            };
            &stripped
        } else {
            entry
        };
        let mut item = codec::document_item(
            entry,
            keys::suppression_pk(entry.channel, &entry.address_hash),
            &keys::suppression_sk(&entry.scope),
            entity::SUPPRESSION,
        )?;
        item.insert(keys::GSI2PK.into(), s(keys::suppression_list_pk(entry.channel)));
        item.insert(
            keys::GSI2SK.into(),
            s(keys::suppression_list_sk(entry.at, &entry.address_hash, &entry.scope)),
        );
        item.insert("reason".into(), s(entry.reason.as_str()));
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(PK) OR reason <> :erased")
            .expression_attribute_values(":erased", s(SuppressionReason::Erased.as_str()))
            .send()
            .await;
        Ok(applied(result)?.is_some())
    }

    /// Removes the entry for `scope`; with `only`, only if it has that reason (a recipient
    /// may lift their own unsubscribe, not a bounce). `true` when one was removed.
    pub async fn unsuppress(
        &self,
        channel: Channel,
        address_hash: &str,
        scope: &Scope,
        only: Option<SuppressionReason>,
    ) -> Result<bool, StoreError> {
        let mut req = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(codec::key(
                keys::suppression_pk(channel, address_hash),
                &keys::suppression_sk(scope),
            )))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld);
        if let Some(reason) = only {
            req = req
                .condition_expression("reason = :r")
                .expression_attribute_values(":r", s(reason.as_str()));
        }
        Ok(applied(req.send().await)?.is_some_and(|out| out.attributes.is_some()))
    }

    /// One page of a channel's entries, newest first, after the entry `after` (the last of
    /// the previous page); `true` when more follow.
    pub async fn suppression_page(
        &self,
        channel: Channel,
        limit: i32,
        after: Option<&Suppression>,
    ) -> Result<(Vec<Suppression>, bool), StoreError> {
        let pk = keys::suppression_list_pk(channel);
        let start = after.map(|e| {
            let mut k: Item = codec::key(
                keys::suppression_pk(e.channel, &e.address_hash),
                &keys::suppression_sk(&e.scope),
            );
            k.insert(keys::GSI2PK.into(), s(&pk));
            k.insert(
                keys::GSI2SK.into(),
                s(keys::suppression_list_sk(e.at, &e.address_hash, &e.scope)),
            );
            k
        });
        let (items, more) = self.newest_first_page(pk.clone(), limit, start).await?;
        let entries = items
            .iter()
            .map(|item| codec::document_from_item(item, &pk))
            .collect::<Result<_, _>>()?;
        Ok((entries, more))
    }

    /// A person's recent sends on `channel`.
    pub async fn send_log(&self, customer: &CustomerId, channel: Channel) -> Result<SendLog, StoreError> {
        let pk = keys::customer_pk(customer);
        let Some(item) = self.get(pk.clone(), &keys::send_log_sk(channel)).await? else {
            return Ok(SendLog::default());
        };
        let sends: Vec<Sent> = match item.get("sends") {
            Some(v) => serde_dynamo::from_attribute_value(v.clone()).map_err(|e| codec::corrupt(&pk, e.to_string()))?,
            None => Vec::new(),
        };
        let version = match item.get("version") {
            Some(AttributeValue::N(v)) => v.parse().map_err(|_| codec::corrupt(&pk, "send log version"))?,
            _ => 0,
        };
        Ok(SendLog { sends, version })
    }

    /// Replaces the send log read as `read` with `sends`, unless someone changed it since:
    /// `false` then (read it again and decide again). This conditional write is what makes
    /// two senders unable to both pass a full cap.
    pub async fn record_send(
        &self,
        customer: &CustomerId,
        channel: Channel,
        read: &SendLog,
        sends: &[Sent],
    ) -> Result<bool, StoreError> {
        let mut e = Expr::default();
        let list = codec::doc(&sends)?;
        let mut update = format!(
            "SET {} = {}, {} = {}, {} = {}",
            e.name("sends"),
            e.value(list),
            e.name("version"),
            e.value(n(read.version + 1)),
            e.name(keys::ENTITY),
            e.value(s(entity::SEND_LOG)),
        );
        if let Some(at) = sends
            .iter()
            .map(|s| s.at)
            .max()
            .and_then(|last| self.retention.send_log(last))
        {
            update.push_str(&format!(
                ", {} = {}",
                e.name(keys::TTL),
                e.value(n(at.unix_timestamp()))
            ));
        }
        let condition = if read.version == 0 {
            "attribute_not_exists(PK)".to_owned()
        } else {
            format!("{} = {}", e.name("version"), e.value(n(read.version)))
        };
        let key = codec::key(keys::customer_pk(customer), &keys::send_log_sk(channel));
        Ok(self.conditional_update(key, update, condition, e).await?.is_some())
    }

    /// Records a transient bounce (once per `feedback_id`, so a redelivered notification
    /// counts once) and answers how many the address had in the week up to `at`.
    pub async fn record_transient_bounce(
        &self,
        address_hash: &str,
        feedback_id: &str,
        at: OffsetDateTime,
    ) -> Result<usize, StoreError> {
        let mut e = Expr::default();
        let entry = format!("{}|{feedback_id}", crm_core::values::format_ts(at));
        let update = format!(
            "ADD {} {} SET {} = {}",
            e.name("bounces"),
            e.value(AttributeValue::Ss(vec![entry])),
            e.name(keys::ENTITY),
            e.value(s(entity::TRANSIENT_BOUNCES)),
        );
        let key = codec::key(keys::transient_bounces_pk(address_hash), keys::TRANSIENT_SK);
        let item = self.conditional_update(key, update, None, e).await?.unwrap_or_default();
        let week_ago = at - Duration::days(7);
        let count = match item.get("bounces") {
            Some(AttributeValue::Ss(entries)) => entries
                .iter()
                .filter_map(|e| e.split_once('|'))
                .filter_map(|(t, _)| parse_ts(t).ok())
                .filter(|t| *t > week_ago && *t <= at)
                .count(),
            _ => 0,
        };
        Ok(count)
    }
}
