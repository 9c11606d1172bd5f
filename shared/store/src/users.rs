//! Console users, their sessions and the login attempt counters.
//!
//! - `USER#<id>` / `USER`: the user's `document` and, beside it, `passwordHash` (never in
//!   the document, so no list ever carries it); GSI2 `USERS` / `<email>`.
//! - `USEREMAIL#<email>` / `USEREMAIL`: `userId`, written with the user in one transaction:
//!   an address belongs to one user.
//! - `SESSION#<sha256 of the token>` / `SESSION`: the session's `document`; `removeAt`
//!   (TTL) at its absolute end; GSI1 `USER#<id>` / `SESSION#<createdAt>#<hash>` (a user's
//!   sessions, to end them all).
//! - `USERKEY#<sha256 of the key>` / `USERKEY`: a user's API key: `userId`, `document`
//!   (`last4`, `createdAt`, `revokedAt`); GSI1 `USER#<id>` / `KEY#<last4>`.
//! - `AUDIT#<UTC day>` / `<at>#<id>`: the audit log, one `document` per line.

use aws_sdk_dynamodb::types::AttributeValue;
use crm_core::access::{AuditEntry, SESSION_LIFETIME, Session, User};
use crm_core::source::KeyInfo;
use crm_core::values::Email;
use time::OffsetDateTime;

use crate::codec::{self, Expr, n, s};
use crate::keys::{self, entity};
use crate::{Item, Store, StoreError, classify};

fn user_item(u: &User, password_hash: &str) -> Result<Item, StoreError> {
    let mut item = codec::document_item(u, keys::user_pk(&u.user_id), keys::USER_SK, entity::USER)?;
    item.insert("passwordHash".into(), s(password_hash));
    item.insert(keys::GSI2PK.into(), s(keys::USER_LIST));
    item.insert(keys::GSI2SK.into(), s(u.email.as_str()));
    Ok(item)
}

fn email_claim(u: &User) -> Item {
    let mut item = codec::key(keys::user_email_pk(&u.email), keys::USER_EMAIL_SK);
    item.insert(keys::ENTITY.into(), s(entity::USER_EMAIL));
    item.insert("userId".into(), s(&u.user_id));
    item
}

impl Store {
    /// Creates a user and claims its address; `false` when the address has a user.
    pub async fn create_user(&self, u: &User, password_hash: &str) -> Result<bool, StoreError> {
        let items = vec![
            codec::put(
                &self.table,
                user_item(u, password_hash)?,
                "attribute_not_exists(PK)",
                Expr::default(),
            )?,
            codec::put(&self.table, email_claim(u), "attribute_not_exists(PK)", Expr::default())?,
        ];
        self.transact_if(items).await
    }

    /// Replaces a user's document (role, disabled) and, when given, its password hash;
    /// `false` when there is no such user, or `guard` (another user, as read) changed
    /// meanwhile.
    pub async fn update_user(
        &self,
        u: &User,
        password_hash: Option<&str>,
        guard: Option<&User>,
    ) -> Result<bool, StoreError> {
        let mut e = Expr::default();
        let mut update = format!("SET {} = {}", e.name("document"), e.value(codec::doc(u)?));
        if let Some(hash) = password_hash {
            update.push_str(&format!(", {} = {}", e.name("passwordHash"), e.value(s(hash))));
        }
        let key = codec::key(keys::user_pk(&u.user_id), keys::USER_SK);
        let mut items = vec![codec::update(
            &self.table,
            key,
            update,
            Some("attribute_exists(PK)"),
            e,
        )?];
        items.extend(guard.map(|g| self.unchanged(g)).transpose()?);
        self.transact_if(items).await
    }

