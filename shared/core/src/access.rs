//! The people who use the console and the admin API: their roles and what each may do, the
//! rules for passwords, how often one may try to log in, and how long a session lives.
//! Pure: the shell hashes passwords, stores sessions and reads the clock.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::values::{Email, Invalid};

/// A person who logs in. Their password is stored beside this, as an argon2id hash, and
/// never leaves the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub user_id: String,
    pub email: Email,
    pub role: Role,
    #[serde(default)]
    pub disabled: bool,
    #[serde(with = "crate::values::ts")]
    pub created_at: OffsetDateTime,
    #[serde(with = "crate::values::ts")]
    pub updated_at: OffsetDateTime,
}

/// A logged-in person's session as a request sees it: who, with which role (copied at login;
/// a change of role or a disabled account ends the user's sessions), and the token that
/// the session's forms carry against cross-site requests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    pub user_id: String,
    pub email: Email,
    pub role: Role,
    pub csrf: String,
    #[serde(with = "crate::values::ts")]
    pub created_at: OffsetDateTime,
    #[serde(with = "crate::values::ts")]
    pub last_seen_at: OffsetDateTime,
}

impl Session {
    /// Still good at `now` (`session_live`).
    pub fn live(&self, now: OffsetDateTime) -> bool {
        session_live(self.created_at, self.last_seen_at, now)
    }
}

/// What a person may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything, users included.
    Owner,
    /// Everything but users.
    Manager,
    /// Reads everything, with personal data masked; changes nothing.
    Analyst,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Owner, Role::Manager, Role::Analyst];

    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "owner" => Ok(Self::Owner),
            "manager" => Ok(Self::Manager),
            "analyst" => Ok(Self::Analyst),
            _ => Err(Invalid::new("invalid_value", "role must be owner, manager or analyst")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Manager => "manager",
            Self::Analyst => "analyst",
        }
    }

    /// May change anything at all (journeys, templates, settings, sources, partners …).
    pub fn may_change(self) -> bool {
        self != Self::Analyst
    }

    /// May create, change and remove users and their keys, and end their sessions.
    pub fn manages_users(self) -> bool {
        self == Self::Owner
    }

    /// Sees emails, phones, names, addresses and user ids as they are.
    pub fn sees_personal_data(self) -> bool {
        self != Self::Analyst
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who made a request: a logged-in user, a user's API key, or the deployment's break-glass
/// `ADMIN_API_KEY`. Always what authentication established, never a header the caller set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Actor {
    /// `None`: the break-glass key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// The user's email, or `ADMIN_API_KEY`.
    pub name: String,
    pub role: Role,
}

impl Actor {
    /// The deployment's `ADMIN_API_KEY`: an owner with no user behind it.
    pub fn break_glass() -> Self {
        Self {
            user_id: None,
            name: "ADMIN_API_KEY".into(),
            role: Role::Owner,
        }
    }
}

impl From<&Session> for Actor {
    fn from(s: &Session) -> Self {
        Self {
            user_id: Some(s.user_id.clone()),
            name: s.email.as_str().to_owned(),
            role: s.role,
        }
    }
}

/// One line of the audit log: a change, or a read of unmasked personal data. Written once,
/// never changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    pub id: String,
    #[serde(with = "crate::values::ts")]
    pub at: OffsetDateTime,
    pub actor: Actor,
    /// What was done: `<METHOD> <route>` (`PUT /api/brands/{brand}/journey`) or a console
    /// action (`login`, `logout`).
    pub action: String,
    /// What it was done to: the request's path (its ids), never its body.
    pub target: String,
    /// The client address API Gateway reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// The answer's status.
    pub status: u16,
}

/// A password as chosen: 12 to 128 characters, not only spaces. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

pub const MIN_PASSWORD: usize = 12;
pub const MAX_PASSWORD: usize = 128;

