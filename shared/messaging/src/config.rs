//! Messaging configuration, read once at cold start; errors name the variable. The same
//! names appear in `template.yaml`, `.env.example` and the README's table.

use std::time::Duration;

use crm_app::config::{ConfigError, Secret};
use crm_core::caps::{Cap, Caps};
use crm_core::compliance::ExclusionPolicy;
use crm_core::definition::Channel;
use crm_core::quiet::{LocalTime, QuietWindow, ZoneName};
use crm_core::send::{
    BrandSettings, DEFAULT_DAILY_BUDGET_EMAIL, DEFAULT_DAILY_BUDGET_SMS, DEFAULT_NEW_ADDRESSES_PER_HOUR, OptIn,
    QuietHours, SmsProvider,
};
use crm_core::template::parse_language;
use crm_core::unsubscribe::Keys;
use crm_core::values::{Country, Email};
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
    /// SES configuration set (bounce, complaint, delivery, reject and rendering-failure events).
    pub ses_configuration_set: Option<String>,
    /// Keys from `UNSUBSCRIBE_SECRET`: unsubscribe links and suppression lookups.
    pub unsubscribe: Option<Keys>,
    /// Where the API is reachable from the internet (unsubscribe links).
    pub public_base_url: Option<String>,
}

impl MessagingConfig {
    /// What the sender cannot send without: unsubscribe keys and the public base URL.
    pub fn require_sending(&self) -> Result<(), ConfigError> {
        self.keys()?;
        match self.public_base_url {
            Some(_) => Ok(()),
            None => Err(ConfigError {
                var: "PUBLIC_BASE_URL",
                message: "is required: unsubscribe links point at it".into(),
            }),
        }
    }

    /// The unsubscribe keys, which every function that sends or suppresses needs.
    pub fn keys(&self) -> Result<&Keys, ConfigError> {
        self.unsubscribe.as_ref().ok_or_else(|| ConfigError {
            var: "UNSUBSCRIBE_SECRET",
            message: "is required (at least 32 characters; never change it once set)".into(),
        })
    }
}