    /// A transaction's check that `u` is as it was read (its `updatedAt` unchanged): an
    /// owner other changes rely on cannot be demoted by a concurrent change.
    fn unchanged(&self, u: &User) -> Result<aws_sdk_dynamodb::types::TransactWriteItem, StoreError> {
        let mut e = Expr::default();
        let condition = format!(
            "{}.{} = {}",
            e.name("document"),
            e.name("updatedAt"),
            e.value(codec::ts(u.updated_at))
        );
        let check = aws_sdk_dynamodb::types::ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(codec::key(keys::user_pk(&u.user_id), keys::USER_SK)))
            .condition_expression(condition)
            .set_expression_attribute_names(Some(e.names))
            .set_expression_attribute_values(Some(e.values))
            .build()
            .map_err(|e| StoreError::Rejected(e.to_string()))?;
        Ok(aws_sdk_dynamodb::types::TransactWriteItem::builder()
            .condition_check(check)
            .build())
    }

    /// Deletes a user and its address claim; `false` when there was none, or `guard`
    /// changed meanwhile.
    pub async fn delete_user(&self, u: &User, guard: Option<&User>) -> Result<bool, StoreError> {
        let mut e = Expr::default();
        let cond = format!("userId = {}", e.value(s(&u.user_id)));
        let mut items = vec![
            codec::delete(
                &self.table,
                codec::key(keys::user_pk(&u.user_id), keys::USER_SK),
                "attribute_exists(PK)",
                Expr::default(),
            )?,
            codec::delete(
                &self.table,
                codec::key(keys::user_email_pk(&u.email), keys::USER_EMAIL_SK),
                &cond,
                e,
            )?,
        ];
        items.extend(guard.map(|g| self.unchanged(g)).transpose()?);
        self.transact_if(items).await
    }

    pub async fn user(&self, user_id: &str) -> Result<Option<User>, StoreError> {
        self.get_as(keys::user_pk(user_id), keys::USER_SK, codec::document_from_item)
            .await
    }

    /// The user of an address, with its password hash (for a login, nothing else).
    pub async fn user_by_email(&self, email: &Email) -> Result<Option<(User, String)>, StoreError> {
        let claim = self
            .get_as(keys::user_email_pk(email), keys::USER_EMAIL_SK, |item, key| {
                codec::string(item, "userId", key)
            })
            .await?;
        let Some(user_id) = claim else { return Ok(None) };
        let pk = keys::user_pk(&user_id);
        self.get_as(pk, keys::USER_SK, |item, key| {
            Ok((
                codec::document_from_item(item, key)?,
                codec::string(item, "passwordHash", key)?,
            ))
        })
        .await
    }

    /// Every user, by address.
    pub async fn users(&self) -> Result<Vec<User>, StoreError> {
        self.list(keys::USER_LIST).await
    }

    /// Stores a new session under the hash of its token.
    pub async fn create_session(&self, token_hash: &str, session: &Session) -> Result<(), StoreError> {
        let mut item = codec::document_item(session, keys::session_pk(token_hash), keys::SESSION_SK, entity::SESSION)?;
        item.insert(keys::GSI1PK.into(), s(keys::user_pk(&session.user_id)));
        item.insert(
            keys::GSI1SK.into(),
            s(keys::session_gsi1sk(session.created_at, token_hash)),
        );
        let end = session.created_at + SESSION_LIFETIME;
        item.insert(keys::TTL.into(), n(end.unix_timestamp()));
        if !self.put_new(item).await? {
            return Err(StoreError::Rejected("a session token was used twice".into()));
        }
        Ok(())
    }

    pub async fn session(&self, token_hash: &str) -> Result<Option<Session>, StoreError> {
        self.get_as(
            keys::session_pk(token_hash),
            keys::SESSION_SK,
            codec::document_from_item,
        )
        .await
    }

    /// Records the session's use at `now` (callers do it at most every few minutes).
    pub async fn touch_session(&self, token_hash: &str, now: OffsetDateTime) -> Result<(), StoreError> {
        let mut e = Expr::default();
        let update = format!(
            "SET {}.{} = {}",
            e.name("document"),
            e.name("lastSeenAt"),
            e.value(codec::ts(now))
        );
        let key = codec::key(keys::session_pk(token_hash), keys::SESSION_SK);
        self.conditional_update(key, update, "attribute_exists(PK)".to_owned(), e)
            .await?;
        Ok(())
    }

    /// Ends one session.
    pub async fn delete_session(&self, token_hash: &str) -> Result<(), StoreError> {
        self.delete_key(codec::key(keys::session_pk(token_hash), keys::SESSION_SK))
            .await
    }

    /// Ends every session of a user; how many there were.
    pub async fn delete_sessions_of(&self, user_id: &str) -> Result<usize, StoreError> {
        let q = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(keys::GSI1)
            .key_condition_expression("GSI1PK = :pk AND begins_with(GSI1SK, :s)")
            .expression_attribute_values(":pk", s(keys::user_pk(user_id)))
            .expression_attribute_values(":s", s(keys::SESSION_SK));
        let items = self.all_pages(q).await?;
        for item in &items {
            if let Some(AttributeValue::S(pk)) = item.get(keys::PK) {
                self.delete_key(codec::key(pk.clone(), keys::SESSION_SK)).await?;
            }
        }
        Ok(items.len())
    }
}