impl Password {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let n = raw.chars().count();
        if n < MIN_PASSWORD {
            let message = format!("a password has at least {MIN_PASSWORD} characters");
            return Err(Invalid::new("too_short", message));
        }
        if n > MAX_PASSWORD {
            let message = format!("a password has at most {MAX_PASSWORD} characters");
            return Err(Invalid::new("too_long", message));
        }
        if raw.trim().is_empty() {
            return Err(Invalid::new("invalid_value", "a password is more than spaces"));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(…)")
    }
}

/// Login attempts allowed in one `LOGIN_WINDOW`: for one account from one client address
/// (what a guesser gets), for one account from anywhere (a distributed guesser; high
/// enough that nobody locks a person out from one address), and from one address.
pub const LOGINS_PER_ACCOUNT_AND_ADDRESS: u32 = 10;
pub const LOGINS_PER_ACCOUNT: u32 = 100;
pub const LOGINS_PER_ADDRESS: u32 = 50;
pub const LOGIN_WINDOW: Duration = Duration::minutes(15);

/// The window an attempt at `now` counts in (its start), and when it ends.
pub fn login_window(now: OffsetDateTime) -> (OffsetDateTime, OffsetDateTime) {
    let len = LOGIN_WINDOW.whole_seconds();
    let start = now.unix_timestamp().div_euclid(len) * len;
    let start = OffsetDateTime::from_unix_timestamp(start).expect("a window start is a valid time");
    (start, start + LOGIN_WINDOW)
}

/// A session ends after this long without a request …
pub const SESSION_IDLE: Duration = Duration::hours(2);
/// … and this long after it began, whatever happens.
pub const SESSION_LIFETIME: Duration = Duration::hours(12);
/// A session's last use is written at most this often (each write is a request).
pub const SESSION_TOUCH_EVERY: Duration = Duration::minutes(5);

/// Whether a session begun at `created` and last used at `last_seen` is still good at `now`.
pub fn session_live(created: OffsetDateTime, last_seen: OffsetDateTime, now: OffsetDateTime) -> bool {
    now < created + SESSION_LIFETIME && now < last_seen + SESSION_IDLE
}

/// Whether a request at `now` should record itself as the session's last use.
pub fn session_needs_touch(last_seen: OffsetDateTime, now: OffsetDateTime) -> bool {
    now >= last_seen + SESSION_TOUCH_EVERY
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_decide_what_a_person_may_do() {
        assert!(Role::Owner.manages_users() && Role::Owner.may_change());
        assert!(!Role::Manager.manages_users() && Role::Manager.may_change() && Role::Manager.sees_personal_data());
        assert!(!Role::Analyst.may_change() && !Role::Analyst.sees_personal_data());
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Ok(r));
        }
        assert!(Role::parse("admin").is_err());
    }

    #[test]
    fn passwords_are_long_enough_and_never_printed() {
        assert!(Password::parse("short").is_err());
        assert!(Password::parse(&" ".repeat(20)).is_err());
        assert!(Password::parse(&"x".repeat(129)).is_err());
        let p = Password::parse("correct horse battery").unwrap();
        assert_eq!(format!("{p:?}"), "Password(…)");
    }

    #[test]
    fn a_session_ends_when_idle_or_old() {
        let t0 = OffsetDateTime::UNIX_EPOCH;
        assert!(session_live(t0, t0, t0 + Duration::minutes(119)));
        assert!(!session_live(t0, t0, t0 + SESSION_IDLE));
        let busy = t0 + SESSION_LIFETIME - Duration::minutes(1);
        assert!(session_live(t0, busy, busy));
        assert!(!session_live(t0, busy, t0 + SESSION_LIFETIME));
        assert!(!session_needs_touch(t0, t0 + Duration::minutes(4)));
        assert!(session_needs_touch(t0, t0 + SESSION_TOUCH_EVERY));
    }

    #[test]
    fn login_windows_are_fixed_quarters_of_an_hour() {
        let at = OffsetDateTime::from_unix_timestamp(1_800_000_123).unwrap();
        let (start, end) = login_window(at);
        assert!(start <= at && at < end && end - start == LOGIN_WINDOW);
        assert_eq!(start.unix_timestamp() % 900, 0);
    }
}
