//! Influencers, their campaigns and tracked links. A campaign's name is claimed by its own item in the same
//! transaction as the campaign, so two campaigns never share a name (without case), and a
//! click's campaign name finds its campaign in two reads.

use aws_sdk_dynamodb::types::AttributeValue;
use crm_core::link::{Link, LinkCode};
use crm_core::partners::{Campaign, Influencer};

use crate::codec::{self, Expr, s};
use crate::keys::{self, entity};
use crate::{Item, Store, StoreError, applied};

fn influencer_item(i: &Influencer) -> Result<Item, StoreError> {
    let mut item = codec::document_item(
        i,
        keys::influencer_pk(&i.influencer_id),
        keys::INFLUENCER_SK,
        entity::INFLUENCER,
    )?;
    item.insert(keys::GSI2PK.into(), s(keys::INFLUENCER_LIST));
    item.insert(keys::GSI2SK.into(), s(&i.influencer_id));
    item.insert("autoCreated".into(), AttributeValue::Bool(i.auto_created));
    Ok(item)
}

fn campaign_item(c: &Campaign) -> Result<Item, StoreError> {
    let mut item = codec::document_item(
        c,
        keys::campaign_pk(&c.campaign_id),
        keys::CAMPAIGN_SK,
        entity::CAMPAIGN,
    )?;
    item.insert(keys::GSI2PK.into(), s(keys::CAMPAIGN_LIST));
    item.insert(keys::GSI2SK.into(), s(&c.campaign_id));
    item.insert("autoCreated".into(), AttributeValue::Bool(c.auto_created));
    Ok(item)
}

fn link_item(l: &Link) -> Result<Item, StoreError> {
    let mut item = codec::document_item(l, keys::link_pk(&l.code), keys::LINK_SK, entity::LINK)?;
    item.insert(keys::GSI2PK.into(), s(keys::LINK_LIST));
    item.insert(keys::GSI2SK.into(), s(l.code.as_str()));
    Ok(item)
}

fn name_claim(c: &Campaign) -> Item {
    let mut item = codec::key(keys::campaign_name_pk(&c.name), keys::CAMPAIGN_NAME_SK);
    item.insert(keys::ENTITY.into(), s(entity::CAMPAIGN_NAME));
    item.insert("campaignId".into(), s(&c.campaign_id));
    item
}

/// How a put may find the item it writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutMode {
    /// New, or replacing an auto-created entry (an operator adopting it).
    Create,
    /// Replacing an existing entry.
    Replace,
    /// Created by the attribution function: only if nothing is there.
    Auto,
}

impl PutMode {
    fn condition(self, e: &mut Expr) -> String {
        match self {
            Self::Create => format!(
                "attribute_not_exists(PK) OR autoCreated = {}",
                e.value(AttributeValue::Bool(true))
            ),
            Self::Replace => "attribute_exists(PK)".into(),
            Self::Auto => "attribute_not_exists(PK)".into(),
        }
    }
}

