//! Where configuration comes from: the environment for settings, and AWS Secrets Manager
//! for secrets. A deployment keeps its secrets in one secret, a JSON object of name → value
//! (`{"ADMIN_API_KEY": "…", "UNSUBSCRIBE_SECRET": "…"}`), named by `SECRETS_ID` (its ARN or
//! name, not itself secret). It is read once per cold start and kept for the life of the
//! instance; every configuration of the process reads the same copy.
//!
//! The same path runs locally: `make dev` writes its secrets (from its own environment and
//! development defaults) into the emulator's Secrets Manager and reads them back from there.
//! Without `SECRETS_ID` (tests that pass their own values), secrets come from the
//! environment, as every other setting does.

use std::collections::BTreeMap;

use tokio::sync::OnceCell;

use crate::config::ConfigError;

/// The names read from the secret rather than the environment.
pub const SECRET_NAMES: [&str; 8] = [
    "ADMIN_API_KEY",
    "CRON_SECRET",
    "UNSUBSCRIBE_SECRET",
    "UNSUBSCRIBE_SIGNING_KEYS",
    "SOURCE_SECRET",
    "LAAFFIC_API_KEY",
    "LAAFFIC_API_SECRET",
    "REDTRACK_API_KEYS",
];

/// The environment, with the deployment's secrets over it.
#[derive(Clone, Default)]
pub struct Env {
    secrets: BTreeMap<String, String>,
}

impl std::fmt::Debug for Env {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Env")
            .field("secrets", &self.secrets.keys().collect::<Vec<_>>())
            .finish()
    }
}

static LOADED: OnceCell<Env> = OnceCell::const_new();

impl Env {
    /// The process's configuration source: the secret `SECRETS_ID` names, fetched once.
    pub async fn load() -> Result<Self, ConfigError> {
        LOADED
            .get_or_try_init(|| async {
                match std::env::var("SECRETS_ID").ok().filter(|v| !v.is_empty()) {
                    Some(id) => {
                        let shared = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
                        Self::fetch(&aws_sdk_secretsmanager::Client::new(&shared), &id).await
                    }
                    None => Ok(Self::default()),
                }
            })
            .await
            .cloned()
    }

    /// Makes `env` the process's configuration source (`make dev`, which wrote the secret
    /// itself). `false` if one was already loaded.
    pub fn install(env: Env) -> bool {
        LOADED.set(env).is_ok()
    }

    /// Writes `values` as the secret `id` (created, or given a new version), as an operator
    /// does with `aws secretsmanager put-secret-value`.
    pub async fn store(
        client: &aws_sdk_secretsmanager::Client,
        id: &str,
        values: &BTreeMap<&str, String>,
    ) -> Result<(), ConfigError> {
        let err = |e: String| ConfigError {
            var: "SECRETS_ID",
            message: format!("writing the secret failed: {e}"),
        };
        let document = serde_json::to_string(values).expect("strings serialise");
        let created = client.create_secret().name(id).secret_string(&document).send().await;
        match created {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_exists_exception()) => client
                .put_secret_value()
                .secret_id(id)
                .secret_string(document)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| err(aws_sdk_secretsmanager::error::DisplayErrorContext(&e).to_string())),
            Err(e) => Err(err(aws_sdk_secretsmanager::error::DisplayErrorContext(&e).to_string())),
        }
    }

    /// Reads the secret `id`.
    pub async fn fetch(client: &aws_sdk_secretsmanager::Client, id: &str) -> Result<Self, ConfigError> {
        let err = |message: String| ConfigError {
            var: "SECRETS_ID",
            message,
        };
        let out = client.get_secret_value().secret_id(id).send().await.map_err(|e| {
            err(format!(
                "reading the secret failed: {}",
                aws_sdk_secretsmanager::error::DisplayErrorContext(&e)
            ))
        })?;
        let text = out
            .secret_string()
            .ok_or_else(|| err("the secret has no string value".into()))?;
        Self::parse(text).map_err(err)
    }

    /// A secret's JSON document: an object of known names to strings.
    pub fn parse(text: &str) -> Result<Self, String> {
        let map: BTreeMap<String, serde_json::Value> =
            serde_json::from_str(text).map_err(|_| "the secret is not a JSON object".to_owned())?;
        let mut secrets = BTreeMap::new();
        for (name, value) in map {
            if !SECRET_NAMES.contains(&name.as_str()) {
                return Err(format!(
                    "the secret holds {name}, which is not a secret this system reads"
                ));
            }
            match value {
                serde_json::Value::String(v) if !v.is_empty() => {
                    secrets.insert(name, v);
                }
                serde_json::Value::String(_) | serde_json::Value::Null => {}
                _ => return Err(format!("{name} in the secret is not a string")),
            }
        }
        Ok(Self { secrets })
    }

    /// A configuration value: a secret from the secret when it holds it, else (as every
    /// setting) from the environment.
    pub fn get(&self, name: &str) -> Option<String> {
        self.secrets.get(name).cloned().or_else(|| std::env::var(name).ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_document_holds_only_known_names_as_strings() {
        let env = Env::parse(r#"{"ADMIN_API_KEY": "k-0123456789abcdef", "CRON_SECRET": null}"#).unwrap();
        assert_eq!(env.get("ADMIN_API_KEY").as_deref(), Some("k-0123456789abcdef"));
        assert!(Env::parse(r#"{"TABLE_NAME": "x"}"#).unwrap_err().contains("TABLE_NAME"));
        assert!(Env::parse(r#"{"ADMIN_API_KEY": 5}"#).is_err());
        assert!(Env::parse("[]").is_err());
        assert!(!format!("{env:?}").contains("0123456789"));
    }
}
