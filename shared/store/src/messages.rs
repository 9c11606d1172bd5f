//! Messages, journey definitions, brand settings and templates. Every move of a message
//! between statuses is one conditional `UpdateItem` on the status it expects, so two
//! schedulers, two senders or a late journey change can never both win.
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use crm_core::definition::JourneyDefinition;
use crm_core::message::{Message, Reason, Report, Status};
use crm_core::records::RecordKind;
use crm_core::send::SettingsOverride;
use crm_core::template::MessageTemplate;
use crm_core::values::{Brand, CustomerId};
use time::{Date, OffsetDateTime};

use crate::codec::{self, Expr, n, s, ts};
use crate::keys::{self, entity};
use crate::{Item, Store, StoreError, applied, classify};

/// A message found in the due index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    pub customer: CustomerId,
    pub message_id: String,
    pub status: Status,
    /// Its due-index sort key when read: claims are conditional on it.
    pub position: String,
}

/// Where a page of the due index ended.
#[derive(Debug, Clone, PartialEq)]
pub struct DueCursor(pub(crate) Item);

/// How a sender's claimed (`SENDING`) message ends, or goes back to waiting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settle {
    Sent {
        at: OffsetDateTime,
        dry_run: bool,
        provider: Option<String>,
        provider_message_id: Option<String>,
        to: String,
        template_id: String,
        subject: Option<String>,
        body: String,
    },
    Failed {
        reason: Reason,
        error: Option<String>,
    },
    Skipped(Reason),
    Cancelled(Reason),
    /// Back to `PENDING`, due at `until`.
    Deferred {
        until: OffsetDateTime,
        reason: Reason,
        attempts: u32,
        error: Option<String>,
    },
}

/// A position in the recent-messages list of one day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessagePosition {
    pub customer: CustomerId,
    pub message_id: String,
    pub created_at: OffsetDateTime,
}

const GSI3: [&str; 2] = [keys::GSI3PK, keys::GSI3SK];

