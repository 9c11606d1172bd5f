//! Messaging configuration, read once at cold start; errors name the variable. The same
//! names appear in `template.yaml`, `.env.example` and the README's table.

use std::time::Duration;

use crm_app::config::{ConfigError, Secret};
use crm_core::send::{BrandSettings, SmsProvider};
use crm_core::template::parse_language;
use crm_core::values::Email;
use crm_providers::laaffic::{DEFAULT_BASE_URL, DEFAULT_TIMEOUT, LaafficConfig};

#[derive(Debug, Clone)]
pub struct MessagingConfig {
    /// `ENABLE_REAL_SENDING=true` calls providers; anything else is a dry run.
    pub real_sending: bool,
    /// Sending settings of brands that set none of their own.
    pub defaults: BrandSettings,
    /// SNS sender id (where the destination country allows one).
    pub sns_sender_id: Option<String>,
    pub laaffic: Option<LaafficConfig>,
    /// The send queue (scheduler).
    pub queue_url: Option<String>,
    /// Bearer secret of the manual scheduler trigger; none: open (as the seed's curl).
    pub cron_secret: Option<Secret>,
    /// How long definitions, settings and templates are cached per function instance.
    pub cache_ttl: Duration,
    /// SES configuration set (bounce and complaint events).
    pub ses_configuration_set: Option<String>,
}

impl MessagingConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let err = |var: &'static str, message: &str| ConfigError {
            var,
            message: message.to_owned(),
        };
        let from_email = Email::parse(&get("DEFAULT_FROM_EMAIL").unwrap_or_else(|| "noreply@example.com".into()))
            .map_err(|e| err("DEFAULT_FROM_EMAIL", &e.message))?;
        let sms_provider = SmsProvider::parse(&get("SMS_PROVIDER").unwrap_or_else(|| "sns".into()))
            .map_err(|e| err("SMS_PROVIDER", &e.message))?;
        let language = parse_language(&get("DEFAULT_LANGUAGE").unwrap_or_else(|| "en".into()))
            .map_err(|e| err("DEFAULT_LANGUAGE", &e.message))?;
        let laaffic = match (get("LAAFFIC_API_KEY"), get("LAAFFIC_API_SECRET"), get("LAAFFIC_APP_ID")) {
            (Some(api_key), Some(api_secret), Some(app_id)) => Some(LaafficConfig {
                base_url: get("LAAFFIC_BASE_URL").unwrap_or_else(|| DEFAULT_BASE_URL.into()),
                timeout: match get("LAAFFIC_TIMEOUT_MS") {
                    None => DEFAULT_TIMEOUT,
                    Some(ms) => ms
                        .parse()
                        .ok()
                        .filter(|ms| (100..=30_000).contains(ms))
                        .map(Duration::from_millis)
                        .ok_or_else(|| err("LAAFFIC_TIMEOUT_MS", "must be 100-30000 milliseconds"))?,
                },
                app_id,
                api_key,
                api_secret,
            }),
            (None, None, None) => None,
            _ => {
                return Err(err(
                    "LAAFFIC_API_KEY",
                    "LAAFFIC_API_KEY, LAAFFIC_API_SECRET and LAAFFIC_APP_ID are set together",
                ));
            }
        };
        if sms_provider == SmsProvider::Laaffic && laaffic.is_none() {
            return Err(err(
                "SMS_PROVIDER",
                "laaffic needs LAAFFIC_API_KEY, LAAFFIC_API_SECRET and LAAFFIC_APP_ID",
            ));
        }
        let cache_seconds: u64 = get("SETTINGS_CACHE_SECONDS")
            .unwrap_or_else(|| "60".into())
            .parse()
            .ok()
            .filter(|s| *s <= 3600)
            .ok_or_else(|| err("SETTINGS_CACHE_SECONDS", "must be a whole number of seconds up to 3600"))?;
        let cron_secret = match get("CRON_SECRET") {
            Some(v) if v.len() < crm_app::config::MIN_SECRET_LEN => {
                return Err(err("CRON_SECRET", "must be at least 16 characters"));
            }
            v => v.map(Secret::new),
        };
        Ok(Self {
            real_sending: get("ENABLE_REAL_SENDING").is_some_and(|v| v.eq_ignore_ascii_case("true")),
            defaults: BrandSettings {
                from_email,
                from_name: get("DEFAULT_FROM_NAME").unwrap_or_else(|| "CRM".into()),
                sms_provider,
                laaffic_sender_id: get("LAAFFIC_SENDER_ID"),
                language,
            },
            sns_sender_id: get("SNS_SENDER_ID"),
            laaffic,
            queue_url: get("SEND_QUEUE_URL"),
            cron_secret,
            cache_ttl: Duration::from_secs(cache_seconds),
            ses_configuration_set: get("SES_CONFIGURATION_SET"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<MessagingConfig, ConfigError> {
        MessagingConfig::from_lookup(|k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string()))
    }

    #[test]
    fn defaults_are_a_dry_run_over_sns() {
        let c = config(&[]).unwrap();
        assert!(!c.real_sending);
        assert_eq!(c.defaults.sms_provider, SmsProvider::Sns);
        assert_eq!(c.defaults.language, "en");
    }

    #[test]
    fn bad_values_name_their_variable() {
        assert_eq!(
            config(&[("DEFAULT_FROM_EMAIL", "nope")]).unwrap_err().var,
            "DEFAULT_FROM_EMAIL"
        );
        assert_eq!(config(&[("SMS_PROVIDER", "laaffic")]).unwrap_err().var, "SMS_PROVIDER");
        assert_eq!(config(&[("LAAFFIC_API_KEY", "k")]).unwrap_err().var, "LAAFFIC_API_KEY");
        assert_eq!(config(&[("CRON_SECRET", "short")]).unwrap_err().var, "CRON_SECRET");
        let secret = format!(
            "{:?}",
            config(&[
                ("LAAFFIC_API_KEY", "key-123"),
                ("LAAFFIC_API_SECRET", "sec-456"),
                ("LAAFFIC_APP_ID", "a")
            ])
            .unwrap()
        );
        assert!(!secret.contains("key-123") && !secret.contains("sec-456"), "{secret}");
    }
}
