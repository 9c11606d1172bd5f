//! Voiding records: marked once, their counter deltas taken back in one transaction with
//! the mark that they were, the customer's "first in this row" handed to the record that
//! would have been first without them.

use crm_core::records::{Activity, RecordKind};
use crm_core::stats::{CountedRow, Delta, Metric, Row};
use crm_core::values::CustomerId;
use time::OffsetDateTime;

use crate::codec::{self, Expr, s, ts};
use crate::keys;
use crate::{Store, StoreError};

impl Store {
    /// Marks a record voided; the record as it is now, or `None` when it was voided before
    /// (or is gone): voiding twice changes nothing.
    pub async fn void_record(
        &self,
        kind: RecordKind,
        id: &str,
        at: OffsetDateTime,
    ) -> Result<Option<Activity>, StoreError> {
        let mut e = Expr::default();
        let update = format!("SET {} = {}", e.name("voided"), e.value(ts(at)));
        let cond = format!("attribute_exists(PK) AND attribute_not_exists({})", e.name("voided"));
        let key = codec::key(keys::record_pk(kind, id), kind.as_str());
        match self.conditional_update(key, update, cond, e).await? {
            Some(item) => codec::timeline_entry(item).map(|(_, record)| Some(record)),
            None => Ok(None),
        }
    }

    /// Takes back what a voided record counted (its `countedRows`, negated), once: `false`
    /// when it was taken back before or never counted.
    pub async fn uncount(&self, kind: RecordKind, id: &str, reversal: &[Delta]) -> Result<bool, StoreError> {
        let mut e = Expr::default();
        let update = format!(
            "SET {} = {}",
            e.name("uncounted"),
            e.value(aws_sdk_dynamodb::types::AttributeValue::Bool(true))
        );
        let cond = format!(
            "attribute_exists({}) AND attribute_exists({}) AND attribute_not_exists({})",
            e.name("countedRows"),
            e.name("voided"),
            e.name("uncounted")
        );
        let mut items = vec![codec::update(
            &self.table,
            codec::key(keys::record_pk(kind, id), kind.as_str()),
            update,
            Some(&cond),
            e,
        )?];
        for d in reversal {
            items.push(self.counter_update(d)?);
        }
        self.counting_transaction(items).await
    }

    /// The customer is no longer counted in `row` by `record_id` (it was its first there).
    pub async fn release_seen(&self, customer: &CustomerId, row: &Row, record_id: &str) -> Result<(), StoreError> {
        let mut e = Expr::default();
        let attr = e.name(&keys::seen_attr(row));
        let update = format!("REMOVE {attr}");
        let cond = format!("{attr} = {}", e.value(s(record_id)));
        self.conditional_update(codec::key(keys::customer_pk(customer), keys::SEEN_SK), update, cond, e)
            .await?;
        Ok(())
    }

    /// Makes `record` (of `customer`) the customer's first in `row`, as it would have been
    /// without a voided one: `Customers` added at its hour, the seen row set, its
    /// `countedRows` saying so (so voiding it later takes that back too). `rows` is its
    /// `countedRows` with the change. `false` when someone else is first there by now.
    pub async fn reassign_first(
        &self,
        customer: &CustomerId,
        record: &Activity,
        delta: &Delta,
        rows: &[CountedRow],
    ) -> Result<bool, StoreError> {
        let kind = record.kind();
        let mut e = Expr::default();
        let update = format!("SET {} = {}", e.name("countedRows"), e.value(codec::doc(&rows)?));
        let cond = format!("attribute_not_exists({})", e.name("voided"));
        let mut seen = Expr::default();
        let attr = seen.name(&keys::seen_attr(&delta.row));
        let seen_update = format!(
            "SET {attr} = {}, {} = {}",
            seen.value(s(record.id())),
            seen.name(keys::ENTITY),
            seen.value(s(keys::entity::SEEN))
        );
        let seen_cond = format!("attribute_not_exists({attr})");
        let customers = Delta {
            metrics: [(Metric::Customers, rust_decimal::Decimal::ONE)].into(),
            ..delta.clone()
        };
        let items = vec![
            codec::update(
                &self.table,
                codec::key(keys::record_pk(kind, record.id()), kind.as_str()),
                update,
                Some(&cond),
                e,
            )?,
            codec::update(
                &self.table,
                codec::key(keys::customer_pk(customer), keys::SEEN_SK),
                seen_update,
                Some(&seen_cond),
                seen,
            )?,
            self.counter_update(&customers)?,
        ];
        self.counting_transaction(items).await
    }
}
