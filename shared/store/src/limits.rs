//! Counters that bound what a brand sends (its daily budget per channel, and the first
//! messages to new public-source addresses per hour: the burst guard) and how often anyone
//! may try to log in. One conditional
//! `UpdateItem` takes a unit while the count is under the limit; the items expire two days
//! after their period.

use crm_core::values::Brand;
use time::OffsetDateTime;

use crate::codec::{self, Expr, n, s};
use crate::keys::{self, entity};
use crate::{Store, StoreError};

impl Store {
    /// Takes one unit of the counter `name` of `brand` for `period` (a day or an hour,
    /// formatted by the caller) while fewer than `limit` are taken. `Some(count)` with the
    /// count after taking it; `None` when the limit is reached.
    pub async fn take_limit(
        &self,
        brand: &Brand,
        name: &str,
        period: &str,
        limit: u32,
        expires: OffsetDateTime,
    ) -> Result<Option<u32>, StoreError> {
        self.take_unit(keys::limit_pk(brand, name), period, limit, expires)
            .await
    }

    /// Takes one login attempt of `who` (`account#<hash>` or `ip#<address>`) in the window
    /// starting at `period`, while fewer than `limit` are taken; `None`: no more now.
    pub async fn take_login_attempt(
        &self,
        who: &str,
        period: &str,
        limit: u32,
        expires: OffsetDateTime,
    ) -> Result<Option<u32>, StoreError> {
        self.take_unit(keys::login_limit_pk(who), period, limit, expires).await
    }

    async fn take_unit(
        &self,
        pk: String,
        period: &str,
        limit: u32,
        expires: OffsetDateTime,
    ) -> Result<Option<u32>, StoreError> {
        let mut e = Expr::default();
        let used = e.name("used");
        let update = format!(
            "ADD {used} {} SET {} = {}, {} = {}",
            e.value(n(1)),
            e.name(keys::ENTITY),
            e.value(s(entity::LIMIT)),
            e.name(keys::TTL),
            e.value(n(expires.unix_timestamp()))
        );
        let cond = format!("attribute_not_exists({used}) OR {used} < {}", e.value(n(limit)));
        let item = self.conditional_update(codec::key(pk, period), update, cond, e).await?;
        Ok(item.map(|i| match i.get("used") {
            Some(aws_sdk_dynamodb::types::AttributeValue::N(v)) => v.parse().unwrap_or(limit),
            _ => limit,
        }))
    }
}
