//! Voiding records: marked once, their counter deltas taken back in one transaction with
//! the mark that they were; what they were first at (a customer in a row, a brand's first
//! deposit) handed to the record that would have been first without them.

use crm_core::records::{Activity, RecordKind};
use crm_core::stats::{CountedRow, Delta};
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

    /// Makes `record` (of `customer`) what a voided record was: the customer's first in a
    /// row (`seen` = the row's seen attribute) or first deposit for a brand (`seen` = its
    /// first-deposit attribute). `added` are the counter deltas that go with it; `rows` and
    /// `counted` are the record's `countedRows` and `counted` with them, so voiding it later
    /// takes them back too. `false` when another record holds `seen` by now.
    pub async fn promote(
        &self,
        customer: &CustomerId,
        record: &Activity,
        seen: &str,
        added: &[Delta],
        rows: &[CountedRow],
        counted: &crm_core::records::Counts,
    ) -> Result<bool, StoreError> {
        let kind = record.kind();
        let mut e = Expr::default();
        let update = format!(
            "SET {} = {}, {} = {}",
            e.name("countedRows"),
            e.value(codec::doc(&rows)?),
            e.name("counted"),
            e.value(codec::doc(counted)?)
        );
        let cond = format!("attribute_not_exists({})", e.name("voided"));
        let mut mark = Expr::default();
        let attr = mark.name(seen);
        let seen_update = format!(
            "SET {attr} = {}, {} = {}",
            mark.value(s(record.id())),
            mark.name(keys::ENTITY),
            mark.value(s(keys::entity::SEEN))
        );
        let seen_cond = format!("attribute_not_exists({attr})");
        let mut items = vec![
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
                mark,
            )?,
        ];
        for d in added {
            items.push(self.counter_update(d)?);
        }
        self.counting_transaction(items).await
    }

    /// The voided record no longer holds `seen` (a row's first, or a brand's first deposit).
    pub async fn release(&self, customer: &CustomerId, seen: &str, record_id: &str) -> Result<(), StoreError> {
        let mut e = Expr::default();
        let attr = e.name(seen);
        let update = format!("REMOVE {attr}");
        let cond = format!("{attr} = {}", e.value(s(record_id)));
        self.conditional_update(codec::key(keys::customer_pk(customer), keys::SEEN_SK), update, cond, e)
            .await?;
        Ok(())
    }
}
