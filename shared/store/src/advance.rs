//! Advance timers: when a depositing customer goes dormant with a brand unless another
//! deposit comes first. The journey function pushes a timer forward on every deposit (a
//! conditional "max", so late or replayed deposits never pull it back); the journey-advance
//! function finds due timers through GSI3 and marks the profile dormant.

use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};
use crm_core::journey::Milestone;
use crm_core::records::EventRecord;
use crm_core::values::{Brand, CustomerId, parse_ts};
use time::OffsetDateTime;

use crate::codec::{self, Expr, n, s, ts};
use crate::keys::{self, entity};
use crate::{DueCursor, Item, Store, StoreError, applied};

/// A timer found due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdvanceDue {
    pub customer: CustomerId,
    pub brand: Brand,
    pub last_deposit: OffsetDateTime,
    /// Its GSI3 sort key when read: updates are conditional on it.
    pub position: String,
}

impl Store {
    /// Records a deposit on the customer's timer with `brand`, due at `due`; `false` when a
    /// later deposit is already recorded.
    pub async fn record_deposit(
        &self,
        customer: &CustomerId,
        brand: &Brand,
        at: OffsetDateTime,
        due: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut e = Expr::default();
        let last = e.name("lastDeposit");
        let at_v = e.value(ts(at));
        let update = format!(
            "SET {last} = {at_v}, {} = {}, {} = {}, {} = {}, {} = {}, {} = {}",
            e.name(keys::ENTITY),
            e.value(s(entity::ADVANCE_TIMER)),
            e.name("customerId"),
            e.value(s(customer.as_str())),
            e.name("brand"),
            e.value(s(brand.as_str())),
            e.name(keys::GSI3PK),
            e.value(s(keys::advance_due_pk(keys::due_shard(&format!("{customer}{brand}"))))),
            e.name(keys::GSI3SK),
            e.value(s(keys::advance_due_sk(due, customer, brand))),
        );
        let key = codec::key(keys::customer_pk(customer), &keys::advance_sk(brand));
        let condition = format!("attribute_not_exists({last}) OR {last} < {at_v}");
        Ok(self.conditional_update(key, update, condition, e).await?.is_some())
    }

    /// Timers of `shard` due before `now`.
    pub async fn advance_due_page(
        &self,
        shard: u8,
        now: OffsetDateTime,
        limit: i32,
        start: Option<DueCursor>,
    ) -> Result<(Vec<AdvanceDue>, Option<DueCursor>), StoreError> {
        let (items, next) = self
            .due_index_page(keys::advance_due_pk(shard), now, limit, start)
            .await?;
        let due = items
            .into_iter()
            .map(|item| {
                let pk = codec::opt_string(&item, keys::PK).unwrap_or_default();
                let sk = codec::opt_string(&item, keys::SK).unwrap_or_default();
                let bad = || codec::corrupt(&pk, "malformed advance timer");
                Ok(AdvanceDue {
                    customer: keys::customer_from_pk(&pk).ok_or_else(bad)?,
                    brand: keys::brand_from_advance_sk(&sk)
                        .and_then(|b| Brand::parse(b).ok())
                        .ok_or_else(bad)?,
                    last_deposit: codec::opt_string(&item, "lastDeposit")
                        .and_then(|t| parse_ts(&t).ok())
                        .ok_or_else(bad)?,
                    position: codec::opt_string(&item, keys::GSI3SK).ok_or_else(bad)?,
                })
            })
            .collect::<Result<_, StoreError>>()?;
        Ok((due, next))
    }

