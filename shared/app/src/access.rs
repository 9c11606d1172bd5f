//! The people use cases: logging in and out, the session behind a request, and managing
//! users. Passwords are hashed with argon2id (OWASP's parameters: 19 MiB, two passes);
//! session tokens are 244 random bits, stored only as their SHA-256.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use crm_core::access::{Actor, AuditEntry};
use crm_core::access::{
    LOGIN_WINDOW, LOGINS_PER_ACCOUNT, LOGINS_PER_ACCOUNT_AND_ADDRESS, LOGINS_PER_ADDRESS, Password, Role, Session,
    User, login_window, session_needs_touch,
};
use crm_core::source::{KeyInfo, key_hash, key_last4};
use crm_core::values::{Email, format_ts};
use crm_store::{Store, StoreError};
use time::OffsetDateTime;

#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// The address or the password is wrong (never which).
    #[error("wrong email or password")]
    WrongCredentials,
    /// Too many attempts: try again at `until`.
    #[error("too many login attempts {scope}: try again after {until}")]
    TooManyAttempts { scope: &'static str, until: OffsetDateTime },
    /// The address already has a user.
    #[error("a user with this email exists")]
    Taken,
    #[error("no such user")]
    NoSuchUser,
    /// The change would leave no active owner.
    #[error("the last active owner cannot be removed, disabled or demoted")]
    LastOwner,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A fresh random token (256 bits): a session's, a form's.
pub fn new_token() -> String {
    let (a, b) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    format!("{}{}", a.simple(), b.simple())
}

pub fn hash_password(password: &Password) -> String {
    let salt = SaltString::from_b64(&uuid::Uuid::new_v4().simple().to_string()).expect("hex is valid base64 salt");
    Argon2::default()
        .hash_password(password.expose().as_bytes(), &salt)
        .expect("argon2 hashes any password")
        .to_string()
}

fn password_matches(hash: &str, candidate: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| Argon2::default().verify_password(candidate.as_bytes(), &parsed).is_ok())
}

/// A hash no password matches, verified for unknown addresses so that a wrong address costs
/// the same time as a wrong password.
fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password(&Password::parse(&new_token()).expect("a long token")))
}

/// Counts an attempt for the account from this address, the account, and the address;
/// refuses once any is spent.
async fn take_attempt(store: &Store, email: &str, ip: Option<&str>, now: OffsetDateTime) -> Result<(), AccessError> {
    let (start, end) = login_window(now);
    let period = format_ts(start);
    let expires = end + LOGIN_WINDOW;
    let account = key_hash(email);
    let ip = ip.unwrap_or("unknown");
    let counters = [
        (
            format!("acctip#{account}#{ip}"),
            LOGINS_PER_ACCOUNT_AND_ADDRESS,
            "for this account from this address",
        ),
        (format!("account#{account}"), LOGINS_PER_ACCOUNT, "for this account"),
        (format!("ip#{ip}"), LOGINS_PER_ADDRESS, "from this address"),
    ];
    for (who, limit, scope) in counters {
        if store.take_login_attempt(&who, &period, limit, expires).await?.is_none() {
            return Err(AccessError::TooManyAttempts { scope, until: end });
        }
    }
    Ok(())
}

/// Logs a person in: the new session and its token (for the cookie).
pub async fn login(
    store: &Store,
    email: &str,
    password: &str,
    ip: Option<&str>,
    now: OffsetDateTime,
) -> Result<(String, Session), AccessError> {
    let email = Email::parse(email).map_err(|_| AccessError::WrongCredentials)?;
    take_attempt(store, email.as_str(), ip, now).await?;
    let found = store.user_by_email(&email).await?;
    let hash = found.as_ref().map_or(decoy_hash(), |(_, h)| h.as_str());
    let matches = password_matches(hash, password);
    let user = match found {
        Some((user, _)) if matches && !user.disabled => user,
        _ => return Err(AccessError::WrongCredentials),
    };
    let token = new_token();
    let session = Session {
        user_id: user.user_id,
        email: user.email,
        role: user.role,
        csrf: new_token(),
        created_at: now,
        last_seen_at: now,
    };
    store.create_session(&key_hash(&token), &session).await?;
    Ok((token, session))
}

