//! Where each source's click-log import stopped, and who is running it: one item per
//! source, `IMPORT#<sourceId>` / `CURSOR`. A run holds a lease on it (a token and an
//! expiry), so two runs never import the same source at once, and moves `until` only when
//! its whole window was imported.

use crm_core::values::parse_ts;
use time::OffsetDateTime;

use crate::codec::{self, Expr, s, ts};
use crate::keys::{self, entity};
use crate::{Store, StoreError};

impl Store {
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
