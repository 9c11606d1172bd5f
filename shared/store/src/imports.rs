//! Where each source's click-log import stopped, and who is running it: one item per
//! source, `IMPORT#<sourceId>` / `CURSOR`. A run holds a lease on it (a token and an
//! expiry), so two runs never import the same source at once, and moves `until` only when
//! its whole window was imported. The import reads the clicks a page names in batches and
//! fills in what a recorded click lacked.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use aws_sdk_dynamodb::types::AttributeValue;
use crm_core::records::{ClickFill, ClickRecord, RecordKind};
use crm_core::values::parse_ts;
use time::OffsetDateTime;

use crate::codec::{self, Expr, s, ts};
use crate::keys::{self, entity};
use crate::{Store, StoreError};

/// Keys per `BatchGetItem` (DynamoDB's limit).
const BATCH: usize = 100;

impl Store {
    /// The recorded clicks among `click_ids`, by id (100 per request).
    pub async fn clicks_by_id(&self, click_ids: &[&str]) -> Result<HashMap<String, ClickRecord>, StoreError> {
        let mut found = HashMap::new();
        for chunk in click_ids.chunks(BATCH) {
            let wanted: BTreeSet<(String, &'static str)> = chunk
                .iter()
                .map(|id| (keys::record_pk(RecordKind::Click, id), RecordKind::Click.as_str()))
                .collect();
            for (pk, item) in self.batch_get(wanted).await? {
                let click: ClickRecord =
                    serde_dynamo::from_item(item).map_err(|e| codec::corrupt(&pk, e.to_string()))?;
                found.insert(click.click_id.clone(), click);
            }
        }
        Ok(found)
    }

    /// Adds what a recorded click lacked (`ClickRecord::fill_from`), never over a value it
    /// has and never to an erased click, whatever happened since it was read.
    pub async fn fill_click(&self, click_id: &str, fill: &ClickFill) -> Result<(), StoreError> {
        let mut e = Expr::default();
        let mut set = Vec::new();
        for (attr, value) in [
            ("ip", &fill.ip),
            ("userAgent", &fill.user_agent),
            ("landingPage", &fill.landing_page),
            ("referrer", &fill.referrer),
        ] {
            if let Some(v) = value {
                let name = e.name(attr);
                set.push(format!("{name} = if_not_exists({name}, {})", e.value(s(v))));
            }
        }
        if let Some(params) = &fill.params {
            let map: BTreeMap<String, AttributeValue> = params.iter().map(|(k, v)| (k.clone(), s(v))).collect();
            set.push(format!(
                "{} = {}",
                e.name("params"),
                e.value(AttributeValue::M(map.into_iter().collect()))
            ));
        }
        if set.is_empty() {
            return Ok(());
        }
        let update = format!("SET {}", set.join(", "));
        let condition = format!(
            "attribute_exists({}) AND attribute_not_exists({})",
            e.name(keys::PK),
            e.name("erasedAt")
        );
        let key = codec::key(keys::record_pk(RecordKind::Click, click_id), RecordKind::Click.as_str());
        self.conditional_update(key, update, condition, e).await?;
        Ok(())
    }

    /// Takes the source's import lease until `lease_until` unless another run holds it;
    /// `Some(until)`: taken, and where the last complete run stopped (`None`: never ran).
    pub async fn take_import(
        &self,
        source_id: &str,
        token: &str,
        lease_until: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<Option<Option<OffsetDateTime>>, StoreError> {
        let mut e = Expr::default();
        let (lease, holder) = (e.name("leaseUntil"), e.name("leaseToken"));
        let update = format!(
            "SET {lease} = {}, {holder} = {}, {} = {}",
            e.value(ts(lease_until)),
            e.value(s(token)),
            e.name(keys::ENTITY),
            e.value(s(entity::IMPORT_CURSOR))
        );
        let cond = format!("attribute_not_exists({lease}) OR {lease} < {}", e.value(ts(now)));
        let key = codec::key(keys::import_pk(source_id), keys::IMPORT_SK);
        let Some(item) = self.conditional_update(key, update, cond, e).await? else {
            return Ok(None);
        };
        let until = codec::opt_string(&item, "until").and_then(|u| parse_ts(&u).ok());
        Ok(Some(until))
    }

    /// Gives the lease back; `until`: the run imported everything up to it.
    pub async fn finish_import(
        &self,
        source_id: &str,
        token: &str,
        until: Option<OffsetDateTime>,
    ) -> Result<(), StoreError> {
        let mut e = Expr::default();
        let (lease, holder) = (e.name("leaseUntil"), e.name("leaseToken"));
        let mut update = format!("REMOVE {lease}, {holder}");
        if let Some(until) = until {
            update = format!("SET {} = {} {update}", e.name("until"), e.value(ts(until)));
        }
        let cond = format!("{holder} = {}", e.value(s(token)));
        let key = codec::key(keys::import_pk(source_id), keys::IMPORT_SK);
        if self.conditional_update(key, update, cond, e).await?.is_none() {
            tracing::warn!(
                source_id,
                "an import's lease had expired and was taken over before it finished"
            );
        }
        Ok(())
    }
}
