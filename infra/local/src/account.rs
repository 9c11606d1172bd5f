//! What the stack creates in AWS, created in the local emulator (or the account
//! `AWS_ENDPOINT_URL` names) before `make dev` or `make invoke` runs a function: the secret
//! (from this environment, and development defaults for the secrets every function
//! needs), the table, the send queue and the sender's SES identity.

use std::collections::BTreeMap;

use anyhow::Context;
use aws_config::SdkConfig;
use crm_app::secrets::{Env, SECRET_NAMES};

/// What a function finds in its environment in AWS, for the resources made here.
pub struct Account {
    pub table: String,
    pub secrets_id: String,
    pub queue_name: String,
    pub queue_url: String,
}

impl Account {
    /// The variables `template.yaml` sets from these resources.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("TABLE_NAME", &self.table),
            ("SECRETS_ID", &self.secrets_id),
            ("SEND_QUEUE_URL", &self.queue_url),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.clone()))
        .collect()
    }
}

/// Creates (or finds) the table `TABLE_NAME` names, its secret, its send queue and the
/// identity of `DEFAULT_FROM_EMAIL`; installs the secret as this process's own.
pub async fn prepare(shared: &SdkConfig) -> anyhow::Result<Account> {
    let table = std::env::var("TABLE_NAME").unwrap_or_else(|_| "crm-local".into());
    // Secrets live where they live in AWS: in Secrets Manager (the emulator's), written from
    // this environment and development defaults, and read back from there.
    let secrets = aws_sdk_secretsmanager::Client::new(shared);
    let secrets_id = format!("{table}-secrets");
    let mut values: BTreeMap<&str, String> = SECRET_NAMES
        .iter()
        .filter_map(|name| Some((*name, std::env::var(name).ok().filter(|v| !v.is_empty())?)))
        .collect();
    // Stable across restarts, so links in mails already delivered locally keep working.
    values
        .entry("UNSUBSCRIBE_SECRET")
        .or_insert_with(|| "local-dev-unsubscribe-secret-not-for-production".into());
    values
        .entry("SOURCE_SECRET")
        .or_insert_with(|| "local-dev-source-secret-not-for-production".into());
    Env::store(&secrets, &secrets_id, &values).await?;
    Env::install(Env::fetch(&secrets, &secrets_id).await?);
    crate::ensure_table(&aws_sdk_dynamodb::Client::new(shared), &table)
        .await
        .context("creating the local table")?;
    let queue_name = format!("{table}-send");
    let queue_url = crate::messaging::ensure_queue(&aws_sdk_sqs::Client::new(shared), &queue_name).await?;
    let from = crm_messaging::MessagingConfig::from_env().await?.defaults.from_email;
    crate::messaging::ensure_sender_identity(&aws_sdk_sesv2::Client::new(shared), from.as_str()).await?;
    Ok(Account {
        table,
        secrets_id,
        queue_name,
        queue_url,
    })
}
