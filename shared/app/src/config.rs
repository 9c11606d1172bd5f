//! Typed configuration, read once at cold start. A bad value fails fast naming its variable.
//! The same names appear in `template.yaml`, `.env.example` and the README's table.

use std::fmt;

use crm_core::input::Defaults;
use crm_core::quiet::ZoneName;
use crm_core::retention::Retention;
use crm_core::unsubscribe::{Keys, MIN_SECRET_LEN as UNSUBSCRIBE_MIN_LEN};
use crm_core::values::{Brand, Currency, Email, PhoneRegion};
use time::Duration;

#[derive(Debug, thiserror::Error)]
#[error("configuration variable {var}: {message}")]
pub struct ConfigError {
    pub var: &'static str,
    pub message: String,
}

/// A setting a function cannot serve without, checked at its cold start: missing, the
/// function fails to start, naming the variable (Lambda counts an invocation error, which
/// `<Fn>ErrorsAlarm` reports), instead of answering 500 to every request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// `UNSUBSCRIBE_SECRET`: unsubscribe links, the suppression list's keyed hashes.
    UnsubscribeSecret,
    /// `SOURCE_SECRET`: issuing signing sources' secrets, and checking their signatures.
    SourceSecret,
}

impl Needs {
    pub fn var(self) -> &'static str {
        match self {
            Self::UnsubscribeSecret => "UNSUBSCRIBE_SECRET",
            Self::SourceSecret => "SOURCE_SECRET",
        }
    }
}

/// A secret value: never printed, compared in constant time.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    /// The value, for the one place that keys a MAC with it.
    pub fn expose(&self) -> &str {
        &self.0
    }
    /// Constant-time comparison (no early exit on the first differing byte).
    pub fn matches(&self, candidate: &str) -> bool {
        use subtle::ConstantTimeEq;
        let (a, b) = (self.0.as_bytes(), candidate.as_bytes());
        a.len() == b.len() && bool::from(a.ct_eq(b))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Whether ingest endpoints require a source's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IngestAuth {
    /// Every request presents a key (`?token=` or `X-Api-Key`): always so in AWS.
    Required,
    /// A request without a key is accepted as from no source (`make dev`, so the seed's
    /// requests work verbatim); a key that is sent is still checked.
    Off,
}

/// Shortest `SOURCE_SECRET`: it keys every signing secret.
pub const SOURCE_SECRET_MIN_LEN: usize = 32;

/// Which browser origins may post leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorsOrigins {
    Any,
    List(Vec<String>),
}

#[derive(Debug, Clone)]
pub struct Config {
    pub table_name: String,
    pub admin_api_key: Option<Secret>,
    /// `INGEST_AUTH`: whether ingest requests must present a source's key.
    pub ingest_auth: IngestAuth,
    /// `SOURCE_SECRET`: derives each source's signing secret (`crm_core::source`).
    pub source_secret: Option<Secret>,
    /// `SOURCE_CACHE_SECONDS`: how long an instance trusts what it read of a key (a revoked
    /// key is refused by every instance at most this long after).
    pub source_cache: std::time::Duration,
    pub defaults: Defaults,
    pub dedupe_window: Duration,
    pub cors_origins: CorsOrigins,
    /// Keys from `UNSUBSCRIBE_SECRET` (unsubscribe links, suppression lookups).
    pub unsubscribe: Option<Keys>,
    pub reporting: Reporting,
    /// `RETENTION_DAYS_*`: how long each kind of record is kept (DynamoDB TTL).
    pub retention: Retention,
    /// `PUBLIC_BASE_URL`: where the API is reachable from the internet (tracked links,
    /// unsubscribe links); `None`: the request's own host.
    pub public_base_url: Option<String>,
}

/// `PUBLIC_BASE_URL`, without a trailing slash: one parser for every configuration.
pub fn public_base_url(value: Option<String>) -> Result<Option<String>, ConfigError> {
    match value {
        Some(u) if !(u.starts_with("https://") || u.starts_with("http://")) => Err(ConfigError {
            var: "PUBLIC_BASE_URL",
            message: "must be an http(s) URL".into(),
        }),
        u => Ok(u.map(|u| u.trim_end_matches('/').to_owned())),
    }
}

/// How attribution looks back and how reports cut days and convert money.
#[derive(Debug, Clone)]
pub struct Reporting {
    /// `ATTRIBUTION_WINDOW_DAYS`: how far back a conversion looks for its click.
    pub attribution_window: Duration,
    /// `INFLUENCE_WINDOW_DAYS`: how long after a message its customer's revenue is
    /// reported as message-influenced.
    pub influence_window: Duration,
    /// `REPORTING_TIMEZONE`: where report days start and end (IANA name; default UTC).
    pub zone: ZoneName,
    /// `REPORTING_CURRENCY`: what revenue is converted into when no rates say otherwise.
    pub currency: Currency,
    /// `REPORT_RECIPIENTS`: who gets the daily report (comma-separated; none: no report).
    pub recipients: Vec<Email>,
}