/// The live session a token names, its use recorded at most every few minutes.
pub async fn session(store: &Store, token: &str, now: OffsetDateTime) -> Result<Option<Session>, StoreError> {
    let hash = key_hash(token);
    let Some(mut session) = store.session(&hash).await? else {
        return Ok(None);
    };
    // Still good, and still its user's: removed, disabled or given another role since the
    // login, the session ends (whatever a lagging index let `delete_sessions_of` miss).
    let user = store.user(&session.user_id).await?;
    let current = user.is_some_and(|u| !u.disabled && u.role == session.role);
    if !session.live(now) || !current {
        store.delete_session(&hash).await?;
        return Ok(None);
    }
    if session_needs_touch(session.last_seen_at, now) {
        store.touch_session(&hash, now).await?;
        session.last_seen_at = now;
    }
    Ok(Some(session))
}

pub async fn logout(store: &Store, token: &str) -> Result<(), StoreError> {
    store.delete_session(&key_hash(token)).await
}

/// Ends every session of a user (log out everywhere, or an owner revoking them).
pub async fn logout_everywhere(store: &Store, user_id: &str) -> Result<usize, StoreError> {
    store.delete_sessions_of(user_id).await
}

/// Creates a user.
pub async fn create_user(
    store: &Store,
    email: Email,
    role: Role,
    password: &Password,
    now: OffsetDateTime,
) -> Result<User, AccessError> {
    let user = User {
        user_id: format!("usr_{}", uuid::Uuid::now_v7().simple()),
        email,
        role,
        disabled: false,
        created_at: now,
        updated_at: now,
    };
    if !store.create_user(&user, &hash_password(password)).await? {
        return Err(AccessError::Taken);
    }
    Ok(user)
}

/// Creates the first owner unless one exists with this address (`make dev`, a deploy's
/// parameter): `Some` when created.
pub async fn ensure_owner(
    store: &Store,
    email: Email,
    password: &Password,
    now: OffsetDateTime,
) -> Result<Option<User>, AccessError> {
    match create_user(store, email, Role::Owner, password, now).await {
        Ok(user) => Ok(Some(user)),
        Err(AccessError::Taken) => Ok(None),
        Err(e) => Err(e),
    }
}

/// What an owner may change of a user.
#[derive(Debug, Clone, Default)]
pub struct UserChange {
    pub role: Option<Role>,
    pub disabled: Option<bool>,
    pub password: Option<Password>,
}

/// An owner other than `user_id` who stays active, as read: a change that takes an owner
/// away is made on the condition that this one is unchanged when it is written, so two
/// owners demoting each other at once cannot both succeed.
async fn another_owner(store: &Store, user_id: &str) -> Result<Option<User>, StoreError> {
    Ok(store
        .users()
        .await?
        .into_iter()
        .find(|u| u.user_id != user_id && u.role == Role::Owner && !u.disabled))
}

/// How many times a change of people is decided again when someone changed meanwhile.
const USER_CHANGE_ATTEMPTS: usize = 3;

/// Changes a user; a new role, a disabled account or a new password ends its sessions.
pub async fn update_user(
    store: &Store,
    user_id: &str,
    change: UserChange,
    now: OffsetDateTime,
) -> Result<User, AccessError> {
    let hash = change.password.as_ref().map(hash_password);
    for _ in 0..USER_CHANGE_ATTEMPTS {
        let mut user = store.user(user_id).await?.ok_or(AccessError::NoSuchUser)?;
        let before = user.clone();
        if let Some(role) = change.role {
            user.role = role;
        }
        if let Some(disabled) = change.disabled {
            user.disabled = disabled;
        }
        let demoted = before.role == Role::Owner && !before.disabled && (user.role != Role::Owner || user.disabled);
        let guard = match demoted {
            true => Some(another_owner(store, user_id).await?.ok_or(AccessError::LastOwner)?),
            false => None,
        };
        user.updated_at = now;
        if !store.update_user(&user, hash.as_deref(), guard.as_ref()).await? {
            // The user is gone, or the owner relied on changed: decide again.
            continue;
        }
        if user.role != before.role || user.disabled || hash.is_some() {
            store.delete_sessions_of(user_id).await?;
        }
        return Ok(user);
    }
    Err(AccessError::Store(StoreError::Unavailable(
        "users kept changing; try again".into(),
    )))
}