impl Store {
    /// Writes an influencer; `false` when `mode`'s condition failed (an operator's entry
    /// exists, or the one to replace does not).
    pub async fn put_influencer(&self, i: &Influencer, mode: PutMode) -> Result<bool, StoreError> {
        let mut e = Expr::default();
        let condition = mode.condition(&mut e);
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(influencer_item(i)?))
            .condition_expression(condition)
            .set_expression_attribute_values((!e.values.is_empty()).then_some(e.values))
            .send()
            .await;
        Ok(applied(result)?.is_some())
    }

    /// Writes a link: `new` only if its code is free, else only over the existing one.
    /// `false` when that condition failed.
    pub async fn put_link(&self, l: &Link, new: bool) -> Result<bool, StoreError> {
        let condition = if new {
            "attribute_not_exists(PK)"
        } else {
            "attribute_exists(PK)"
        };
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(link_item(l)?))
            .condition_expression(condition)
            .send()
            .await;
        Ok(applied(result)?.is_some())
    }

    pub async fn link(&self, code: &LinkCode) -> Result<Option<Link>, StoreError> {
        self.get_as(keys::link_pk(code), keys::LINK_SK, codec::document_from_item)
            .await
    }

    /// Every link, archived ones too, by code.
    pub async fn links(&self) -> Result<Vec<Link>, StoreError> {
        self.list(keys::LINK_LIST).await
    }

    pub async fn influencer(&self, id: &str) -> Result<Option<Influencer>, StoreError> {
        self.get_as(keys::influencer_pk(id), keys::INFLUENCER_SK, codec::document_from_item)
            .await
    }

    pub async fn influencers(&self) -> Result<Vec<Influencer>, StoreError> {
        self.list(keys::INFLUENCER_LIST).await
    }

    /// `false` when there was none.
    pub async fn delete_influencer(&self, id: &str) -> Result<bool, StoreError> {
        self.delete_if_exists(codec::key(keys::influencer_pk(id), keys::INFLUENCER_SK))
            .await
    }

    pub async fn campaign(&self, id: &str) -> Result<Option<Campaign>, StoreError> {
        self.get_as(keys::campaign_pk(id), keys::CAMPAIGN_SK, codec::document_from_item)
            .await
    }

    /// The campaign a click names: by id, else by name (without case).
    pub async fn campaign_named(&self, reference: &str) -> Result<Option<Campaign>, StoreError> {
        if let Some(c) = self.campaign(reference).await? {
            return Ok(Some(c));
        }
        let claim = self
            .get_as(
                keys::campaign_name_pk(reference),
                keys::CAMPAIGN_NAME_SK,
                |item, key| codec::string(item, "campaignId", key),
            )
            .await?;
        match claim {
            Some(id) => self.campaign(&id).await,
            None => Ok(None),
        }
    }

    pub async fn campaigns(&self) -> Result<Vec<Campaign>, StoreError> {
        self.list(keys::CAMPAIGN_LIST).await
    }

    /// Writes a campaign and its name's claim in one transaction, releasing the claim of
    /// `previous` (the entry it replaces) when the name changed. `false` when a condition
    /// failed: the name belongs to another campaign, or `mode`'s condition.
    pub async fn put_campaign(
        &self,
        c: &Campaign,
        previous: Option<&Campaign>,
        mode: PutMode,
    ) -> Result<bool, StoreError> {
        let mut e = Expr::default();
        let condition = mode.condition(&mut e);
        let mut items = vec![codec::put(&self.table, campaign_item(c)?, &condition, e)?];
        let renamed = previous.is_none_or(|p| keys::campaign_name_pk(&p.name) != keys::campaign_name_pk(&c.name));
        if renamed {
            let mut e = Expr::default();
            let ours = e.value(s(&c.campaign_id));
            let cond = format!("attribute_not_exists(PK) OR campaignId = {ours}");
            items.push(codec::put(&self.table, name_claim(c), &cond, e)?);
        }
        if let Some(p) = previous.filter(|_| renamed) {
            let mut e = Expr::default();
            let cond = format!("campaignId = {}", e.value(s(&p.campaign_id)));
            let old = codec::key(keys::campaign_name_pk(&p.name), keys::CAMPAIGN_NAME_SK);
            items.push(codec::delete(&self.table, old, &cond, e)?);
        }
        self.transact_if(items).await
    }

    /// Deletes a campaign and its name's claim; `false` when there was none.
    pub async fn delete_campaign(&self, c: &Campaign) -> Result<bool, StoreError> {
        let mut e = Expr::default();
        let cond = format!("campaignId = {}", e.value(s(&c.campaign_id)));
        let items = vec![
            codec::delete(
                &self.table,
                codec::key(keys::campaign_pk(&c.campaign_id), keys::CAMPAIGN_SK),
                "attribute_exists(PK)",
                Expr::default(),
            )?,
            codec::delete(
                &self.table,
                codec::key(keys::campaign_name_pk(&c.name), keys::CAMPAIGN_NAME_SK),
                &cond,
                e,
            )?,
        ];
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        Ok(applied(result)?.is_some())
    }

    /// Every document of a GSI2 list, in key order (influencers and campaigns are few).
    pub(crate) async fn list<T: serde::de::DeserializeOwned>(&self, pk: &str) -> Result<Vec<T>, StoreError> {
        let q = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(keys::GSI2)
            .key_condition_expression("GSI2PK = :pk")
            .expression_attribute_values(":pk", s(pk));
        self.all_pages(q)
            .await?
            .iter()
            .map(|item| codec::document_from_item(item, pk))
            .collect()
    }

    async fn delete_if_exists(&self, key: Item) -> Result<bool, StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .condition_expression("attribute_exists(PK)")
            .send()
            .await;
        Ok(applied(result)?.is_some())
    }
}