/// `UNSUBSCRIBE_SECRET`'s keys, signing with `UNSUBSCRIBE_SIGNING_KEYS`' rotation when one
/// is set: one parser for every configuration that needs them.
pub fn unsubscribe_keys(value: Option<String>, signing: Option<String>) -> Result<Option<Keys>, ConfigError> {
    let keys = match value {
        Some(v) if v.len() < UNSUBSCRIBE_MIN_LEN => {
            return Err(ConfigError {
                var: "UNSUBSCRIBE_SECRET",
                message: format!("must be at least {UNSUBSCRIBE_MIN_LEN} characters"),
            });
        }
        None => return Ok(None),
        Some(v) => Keys::derive(v.as_bytes()),
    };
    match signing.filter(|s| !s.trim().is_empty()) {
        None => Ok(Some(keys)),
        Some(spec) => keys.with_signing_keys(&spec).map(Some).map_err(|message| ConfigError {
            var: "UNSUBSCRIBE_SIGNING_KEYS",
            message,
        }),
    }
}

/// Shortest admin key (or cron secret) we accept: guessable secrets are a misconfiguration.
pub const MIN_SECRET_LEN: usize = 16;

impl Config {
    /// Every setting in `needs` is there, else the first missing one, named.
    pub fn check(&self, needs: &[Needs]) -> Result<(), ConfigError> {
        for need in needs {
            let present = match need {
                Needs::UnsubscribeSecret => self.unsubscribe.is_some(),
                Needs::SourceSecret => self.source_secret.is_some(),
            };
            if !present {
                return Err(ConfigError {
                    var: need.var(),
                    message: "is required by this function and is not set".into(),
                });
            }
        }
        Ok(())
    }
}

impl Config {
    /// Cold start: the environment, and the deployment's secrets (`crate::secrets`).
    pub async fn from_env() -> Result<Self, ConfigError> {
        let env = crate::secrets::Env::load().await?;
        Self::from_lookup(|name| env.get(name))
    }

    /// The table, writing records with this configuration's retention.
    pub async fn store(&self) -> crm_store::Store {
        crm_store::Store::connect(self.table_name.clone())
            .await
            .with_retention(self.retention)
    }