/// Removes a user, its keys and its sessions.
pub async fn delete_user(store: &Store, user_id: &str) -> Result<User, AccessError> {
    for _ in 0..USER_CHANGE_ATTEMPTS {
        let user = store.user(user_id).await?.ok_or(AccessError::NoSuchUser)?;
        let guard = match user.role == Role::Owner && !user.disabled {
            true => Some(another_owner(store, user_id).await?.ok_or(AccessError::LastOwner)?),
            false => None,
        };
        if store.delete_user(&user, guard.as_ref()).await? {
            // Its sessions and keys name a user that is gone: each request re-reads the
            // user, so they stop working now; removed here for good.
            store.delete_sessions_of(user_id).await?;
            store.delete_user_keys(user_id).await?;
            return Ok(user);
        }
    }
    Err(AccessError::Store(StoreError::Unavailable(
        "users kept changing; try again".into(),
    )))
}

/// Prefix of a user's API key: recognisable in a leaked-secret scan, distinct from an
/// ingest source's `crm_`.
pub const USER_KEY_PREFIX: &str = "crmu_";

/// A new API key for a user (machines act with the user's role): shown once, stored as its
/// hash.
pub async fn new_user_key(store: &Store, user_id: &str, now: OffsetDateTime) -> Result<(String, KeyInfo), AccessError> {
    store.user(user_id).await?.ok_or(AccessError::NoSuchUser)?;
    let key = format!("{USER_KEY_PREFIX}{}", new_token());
    let info = KeyInfo {
        last4: key_last4(&key),
        created_at: now,
        revoked_at: None,
        requests: 0,
        last_used_at: None,
    };
    store.create_user_key(user_id, &key_hash(&key), &info).await?;
    Ok((key, info))
}

/// A user with their API keys (by last four characters: never a key or its hash).
pub type UserWithKeys = (User, Vec<KeyInfo>);

/// A user as read, with their API keys (one query).
pub async fn with_keys(store: &Store, user: User) -> Result<UserWithKeys, StoreError> {
    let keys = store
        .user_keys(&user.user_id)
        .await?
        .into_iter()
        .map(|(_, k)| k)
        .collect();
    Ok((user, keys))
}

/// A user and their API keys.
pub async fn user_with_keys(store: &Store, user_id: &str) -> Result<UserWithKeys, AccessError> {
    let user = user(store, user_id).await?;
    Ok(with_keys(store, user).await?)
}

/// A user.
pub async fn user(store: &Store, user_id: &str) -> Result<User, AccessError> {
    store.user(user_id).await?.ok_or(AccessError::NoSuchUser)
}

/// Every user who can log in.
pub async fn users(store: &Store) -> Result<Vec<User>, StoreError> {
    store.users().await
}

/// Every user who can log in, with their API keys (one query per user: there are few).
pub async fn users_with_keys(store: &Store) -> Result<Vec<UserWithKeys>, StoreError> {
    let mut all = Vec::new();
    for u in store.users().await? {
        all.push(with_keys(store, u).await?);
    }
    Ok(all)
}

/// Revokes a user's live keys ending in `last4` (they act no more at once): how many;
/// `NoSuchUser` when none of theirs does.
pub async fn revoke_user_key(
    store: &Store,
    user_id: &str,
    last4: &str,
    now: OffsetDateTime,
) -> Result<usize, AccessError> {
    match last4.len() {
        4 => match store.revoke_user_key(user_id, last4, now).await? {
            0 => Err(AccessError::NoSuchUser),
            n => Ok(n),
        },
        _ => Err(AccessError::NoSuchUser),
    }
}

/// A day's audit lines (UTC), newest first, before a position: up to `limit`, and where the
/// next page starts.
pub async fn audit_day(
    store: &Store,
    day: time::Date,
    limit: i32,
    before: Option<&str>,
) -> Result<(Vec<AuditEntry>, Option<String>), StoreError> {
    store.audit_day(day, limit, before).await
}

/// Who a user's API key speaks for: an enabled user, with its role now.
pub async fn actor_for_key(store: &Store, key: &str) -> Result<Option<Actor>, StoreError> {
    if !key.starts_with(USER_KEY_PREFIX) || key.len() > 100 {
        return Ok(None);
    }
    let Some(user_id) = store.user_of_key(&key_hash(key)).await? else {
        return Ok(None);
    };
    Ok(store.user(&user_id).await?.filter(|u| !u.disabled).map(|u| Actor {
        user_id: Some(u.user_id),
        name: u.email.as_str().to_owned(),
        role: u.role,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_matches_its_password_only() {
        let p = Password::parse("correct horse battery staple").unwrap();
        let hash = hash_password(&p);
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(password_matches(&hash, "correct horse battery staple"));
        assert!(!password_matches(&hash, "correct horse battery stapler"));
        assert!(!password_matches(decoy_hash(), ""));
        assert_ne!(hash, hash_password(&p), "salted");
    }
}