impl Store {
    /// Appends a line to the audit log (`AUDIT#<UTC day>` / `<at>#<id>`): put once, never
    /// updated (the functions' IAM denies updating or deleting `AUDIT#` items).
    pub async fn append_audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        let item = codec::document_item(
            entry,
            keys::audit_pk(codec::utc_day(entry.at)),
            &keys::audit_sk(entry.at, &entry.id),
            entity::AUDIT,
        )?;
        self.put_new(item).await?;
        Ok(())
    }

    /// Up to `limit` lines of one UTC day, newest first, after `before` (an entry's sort key
    /// from the previous page); the last one's sort key when more may follow.
    pub async fn audit_day(
        &self,
        day: time::Date,
        limit: i32,
        before: Option<&str>,
    ) -> Result<(Vec<AuditEntry>, Option<String>), StoreError> {
        let pk = keys::audit_pk(day);
        let mut q = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("PK = :pk")
            .expression_attribute_values(":pk", s(&pk))
            .scan_index_forward(false)
            .limit(limit);
        if let Some(sk) = before {
            let mut start = codec::key(pk.clone(), sk);
            start.retain(|k, _| k == keys::PK || k == keys::SK);
            q = q.set_exclusive_start_key(Some(start));
        }
        let out = q.send().await.map_err(classify)?;
        let entries = out
            .items
            .unwrap_or_default()
            .iter()
            .map(|item| codec::document_from_item(item, &pk))
            .collect::<Result<Vec<AuditEntry>, _>>()?;
        let next = out
            .last_evaluated_key
            .and_then(|k| k.get(keys::SK).and_then(|v| v.as_s().ok()).cloned());
        Ok((entries, next))
    }
}

impl Store {
    /// Stores a user's new API key (by its hash).
    pub async fn create_user_key(&self, user_id: &str, key_hash: &str, info: &KeyInfo) -> Result<(), StoreError> {
        let mut item = codec::document_item(info, keys::user_key_pk(key_hash), keys::USER_KEY_SK, entity::USER_KEY)?;
        item.insert("userId".into(), s(user_id));
        item.insert(keys::GSI1PK.into(), s(keys::user_pk(user_id)));
        item.insert(keys::GSI1SK.into(), s(keys::user_key_gsi1sk(&info.last4)));
        self.put(item).await
    }

    /// The user a key belongs to, if the key is known and not revoked.
    pub async fn user_of_key(&self, key_hash: &str) -> Result<Option<String>, StoreError> {
        let found = self
            .get_as(keys::user_key_pk(key_hash), keys::USER_KEY_SK, |item, key| {
                let info: KeyInfo = codec::document_from_item(item, key)?;
                Ok((codec::string(item, "userId", key)?, info.revoked_at.is_none()))
            })
            .await?;
        Ok(found.filter(|(_, live)| *live).map(|(user, _)| user))
    }

    /// A user's keys (by their last four characters), newest last.
    pub async fn user_keys(&self, user_id: &str) -> Result<Vec<(String, KeyInfo)>, StoreError> {
        let q = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(keys::GSI1)
            .key_condition_expression("GSI1PK = :pk AND begins_with(GSI1SK, :k)")
            .expression_attribute_values(":pk", s(keys::user_pk(user_id)))
            .expression_attribute_values(":k", s(keys::user_key_gsi1sk("")));
        self.all_pages(q)
            .await?
            .iter()
            .map(|item| {
                let pk = codec::string(item, keys::PK, "user key")?;
                let info = codec::document_from_item(item, &pk)?;
                Ok((pk, info))
            })
            .collect()
    }

    /// Revokes a user's keys ending in `last4`; how many.
    pub async fn revoke_user_key(&self, user_id: &str, last4: &str, now: OffsetDateTime) -> Result<usize, StoreError> {
        let mut revoked = 0;
        for (pk, info) in self.user_keys(user_id).await? {
            if info.last4 != last4 || info.revoked_at.is_some() {
                continue;
            }
            let mut e = Expr::default();
            let update = format!(
                "SET {}.{} = {}",
                e.name("document"),
                e.name("revokedAt"),
                e.value(codec::ts(now))
            );
            self.conditional_update(
                codec::key(pk, keys::USER_KEY_SK),
                update,
                "attribute_exists(PK)".to_owned(),
                e,
            )
            .await?;
            revoked += 1;
        }
        Ok(revoked)
    }

    /// Deletes every key of a user (the user is being removed).
    pub async fn delete_user_keys(&self, user_id: &str) -> Result<(), StoreError> {
        for (pk, _) in self.user_keys(user_id).await? {
            self.delete_key(codec::key(pk, keys::USER_KEY_SK)).await?;
        }
        Ok(())
    }
}