    /// Reads configuration through `lookup` (the environment, or a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let err = |var: &'static str, message: String| ConfigError { var, message };
        let secret = |var: &'static str| -> Result<Option<Secret>, ConfigError> {
            match get(var) {
                None => Ok(None),
                Some(v) if v.len() < MIN_SECRET_LEN => {
                    Err(err(var, format!("must be at least {MIN_SECRET_LEN} characters")))
                }
                Some(v) => Ok(Some(Secret::new(v))),
            }
        };

        let table_name = get("TABLE_NAME").ok_or_else(|| err("TABLE_NAME", "is required".into()))?;
        let brand = get("DEFAULT_BRAND")
            .map(|v| Brand::parse(&v))
            .transpose()
            .map_err(|e| err("DEFAULT_BRAND", e.message))?;
        let currency = Currency::parse(&get("DEFAULT_CURRENCY").unwrap_or_else(|| "USD".into()))
            .map_err(|e| err("DEFAULT_CURRENCY", e.message))?;
        let phone_region = PhoneRegion::parse(&get("DEFAULT_PHONE_REGION").unwrap_or_else(|| "US".into()))
            .map_err(|e| err("DEFAULT_PHONE_REGION", e.message))?;
        let window_hours: i64 = get("DEDUPE_WINDOW_HOURS")
            .unwrap_or_else(|| "24".into())
            .parse()
            .ok()
            .filter(|h| (1..=24 * 90).contains(h))
            .ok_or_else(|| {
                err(
                    "DEDUPE_WINDOW_HOURS",
                    "must be a whole number of hours from 1 to 2160".into(),
                )
            })?;
        let ingest_auth = match get("INGEST_AUTH").as_deref() {
            None | Some("required") => IngestAuth::Required,
            Some("off") => IngestAuth::Off,
            Some(_) => return Err(err("INGEST_AUTH", "must be required or off".into())),
        };
        let source_secret = match get("SOURCE_SECRET") {
            Some(v) if v.len() < SOURCE_SECRET_MIN_LEN => {
                return Err(err(
                    "SOURCE_SECRET",
                    format!("must be at least {SOURCE_SECRET_MIN_LEN} characters"),
                ));
            }
            v => v.map(Secret::new),
        };
        let source_cache = get("SOURCE_CACHE_SECONDS")
            .unwrap_or_else(|| "60".into())
            .parse::<u64>()
            .ok()
            .filter(|s| *s <= 60)
            .map(std::time::Duration::from_secs)
            .ok_or_else(|| {
                err(
                    "SOURCE_CACHE_SECONDS",
                    "must be a whole number of seconds from 0 to 60".into(),
                )
            })?;
        let cors_origins = match get("CORS_ALLOWED_ORIGINS").as_deref() {
            None | Some("*") => CorsOrigins::Any,
            Some(list) => CorsOrigins::List(
                list.split(',')
                    .map(str::trim)
                    .filter(|o| !o.is_empty())
                    .map(|o| {
                        crm_core::source::Origin::parse(o)
                            .map(String::from)
                            .map_err(|e| err("CORS_ALLOWED_ORIGINS", e.message))
                    })
                    .collect::<Result<_, _>>()?,
            ),
        };
        Ok(Self {
            table_name,
            admin_api_key: secret("ADMIN_API_KEY")?,
            ingest_auth,
            source_secret,
            source_cache,
            defaults: Defaults {
                brand,
                currency,
                phone_region,
            },
            dedupe_window: Duration::hours(window_hours),
            cors_origins,
            unsubscribe: unsubscribe_keys(get("UNSUBSCRIBE_SECRET"), get("UNSUBSCRIBE_SIGNING_KEYS"))?,
            reporting: Reporting {
                attribution_window: days(get("ATTRIBUTION_WINDOW_DAYS"), "ATTRIBUTION_WINDOW_DAYS", 30)?,
                influence_window: days(get("INFLUENCE_WINDOW_DAYS"), "INFLUENCE_WINDOW_DAYS", 7)?,
                zone: ZoneName::parse(&get("REPORTING_TIMEZONE").unwrap_or_else(|| "UTC".into()))
                    .map_err(|e| err("REPORTING_TIMEZONE", e.message))?,
                currency: Currency::parse(&get("REPORTING_CURRENCY").unwrap_or_else(|| "USD".into()))
                    .map_err(|e| err("REPORTING_CURRENCY", e.message))?,
                recipients: get("REPORT_RECIPIENTS")
                    .unwrap_or_default()
                    .split(',')
                    .map(str::trim)
                    .filter(|r| !r.is_empty())
                    .map(|r| Email::parse(r).map_err(|e| err("REPORT_RECIPIENTS", e.message)))
                    .collect::<Result<_, _>>()?,
            },
            retention: retention(&get)?,
            public_base_url: public_base_url(get("PUBLIC_BASE_URL"))?,
        })
    }
}

/// `RETENTION_DAYS_CLICKS`, `_LEADS`, `_EVENTS`, `_MESSAGES` and `_SEND_LOGS`: whole days,
/// or `off` to keep that kind for ever; unset, the documented default.
fn retention(get: &impl Fn(&str) -> Option<String>) -> Result<Retention, ConfigError> {
    let d = Retention::default();
    let kind = |var: &'static str, default: Option<Duration>, min: i64| -> Result<Option<Duration>, ConfigError> {
        match get(var) {
            None => Ok(default),
            Some(v) if v.eq_ignore_ascii_case("off") => Ok(None),
            Some(v) => v
                .parse::<i64>()
                .ok()
                .filter(|n| (min..=36_500).contains(n))
                .map(|n| Some(Duration::days(n)))
                .ok_or_else(|| ConfigError {
                    var,
                    message: format!("must be a whole number of days from {min} to 36500, or off"),
                }),
        }
    };
    Ok(Retention {
        clicks: kind("RETENTION_DAYS_CLICKS", d.clicks, 1)?,
        leads: kind("RETENTION_DAYS_LEADS", d.leads, 1)?,
        events: kind("RETENTION_DAYS_EVENTS", d.events, 1)?,
        messages: kind("RETENTION_DAYS_MESSAGES", d.messages, 1)?,
        // A send log is what frequency caps count: it outlives the longest cap window.
        send_logs: kind("RETENTION_DAYS_SEND_LOGS", d.send_logs, 32)?,
    })
}

