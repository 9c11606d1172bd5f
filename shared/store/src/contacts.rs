//! Explicit changes to a customer's addresses: choosing the primary (an admin call, recorded
//! on the timeline) and confirming an address (double opt-in).

use crm_core::identity::Identifier;
use crm_core::records::{ContactRecord, RecordKind};
use crm_core::values::CustomerId;
use time::OffsetDateTime;

use crate::codec::{self, Expr, n, s, ts};
use crate::keys;
use crate::{Store, StoreError};

/// The profile is live (not merged away, not erased) and lists `tag`.
fn lists(e: &mut Expr, tag: String) -> String {
    format!(
        "attribute_exists(PK) AND attribute_not_exists(mergedInto) AND attribute_not_exists(erasedAt) AND contains(identifiers, {})",
        e.value(s(tag))
    )
}

impl Store {
    /// Makes `identifier` the primary on `record.channel` and records the change on the
    /// customer's timeline, in one transaction. `false`: the profile does not list it (or was
    /// merged away or erased meanwhile).
    pub async fn choose_contact(&self, record: &ContactRecord, identifier: &Identifier) -> Result<bool, StoreError> {
        let mut e = Expr::default();
        let update = format!(
            "SET {} = {}, updatedAt = {} ADD version {}",
            e.name(&keys::chosen_contact_attr(record.channel)),
            e.value(s(identifier.tag())),
            e.value(ts(record.at)),
            e.value(n(1))
        );
        let cond = lists(&mut e, identifier.tag());
        let item = codec::record_item(
            record,
            RecordKind::Contact,
            &record.change_id,
            &record.customer_id,
            record.at,
            &self.retention,
        )?;
        let items = vec![
            codec::update(
                &self.table,
                codec::key(keys::customer_pk(&record.customer_id), keys::PROFILE_SK),
                update,
                Some(&cond),
                e,
            )?,
            codec::put(&self.table, item, "attribute_not_exists(PK)", Expr::default())?,
        ];
        self.transact_if(items).await
    }

    /// Records that the owner of `identifier` confirmed it. `false`: the profile does not
    /// list it. Confirming again keeps the first confirmation.
    pub async fn confirm_contact(
        &self,
        customer: &CustomerId,
        identifier: &Identifier,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut e = Expr::default();
        let attr = e.name(&keys::contact_attr(identifier));
        let confirmed = e.name("confirmedAt");
        let update = format!(
            "SET {attr}.{confirmed} = if_not_exists({attr}.{confirmed}, {}) ADD version {}",
            e.value(ts(at)),
            e.value(n(1))
        );
        let cond = format!("{} AND attribute_exists({attr})", lists(&mut e, identifier.tag()));
        Ok(self
            .conditional_update(
                codec::key(keys::customer_pk(customer), keys::PROFILE_SK),
                update,
                cond,
                e,
            )
            .await?
            .is_some())
    }
}

impl Store {
    /// Claims the one confirmation email of an address for a brand (double opt-in).
    /// `false`: one was sent before.
    pub async fn claim_confirmation(
        &self,
        channel: crm_core::definition::Channel,
        address_hash: &str,
        brand: &crm_core::values::Brand,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let (pk, sk) = keys::confirmation_key(channel, address_hash, brand);
        let mut item = codec::key(pk, &sk);
        item.insert(keys::ENTITY.into(), s(keys::entity::CONFIRMATION));
        item.insert("sentAt".into(), ts(at));
        let put = codec::put(&self.table, item, "attribute_not_exists(PK)", Expr::default())?;
        self.transact_if(vec![put]).await
    }

    /// Gives a claimed confirmation back (its email could not be sent).
    pub async fn release_confirmation(
        &self,
        channel: crm_core::definition::Channel,
        address_hash: &str,
        brand: &crm_core::values::Brand,
    ) -> Result<(), StoreError> {
        let (pk, sk) = keys::confirmation_key(channel, address_hash, brand);
        self.delete_key(codec::key(pk, &sk)).await
    }
}