    /// Moves a timer to `due` (`None`: takes it out of the index), unless a deposit moved
    /// it since it was read.
    pub async fn settle_advance(&self, timer: &AdvanceDue, due: Option<OffsetDateTime>) -> Result<bool, StoreError> {
        let mut e = Expr::default();
        let pos = e.name(keys::GSI3SK);
        let cond = format!("{pos} = {}", e.value(s(&timer.position)));
        let update = match due {
            Some(due) => format!(
                "SET {pos} = {}",
                e.value(s(keys::advance_due_sk(due, &timer.customer, &timer.brand)))
            ),
            None => format!("REMOVE {pos}, {}", e.name(keys::GSI3PK)),
        };
        let key = codec::key(keys::customer_pk(&timer.customer), &keys::advance_sk(&timer.brand));
        Ok(self.conditional_update(key, update, cond, e).await?.is_some())
    }

    /// Marks the timer's customer dormant with its brand as of `at` and takes the timer out
    /// of the index, in one transaction conditional on the timer being as it was read (a
    /// deposit recorded meanwhile moved it: then nothing happens). `false` then.
    pub async fn advance_to_dormant(
        &self,
        timer: &AdvanceDue,
        at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut t = Expr::default();
        let pos = t.name(keys::GSI3SK);
        let timer_update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(codec::key(
                keys::customer_pk(&timer.customer),
                &keys::advance_sk(&timer.brand),
            )))
            .update_expression(format!("REMOVE {pos}, {}", t.name(keys::GSI3PK)))
            .condition_expression(format!("{pos} = {}", t.value(s(&timer.position))))
            .set_expression_attribute_names(Some(t.names))
            .set_expression_attribute_values(Some(t.values))
            .build()
            .map_err(|e| StoreError::Rejected(e.to_string()))?;
        let mut p = Expr::default();
        let attr = p.name(&keys::journey_attr(&timer.brand, Milestone::Dormant));
        let profile_update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(codec::key(keys::customer_pk(&timer.customer), keys::PROFILE_SK)))
            .update_expression(format!(
                "SET journeys.{attr} = if_not_exists(journeys.{attr}, {}), updatedAt = {} ADD version {}",
                p.value(ts(at)),
                p.value(ts(now)),
                p.value(n(1))
            ))
            .condition_expression("attribute_exists(PK) AND attribute_not_exists(mergedInto)")
            .set_expression_attribute_names(Some(p.names))
            .set_expression_attribute_values(Some(p.values))
            .build()
            .map_err(|e| StoreError::Rejected(e.to_string()))?;
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().update(timer_update).build())
            .transact_items(TransactWriteItem::builder().update(profile_update).build())
            .send()
            .await;
        Ok(applied(result)?.is_some())
    }

    /// A deposit showed a dormancy was premature: the customer is active again (retention
    /// 1).
    pub async fn reactivate(
        &self,
        customer: &CustomerId,
        brand: &Brand,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut e = Expr::default();
        let attr = e.name(&keys::journey_attr(brand, Milestone::Dormant));
        let update = format!(
            "REMOVE journeys.{attr} SET updatedAt = {} ADD version {}",
            e.value(ts(now)),
            e.value(n(1))
        );
        let cond = format!("attribute_not_exists(mergedInto) AND attribute_exists(journeys.{attr})");
        self.profile_update(customer, update, cond, e).await
    }

    async fn profile_update(
        &self,
        customer: &CustomerId,
        update: String,
        condition: String,
        e: Expr,
    ) -> Result<bool, StoreError> {
        let key = codec::key(keys::customer_pk(customer), keys::PROFILE_SK);
        Ok(self.conditional_update(key, update, condition, e).await?.is_some())
    }
}

/// The conversion event in a stream record's image (`None` for any other item).
pub fn event_from_image(image: serde_dynamo::Item) -> Result<Option<EventRecord>, StoreError> {
    let item: Item = image.into();
    let is_event = matches!(item.get(keys::ENTITY), Some(AttributeValue::S(e)) if e == crm_core::records::RecordKind::Event.as_str());
    if !is_event {
        return Ok(None);
    }
    let key = codec::opt_string(&item, keys::PK).unwrap_or_default();
    serde_dynamo::from_item(item)
        .map(Some)
        .map_err(|e| codec::corrupt(&key, e.to_string()))
}