/// A whole number of days from 1 to 365.
fn days(value: Option<String>, var: &'static str, default: i64) -> Result<Duration, ConfigError> {
    value
        .map_or(Some(default), |v| v.parse().ok())
        .filter(|d| (1..=365).contains(d))
        .map(Duration::days)
        .ok_or_else(|| ConfigError {
            var,
            message: "must be a whole number of days from 1 to 365".into(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn a_function_that_needs_a_setting_fails_at_cold_start_naming_it() {
        let without = config(&[("TABLE_NAME", "crm")]).unwrap();
        let e = without.check(&[Needs::UnsubscribeSecret]).unwrap_err();
        assert_eq!(e.var, "UNSUBSCRIBE_SECRET");
        assert!(without.check(&[]).is_ok(), "a function that needs nothing starts");
        let with = config(&[
            ("TABLE_NAME", "crm"),
            ("UNSUBSCRIBE_SECRET", "an unsubscribe secret of 32 characters or more"),
        ])
        .unwrap();
        assert!(with.check(&[Needs::UnsubscribeSecret]).is_ok());
        // The first missing need is named, whichever others are there.
        let e = with
            .check(&[Needs::UnsubscribeSecret, Needs::SourceSecret])
            .unwrap_err();
        assert_eq!(e.var, "SOURCE_SECRET");
    }

    #[test]
    fn defaults_apply_where_unset() {
        let c = config(&[("TABLE_NAME", "crm")]).unwrap();
        assert_eq!(c.defaults.currency.as_str(), "USD");
        assert_eq!(c.dedupe_window, Duration::hours(24));
        assert_eq!(c.cors_origins, CorsOrigins::Any);
        assert!(c.admin_api_key.is_none() && c.source_secret.is_none() && c.defaults.brand.is_none());
        assert_eq!(
            c.ingest_auth,
            IngestAuth::Required,
            "ingest is authenticated unless turned off"
        );
        assert_eq!(c.source_cache, std::time::Duration::from_secs(60));
        assert_eq!(c.reporting.attribution_window, Duration::days(30));
        assert_eq!(c.reporting.influence_window, Duration::days(7));
        assert_eq!(
            (c.reporting.zone.as_str(), c.reporting.currency.as_str()),
            ("UTC", "USD")
        );
        assert_eq!(c.retention, Retention::default());
        let c = config(&[
            ("TABLE_NAME", "t"),
            ("RETENTION_DAYS_CLICKS", "90"),
            ("RETENTION_DAYS_MESSAGES", "off"),
        ])
        .unwrap();
        assert_eq!(
            (c.retention.clicks, c.retention.messages, c.retention.leads),
            (Some(Duration::days(90)), None, Retention::default().leads)
        );
    }

    #[test]
    fn bad_values_name_their_variable() {
        assert_eq!(config(&[]).unwrap_err().var, "TABLE_NAME");
        assert_eq!(
            config(&[("TABLE_NAME", "t"), ("DEFAULT_CURRENCY", "XYZ")])
                .unwrap_err()
                .var,
            "DEFAULT_CURRENCY"
        );
        assert_eq!(
            config(&[("TABLE_NAME", "t"), ("ADMIN_API_KEY", "short")])
                .unwrap_err()
                .var,
            "ADMIN_API_KEY"
        );
        assert_eq!(
            config(&[("TABLE_NAME", "t"), ("DEDUPE_WINDOW_HOURS", "0")])
                .unwrap_err()
                .var,
            "DEDUPE_WINDOW_HOURS"
        );
        for (var, bad) in [
            ("ATTRIBUTION_WINDOW_DAYS", "0"),
            ("INFLUENCE_WINDOW_DAYS", "x"),
            ("REPORTING_TIMEZONE", "Mars/Olympus"),
            ("REPORTING_CURRENCY", "XYZ"),
            ("REPORT_RECIPIENTS", "ops@example.com, not-an-address"),
            ("INGEST_AUTH", "maybe"),
            ("SOURCE_SECRET", "too short"),
            ("SOURCE_CACHE_SECONDS", "61"),
            ("RETENTION_DAYS_CLICKS", "0"),
            ("RETENTION_DAYS_EVENTS", "five years"),
            // A send log must outlive the longest frequency-cap window.
            ("RETENTION_DAYS_SEND_LOGS", "7"),
        ] {
            assert_eq!(config(&[("TABLE_NAME", "t"), (var, bad)]).unwrap_err().var, var);
        }
    }

    #[test]
    fn cors_origins_are_checked_at_cold_start() {
        let c = config(&[
            ("TABLE_NAME", "t"),
            ("CORS_ALLOWED_ORIGINS", "https://lp.example.com, http://localhost:8080"),
        ])
        .unwrap();
        assert_eq!(
            c.cors_origins,
            CorsOrigins::List(vec!["https://lp.example.com".into(), "http://localhost:8080".into()])
        );
        for bad in [
            "lp.example.com",
            "https://lp.example.com/",
            "https://LP.example.com",
            "ftp://x.com",
            "https://a b",
        ] {
            let e = config(&[("TABLE_NAME", "t"), ("CORS_ALLOWED_ORIGINS", bad)]).unwrap_err();
            assert_eq!(e.var, "CORS_ALLOWED_ORIGINS", "{bad}");
        }
    }

    #[test]
    fn secrets_compare_exactly_and_never_print() {
        let s = Secret::new("0123456789abcdef");
        assert!(s.matches("0123456789abcdef"));
        assert!(!s.matches("0123456789abcdeX"));
        assert!(!s.matches("0123456789abcdef0"));
        assert_eq!(format!("{s:?}"), "Secret(<redacted>)");
    }
}