impl MessagingConfig {
    /// Cold start: the environment, and the deployment's secrets (`crm_app::secrets`).
    pub async fn from_env() -> Result<Self, ConfigError> {
        let env = crm_app::secrets::Env::load().await?;
        Self::from_lookup(|name| env.get(name))
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
        let caps = |var: &'static str, default: Vec<Cap>| match get(var) {
            None => Ok(default),
            Some(v) if v.eq_ignore_ascii_case("off") || v.eq_ignore_ascii_case("none") => Ok(Vec::new()),
            Some(v) => Cap::parse_list(&v).map_err(|e| err(var, &e.message)),
        };
        let quiet = |var: &'static str, default: Option<QuietWindow>| match get(var) {
            None => Ok(default),
            Some(v) if v.eq_ignore_ascii_case("off") || v.eq_ignore_ascii_case("none") => Ok(None),
            Some(v) => {
                let bad = || err(var, "must be HH:MM-HH:MM (quiet from-to, local time) or off");
                let (from, to) = v.split_once('-').ok_or_else(bad)?;
                let w = QuietWindow {
                    from: LocalTime::parse(from).map_err(|_| bad())?,
                    to: LocalTime::parse(to).map_err(|_| bad())?,
                };
                w.validate().map_err(|_| bad())?;
                Ok(Some(w))
            }
        };
        // One variable per channel, each over its channel's default.
        let channel_caps = |vars: [(Channel, &'static str); 2], defaults: Caps| {
            vars.into_iter()
                .map(|(c, var)| Ok((c, caps(var, defaults.for_channel(c).to_vec())?)))
                .collect::<Result<Caps, ConfigError>>()
        };
        let frequency_caps = channel_caps(
            [
                (Channel::Email, "FREQUENCY_CAPS_EMAIL"),
                (Channel::Sms, "FREQUENCY_CAPS_SMS"),
            ],
            Caps::brand_default(),
        )?;
        let cross_brand_caps = channel_caps(
            [
                (Channel::Email, "CROSS_BRAND_CAPS_EMAIL"),
                (Channel::Sms, "CROSS_BRAND_CAPS_SMS"),
            ],
            Caps::cross_brand_default(),
        )?;
        let default_quiet = QuietHours::default_hours();
        let quiet_hours = [(Channel::Email, "QUIET_HOURS_EMAIL"), (Channel::Sms, "QUIET_HOURS_SMS")]
            .into_iter()
            .map(|(c, var)| Ok((c, quiet(var, default_quiet.for_channel(c))?)))
            .collect::<Result<QuietHours, ConfigError>>()?;
        let sms_countries = match get("DEFAULT_SMS_COUNTRIES").filter(|v| !v.trim().is_empty()) {
            None => None,
            Some(v) => Some(
                v.split(',')
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .map(Country::parse)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|_| {
                        err(
                            "DEFAULT_SMS_COUNTRIES",
                            "must be ISO 3166 codes separated by commas (PE,MX)",
                        )
                    })?,
            ),
        };
        let count = |var: &'static str, default: u32| match get(var) {
            None => Ok(default),
            Some(v) => v.trim().parse::<u32>().map_err(|_| err(var, "must be a whole number")),
        };
        let daily_budget = [
            (Channel::Email, count("DAILY_BUDGET_EMAIL", DEFAULT_DAILY_BUDGET_EMAIL)?),
            (Channel::Sms, count("DAILY_BUDGET_SMS", DEFAULT_DAILY_BUDGET_SMS)?),
        ]
        .into_iter()
        .collect();
        let new_addresses_per_hour = count("NEW_ADDRESSES_PER_HOUR", DEFAULT_NEW_ADDRESSES_PER_HOUR)?;
        let timezone = ZoneName::parse(&get("DEFAULT_TIMEZONE").unwrap_or_else(|| "UTC".into()))
            .map_err(|e| err("DEFAULT_TIMEZONE", &e.message))?;
        let unsubscribe =
            crm_app::config::unsubscribe_keys(get("UNSUBSCRIBE_SECRET"), get("UNSUBSCRIBE_SIGNING_KEYS"))?;
        let public_base_url = crm_app::config::public_base_url(get("PUBLIC_BASE_URL"))?;
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
                require_consent: get("REQUIRE_CONSENT").is_some_and(|v| v.eq_ignore_ascii_case("true")),
                frequency_caps,
                cross_brand_caps,
                quiet_hours,
                timezone,
                responsible_gambling: ExclusionPolicy::default(),
                sms_opt_out_text: None,
                display_name: None,
                sms_countries,
                daily_budget,
                new_addresses_per_hour,
                email_opt_in: OptIn::Single,
            },
            sns_sender_id: get("SNS_SENDER_ID"),
            laaffic,
            queue_url: get("SEND_QUEUE_URL"),
            cron_secret,
            cache_ttl: Duration::from_secs(cache_seconds),
            ses_configuration_set: get("SES_CONFIGURATION_SET"),
            unsubscribe,
            public_base_url,
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
        assert_eq!(c.defaults.frequency_caps, Caps::brand_default());
        assert_eq!(
            c.defaults.quiet_hours.for_channel(Channel::Sms),
            Some(QuietWindow::TCPA)
        );
        assert!(c.keys().is_err(), "no secret, no keys");
    }

    #[test]
    fn compliance_defaults_come_from_the_environment() {
        let c = config(&[
            ("FREQUENCY_CAPS_EMAIL", "1/24h"),
            ("CROSS_BRAND_CAPS_SMS", "off"),
            ("QUIET_HOURS_SMS", "22:00-09:00"),
            ("QUIET_HOURS_EMAIL", "23:00-07:00"),
            ("DEFAULT_TIMEZONE", "America/Lima"),
        ])
        .unwrap();
        assert_eq!(
            c.defaults.frequency_caps.for_channel(Channel::Email),
            [Cap::new(1, time::Duration::hours(24))]
        );
        assert!(c.defaults.cross_brand_caps.for_channel(Channel::Sms).is_empty());
        assert_eq!(
            c.defaults.quiet_hours.for_channel(Channel::Sms).unwrap().from,
            LocalTime::hm(22, 0)
        );
        assert_eq!(
            c.defaults.quiet_hours.for_channel(Channel::Email).unwrap().to,
            LocalTime::hm(7, 0)
        );
        assert_eq!(c.defaults.timezone.as_str(), "America/Lima");
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
        for var in [
            "FREQUENCY_CAPS_SMS",
            "QUIET_HOURS_SMS",
            "DEFAULT_TIMEZONE",
            "UNSUBSCRIBE_SECRET",
            "PUBLIC_BASE_URL",
        ] {
            assert_eq!(config(&[(var, "nope")]).unwrap_err().var, var);
        }
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
