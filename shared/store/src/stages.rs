//! Customers at each stage, per brand: a gauge the journey function moves from the stream.
//! Each move is one transaction: the customer's own marker of the stage it is counted at
//! (`CUSTOMER#<id>` / `STAGE#<brand>`, changed only from the stage it holds) and the brand's
//! counts (`STAGES#<brand>` / `COUNT`, one number per milestone). A stream record seen
//! twice finds the marker moved already and counts nothing.

use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::AttributeValue;
use crm_core::journey::Milestone;
use crm_core::values::{Brand, CustomerId};

use crate::codec::{self, Expr, n, s};
use crate::keys::{self, entity};
use crate::{Store, StoreError};

impl Store {
    /// Moves `customer` from stage `from` to `to` with `brand` (`None`: not counted). `false`
    /// when its marker was not at `from` (this move was counted already).
    pub async fn move_stage(
        &self,
        customer: &CustomerId,
        brand: &Brand,
        from: Option<Milestone>,
        to: Option<Milestone>,
    ) -> Result<bool, StoreError> {
        let mut e = Expr::default();
        let stage = e.name("stage");
        let mut update = format!("SET {} = {}", e.name(keys::ENTITY), e.value(s(entity::STAGE)));
        match to {
            Some(m) => update.push_str(&format!(", {stage} = {}", e.value(s(m.as_str())))),
            None => update.push_str(&format!(" REMOVE {stage}")),
        }
        let condition = match from {
            Some(m) => format!("{stage} = {}", e.value(s(m.as_str()))),
            None => format!("attribute_not_exists({stage})"),
        };
        let marker = codec::update(
            &self.table,
            codec::key(keys::customer_pk(customer), &keys::stage_sk(brand)),
            update,
            Some(&condition),
            e,
        )?;
        let mut e = Expr::default();
        let mut adds = Vec::new();
        for (m, delta) in [(from, -1), (to, 1)] {
            if let Some(m) = m {
                adds.push(format!("{} {}", e.name(m.as_str()), e.value(n(delta))));
            }
        }
        let counts = codec::update(
            &self.table,
            codec::key(keys::stages_pk(brand), keys::STAGES_SK),
            format!(
                "SET {} = {} ADD {}",
                e.name(keys::ENTITY),
                e.value(s(entity::STAGE_COUNTS)),
                adds.join(", ")
            ),
            None,
            e,
        )?;
        self.counting_transaction(vec![marker, counts]).await
    }

    /// How many customers are at each stage with `brand` (one read).
    pub async fn stage_counts(&self, brand: &Brand) -> Result<BTreeMap<Milestone, i64>, StoreError> {
        let item = self.get(keys::stages_pk(brand), keys::STAGES_SK).await?;
        Ok(Milestone::ALL
            .into_iter()
            .map(|m| {
                let count = match item.as_ref().and_then(|i| i.get(m.as_str())) {
                    Some(AttributeValue::N(v)) => v.parse().unwrap_or(0),
                    _ => 0,
                };
                (m, count)
            })
            .collect())
    }
}