impl Store {
    /// Creates a message unless its id exists; `false` when it did.
    pub async fn create_message(&self, message: &Message) -> Result<bool, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(codec::message_item(message)?))
            .condition_expression("attribute_not_exists(PK)")
            .send()
            .await;
        Ok(applied(result)?.is_some())
    }

    pub async fn message(&self, customer: &CustomerId, message_id: &str) -> Result<Option<Message>, StoreError> {
        self.get(keys::customer_pk(customer), &keys::message_sk(message_id))
            .await?
            .map(codec::message_from_item)
            .transpose()
    }

    /// Every message of one customer (one query of its partition).
    pub async fn customer_messages(&self, customer: &CustomerId) -> Result<Vec<Message>, StoreError> {
        let mut messages = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("PK = :pk AND begins_with(SK, :prefix)")
                .expression_attribute_values(":pk", s(keys::customer_pk(customer)))
                .expression_attribute_values(":prefix", s(keys::message_sk_prefix()))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(classify)?;
            for item in out.items.unwrap_or_default() {
                messages.push(codec::message_from_item(item)?);
            }
            start = out.last_evaluated_key;
            if start.is_none() {
                return Ok(messages);
            }
        }
    }

    /// One conditional update of a message; `None` when the condition failed. Returns the
    /// message as it is after the update.
    async fn update_message(
        &self,
        customer: &CustomerId,
        message_id: &str,
        set: Vec<(&str, AttributeValue)>,
        remove: &[&str],
        condition: &str,
        mut expr: Expr,
    ) -> Result<Option<Message>, StoreError> {
        let mut sets = Vec::new();
        for (attr, value) in set {
            sets.push(format!("{} = {}", expr.name(attr), expr.value(value)));
        }
        let mut update = format!("SET {}", sets.join(", "));
        if !remove.is_empty() {
            let names: Vec<String> = remove.iter().map(|a| expr.name(a)).collect();
            update.push_str(&format!(" REMOVE {}", names.join(", ")));
        }
        let key = codec::key(keys::customer_pk(customer), &keys::message_sk(message_id));
        self.conditional_update(key, update, condition.to_owned(), expr)
            .await?
            .map(codec::message_from_item)
            .transpose()
    }

    /// Records what the provider reported about a message it accepted, matched by the
    /// provider's message id, if the message may move to that status
    /// ([`Status::reported_from`]); `false` when it does not exist, has another provider id,
    /// already holds a later report, or was erased.
    pub async fn record_report(
        &self,
        customer: &CustomerId,
        message_id: &str,
        provider_message_id: &str,
        report: &Report,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let from = report.status.reported_from();
        if from.is_empty() {
            return Ok(false);
        }
        let mut e = Expr::default();
        let from: Vec<String> = from.iter().map(|st| e.value(s(st.as_str()))).collect();
        // Never onto an erased message: SES's words (an error text) would come back.
        let cond = format!(
            "{} = {} AND {} IN ({}) AND attribute_not_exists({})",
            e.name("providerMessageId"),
            e.value(s(provider_message_id)),
            e.name("status"),
            from.join(", "),
            e.name("erasedAt")
        );
        let mut set = vec![("status", s(report.status.as_str())), ("updatedAt", ts(now))];
        if report.status == Status::Delivered {
            set.push(("deliveredAt", ts(report.at)));
        }
        set.extend(report.reason.map(|r| ("reason", s(r.as_str()))));
        set.extend(report.error.as_deref().map(|d| ("error", s(d))));
        Ok(self
            .update_message(customer, message_id, set, &[], &cond, e)
            .await?
            .is_some())
    }

    /// Cancels a message not yet handed to a provider.
    pub async fn cancel_message(
        &self,
        customer: &CustomerId,
        message_id: &str,
        reason: Reason,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut e = Expr::default();
        let cond = format!(
            "{st} IN ({}, {})",
            e.value(s(Status::Pending.as_str())),
            e.value(s(Status::Queued.as_str())),
            st = e.name("status")
        );
        let set = vec![
            ("status", s(Status::Cancelled.as_str())),
            ("reason", s(reason.as_str())),
            ("updatedAt", ts(now)),
        ];
        let removed = [GSI3[0], GSI3[1], "leaseUntil"];
        Ok(self
            .update_message(customer, message_id, set, &removed, &cond, e)
            .await?
            .is_some())
    }

    /// A message waiting for an address the customer now has, or for its confirmation: due
    /// now.
    pub async fn wake_message(
        &self,
        customer: &CustomerId,
        message_id: &str,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut e = Expr::default();
        let cond = format!(
            "{st} = {} AND {re} IN ({}, {})",
            e.value(s(Status::Pending.as_str())),
            e.value(s(Reason::NoAddress.as_str())),
            e.value(s(Reason::Unconfirmed.as_str())),
            st = e.name("status"),
            re = e.name("reason"),
        );
        let set = vec![
            ("dueAt", ts(now)),
            (keys::GSI3SK, s(keys::due_sk(now, message_id))),
            ("updatedAt", ts(now)),
        ];
        Ok(self
            .update_message(customer, message_id, set, &["reason"], &cond, e)
            .await?
            .is_some())
    }

    /// One page of the due index's `shard`: messages due (or whose lease expires) before
    /// `bound`, oldest first.
    pub async fn due_page(
        &self,
        shard: u8,
        bound: OffsetDateTime,
        limit: i32,
        start: Option<DueCursor>,
    ) -> Result<(Vec<Due>, Option<DueCursor>), StoreError> {
        let (items, next) = self.due_index_page(keys::due_pk(shard), bound, limit, start).await?;
        let due = items
            .into_iter()
            .map(|item| {
                let pk = codec::opt_string(&item, keys::PK).unwrap_or_default();
                let sk = codec::opt_string(&item, keys::SK).unwrap_or_default();
                let bad = || codec::corrupt(&pk, "malformed due-index entry");
                Ok(Due {
                    customer: keys::customer_from_pk(&pk).ok_or_else(bad)?,
                    message_id: keys::message_id_from_sk(&sk).ok_or_else(bad)?.to_owned(),
                    status: codec::opt_string(&item, "status")
                        .and_then(|v| Status::parse(&v).ok())
                        .ok_or_else(bad)?,
                    position: codec::opt_string(&item, keys::GSI3SK).ok_or_else(bad)?,
                })
            })
            .collect::<Result<_, StoreError>>()?;
        Ok((due, next))
    }

    /// The scheduler's claim: `PENDING` (or `QUEUED` with an expired lease) → `QUEUED` with a
    /// lease until `lease_until`. Fails if anyone moved the message since it was read.
    pub async fn queue_message(
        &self,
        due: &Due,
        lease_until: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut e = Expr::default();
        let cond = format!(
            "{pos} = {} AND {st} IN ({}, {})",
            e.value(s(&due.position)),
            e.value(s(Status::Pending.as_str())),
            e.value(s(Status::Queued.as_str())),
            pos = e.name(keys::GSI3SK),
            st = e.name("status"),
        );
        let set = vec![
            ("status", s(Status::Queued.as_str())),
            ("leaseUntil", ts(lease_until)),
            (keys::GSI3SK, s(keys::due_sk(lease_until, &due.message_id))),
            ("updatedAt", ts(now)),
        ];
        Ok(self
            .update_message(&due.customer, &due.message_id, set, &[], &cond, e)
            .await?
            .is_some())
    }

    /// A `SENDING` message whose lease expired: its sender stopped, and whether the provider
    /// accepted it is unknown, so it is never sent again: `FAILED`, `send_interrupted`.
    pub async fn interrupt_message(&self, due: &Due, now: OffsetDateTime) -> Result<bool, StoreError> {
        let mut e = Expr::default();
        let cond = format!(
            "{pos} = {} AND {st} = {}",
            e.value(s(&due.position)),
            e.value(s(Status::Sending.as_str())),
            pos = e.name(keys::GSI3SK),
            st = e.name("status"),
        );
        let set = vec![
            ("status", s(Status::Failed.as_str())),
            ("reason", s(Reason::SendInterrupted.as_str())),
            ("updatedAt", ts(now)),
        ];
        let removed = [GSI3[0], GSI3[1], "leaseUntil"];
        Ok(self
            .update_message(&due.customer, &due.message_id, set, &removed, &cond, e)
            .await?
            .is_some())
    }

    /// The sender's claim: `QUEUED` → `SENDING` with a lease, marked with `claim` (one
    /// receive of the job). Only the sender whose claim succeeds may call a provider;
    /// `None` means someone else has (or had) it. The same `claim` succeeds again, so an SDK
    /// retry of a claim whose answer was lost is not mistaken for someone else's.
    pub async fn claim_message(
        &self,
        customer: &CustomerId,
        message_id: &str,
        claim: &str,
        lease_until: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<Option<Message>, StoreError> {
        let mut e = Expr::default();
        let (st, token) = (e.name("status"), e.name("claimToken"));
        let mine = e.value(s(claim));
        let cond = format!(
            "{st} = {} OR ({st} = {} AND {token} = {mine})",
            e.value(s(Status::Queued.as_str())),
            e.value(s(Status::Sending.as_str())),
        );
        let set = vec![
            ("status", s(Status::Sending.as_str())),
            ("claimToken", s(claim)),
            ("leaseUntil", ts(lease_until)),
            (keys::GSI3SK, s(keys::due_sk(lease_until, message_id))),
            ("updatedAt", ts(now)),
        ];
        self.update_message(customer, message_id, set, &[], &cond, e).await
    }

    /// Records how a claimed message ended (conditional on it still being `SENDING`).
    pub async fn settle_message(
        &self,
        customer: &CustomerId,
        message_id: &str,
        outcome: Settle,
        now: OffsetDateTime,
    ) -> Result<Option<Message>, StoreError> {
        let mut e = Expr::default();
        let cond = format!("{} = {}", e.name("status"), e.value(s(Status::Sending.as_str())));
        let final_removed = [GSI3[0], GSI3[1], "leaseUntil", "claimToken"];
        let mut set = vec![("updatedAt", ts(now))];
        if !matches!(outcome, Settle::Deferred { .. })
            && let Some(at) = self.retention.record(RecordKind::Message, now)
        {
            // Final: kept for the messages' retention from now, body and all.
            set.push((keys::TTL, n(at.unix_timestamp())));
        }
        let removed: Vec<&str> = match outcome {
            Settle::Sent {
                at,
                dry_run,
                provider,
                provider_message_id,
                to,
                template_id,
                subject,
                body,
            } => {
                set.extend([
                    ("status", s(Status::Sent.as_str())),
                    ("sentAt", ts(at)),
                    ("dryRun", AttributeValue::Bool(dry_run)),
                    ("to", s(to)),
                    ("templateId", s(template_id)),
                    ("body", s(body)),
                ]);
                set.extend(provider.map(|p| ("provider", s(p))));
                set.extend(provider_message_id.map(|p| ("providerMessageId", s(p))));
                set.extend(subject.map(|v| ("subject", s(v))));
                let mut r = final_removed.to_vec();
                r.extend(["reason", "error"]);
                r
            }
            Settle::Failed { reason, error } => {
                set.extend([("status", s(Status::Failed.as_str())), ("reason", s(reason.as_str()))]);
                set.extend(error.map(|v| ("error", s(v))));
                final_removed.to_vec()
            }
            Settle::Skipped(reason) | Settle::Cancelled(reason) => {
                let status = if matches!(outcome, Settle::Skipped(_)) {
                    Status::Skipped
                } else {
                    Status::Cancelled
                };
                set.extend([("status", s(status.as_str())), ("reason", s(reason.as_str()))]);
                final_removed.to_vec()
            }
            Settle::Deferred {
                until,
                reason,
                attempts,
                error,
            } => {
                set.extend([
                    ("status", s(Status::Pending.as_str())),
                    ("reason", s(reason.as_str())),
                    ("dueAt", ts(until)),
                    (keys::GSI3SK, s(keys::due_sk(until, message_id))),
                    ("attempts", n(attempts)),
                ]);
                set.extend(error.map(|v| ("error", s(v))));
                vec!["leaseUntil", "claimToken"]
            }
        };
        self.update_message(customer, message_id, set, &removed, &cond, e).await
    }

    /// Up to `limit` messages created on `day`, newest first, after `after`.
    pub async fn messages_page(
        &self,
        day: Date,
        after: Option<&MessagePosition>,
        limit: i32,
    ) -> Result<(Vec<Message>, bool), StoreError> {
        let start = after.map(|p| {
            let mut k = codec::key(keys::customer_pk(&p.customer), &keys::message_sk(&p.message_id));
            k.insert(
                keys::GSI2PK.into(),
                s(keys::feed_pk(RecordKind::Message, codec::utc_day(p.created_at))),
            );
            k.insert(keys::GSI2SK.into(), s(keys::feed_sk(p.created_at, &p.message_id)));
            k
        });
        let (items, more) = self
            .newest_first_page(keys::feed_pk(RecordKind::Message, day), limit, start)
            .await?;
        let messages = items
            .into_iter()
            .map(codec::message_from_item)
            .collect::<Result<_, _>>()?;
        Ok((messages, more))
    }

    // Journey definitions and brand settings: one item each under the brand's configuration key.

    pub async fn journey_definition(&self, brand: &Brand) -> Result<Option<JourneyDefinition>, StoreError> {
        self.get_as(
            keys::brand_config_pk(brand),
            keys::JOURNEY_SK,
            codec::document_from_item,
        )
        .await
    }

    pub async fn put_journey_definition(
        &self,
        brand: &Brand,
        definition: &JourneyDefinition,
    ) -> Result<(), StoreError> {
        let item = codec::document_item(
            definition,
            keys::brand_config_pk(brand),
            keys::JOURNEY_SK,
            entity::JOURNEY_DEFINITION,
        )?;
        self.put(item).await
    }

    /// The name a brand's messages show: its settings' display name, else its id titled.
    pub async fn brand_display_name(&self, brand: &Brand) -> Result<String, StoreError> {
        Ok(self
            .brand_settings(brand)
            .await?
            .and_then(|s| s.display_name)
            .unwrap_or_else(|| crm_core::send::BrandSettings::default_display_name(brand)))
    }

    pub async fn brand_settings(&self, brand: &Brand) -> Result<Option<SettingsOverride>, StoreError> {
        self.get_as(
            keys::brand_config_pk(brand),
            keys::SETTINGS_SK,
            codec::document_from_item,
        )
        .await
    }

    pub async fn put_brand_settings(&self, brand: &Brand, settings: &SettingsOverride) -> Result<(), StoreError> {
        let item = codec::document_item(
            settings,
            keys::brand_config_pk(brand),
            keys::SETTINGS_SK,
            entity::BRAND_SETTINGS,
        )?;
        self.put(item).await
    }

    // Templates.

    pub async fn template(&self, id: &str) -> Result<Option<MessageTemplate>, StoreError> {
        self.get_as(keys::template_pk(id), keys::TEMPLATE_SK, codec::document_from_item)
            .await
    }

    pub async fn put_template(&self, t: &MessageTemplate) -> Result<(), StoreError> {
        let mut item = codec::document_item(
            t,
            keys::template_pk(&t.template_id),
            keys::TEMPLATE_SK,
            entity::TEMPLATE,
        )?;
        item.insert(keys::GSI2PK.into(), s(keys::TEMPLATES_LIST));
        item.insert(
            keys::GSI2SK.into(),
            s(keys::template_list_sk(
                t.brand.as_str(),
                t.channel.as_str(),
                &t.template_id,
            )),
        );
        self.put(item).await
    }

    /// Deletes a template; `false` when there was none.
    pub async fn delete_template(&self, id: &str) -> Result<bool, StoreError> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(codec::key(keys::template_pk(id), keys::TEMPLATE_SK)))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(classify)?;
        Ok(out.attributes.is_some())
    }

    /// Saved templates whose list key starts with `prefix` (`""`: all; `rushbet#`: one
    /// brand's; `rushbet#email#`: one brand's emails).
    pub async fn templates(&self, prefix: &str) -> Result<Vec<MessageTemplate>, StoreError> {
        let mut found = Vec::new();
        let mut start = None;
        loop {
            let mut query = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(keys::GSI2)
                .expression_attribute_values(":pk", s(keys::TEMPLATES_LIST))
                .set_exclusive_start_key(start);
            // DynamoDB refuses an empty string as a key condition value.
            query = if prefix.is_empty() {
                query.key_condition_expression("GSI2PK = :pk")
            } else {
                query
                    .key_condition_expression("GSI2PK = :pk AND begins_with(GSI2SK, :prefix)")
                    .expression_attribute_values(":prefix", s(prefix))
            };
            let out = query.send().await.map_err(classify)?;
            for item in out.items.unwrap_or_default() {
                let key = codec::opt_string(&item, keys::PK).unwrap_or_default();
                found.push(codec::document_from_item(&item, &key)?);
            }
            start = out.last_evaluated_key;
            if start.is_none() {
                return Ok(found);
            }
        }
    }

    /// Saved templates a message of `brand` may use: the brand's own and those for every
    /// brand (`*`).
    pub async fn templates_for_brand(&self, brand: &Brand) -> Result<Vec<MessageTemplate>, StoreError> {
        let mut all = self.templates(&format!("{brand}#")).await?;
        all.extend(self.templates("*#").await?);
        Ok(all)
    }
}
