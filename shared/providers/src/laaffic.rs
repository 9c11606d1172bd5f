//! SMS through the Laaffic HTTP API (`POST /v3/sendSms`), signed as its documentation says:
//! `Sign = md5(apiKey + apiSecret + timestamp)` in hex, with `Api-Key` and `Timestamp`
//! headers. Numbers go without the `+`; `orderId` is our message id.

use std::time::Duration;

use md5::{Digest, Md5};
use serde::Deserialize;

use crate::sns::OutboundSms;
use crate::{MessageSender, Outbound, ProviderError, Receipt, SendFuture, wrong_channel};

pub const PROVIDER: &str = "laaffic";
pub const DEFAULT_BASE_URL: &str = "https://api.laaffic.com";
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(8);

#[derive(Clone)]
pub struct LaafficConfig {
    pub base_url: String,
    /// Longest wait for an answer; after it, whether the SMS went is unknown.
    pub timeout: Duration,
    pub app_id: String,
    pub api_key: String,
    pub api_secret: String,
}

impl std::fmt::Debug for LaafficConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LaafficConfig")
            .field("base_url", &self.base_url)
            .field("app_id", &self.app_id)
            .finish_non_exhaustive()
    }
}

/// The documented request signature.
pub fn sign(api_key: &str, api_secret: &str, timestamp: i64) -> String {
    hex::encode(Md5::digest(format!("{api_key}{api_secret}{timestamp}")))
}

#[derive(Debug, Deserialize)]
struct Answer {
    status: serde_json::Value,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    array: Vec<NumberResult>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct NumberResult {
    #[serde(default)]
    msg_id: Option<serde_json::Value>,
}

#[derive(Debug, Clone)]
pub struct Laaffic {
    http: reqwest::Client,
    config: LaafficConfig,
}

impl MessageSender for Laaffic {
    fn send<'a>(&'a self, message: &'a Outbound) -> SendFuture<'a> {
        match message {
            // The request is signed with the time it is made.
            Outbound::Sms(sms) => Box::pin(Laaffic::send(
                self,
                sms,
                time::OffsetDateTime::now_utc().unix_timestamp(),
            )),
            other => wrong_channel(PROVIDER, other),
        }
    }
}

impl Laaffic {
    pub fn new(config: LaafficConfig) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .timeout(config.timeout)
            .build()
            .expect("the HTTP client builds");
        Self { http, config }
    }

    pub async fn send(&self, sms: &OutboundSms, timestamp: i64) -> Result<Receipt, ProviderError> {
        let c = &self.config;
        let mut body = serde_json::json!({
            "appId": c.app_id,
            "numbers": sms.to.as_str().trim_start_matches('+'),
            "content": sms.text,
            "orderId": sms.message_id,
        });
        if let Some(sender) = &sms.sender_id {
            body["senderId"] = sender.clone().into();
        }
        let url = format!("{}/v3/sendSms", c.base_url.trim_end_matches('/'));
        let response = self
            .http
            .post(url)
            .header("Content-Type", "application/json;charset=UTF-8")
            .header("Api-Key", &c.api_key)
            .header("Timestamp", timestamp.to_string())
            .header("Sign", sign(&c.api_key, &c.api_secret, timestamp))
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| {
                let refused = e.is_connect() && !e.is_timeout();
                let message = crm_core::values::redact_personal(&e.without_url().to_string());
                if refused {
                    ProviderError::Retryable {
                        provider: PROVIDER,
                        message,
                    }
                } else {
                    ProviderError::Unknown {
                        provider: PROVIDER,
                        message,
                    }
                }
            })?;
        let status = response.status();
        let text = response.text().await.map_err(|e| ProviderError::Unknown {
            provider: PROVIDER,
            message: e.without_url().to_string(),
        })?;
        if status.is_server_error() || status.as_u16() == 429 {
            return Err(ProviderError::Retryable {
                provider: PROVIDER,
                message: format!("HTTP {status}"),
            });
        }
        if !status.is_success() {
            return Err(ProviderError::Rejected {
                provider: PROVIDER,
                message: format!("HTTP {status}"),
            });
        }
        let answer: Answer = serde_json::from_str(&text).map_err(|_| ProviderError::Unknown {
            provider: PROVIDER,
            message: "unreadable answer".into(),
        })?;
        interpret(answer)
    }
}

/// Laaffic's status codes: `0` sent; `-15` (too many requests) and `-16` (timestamp
/// expired, a clock or queueing delay) are worth retrying; every other code is a refusal
/// (`-1` authentication, `-2` IP not allowed, `-9` abnormal number, `-10` insufficient
/// balance …).
fn interpret(answer: Answer) -> Result<Receipt, ProviderError> {
    let code = match &answer.status {
        serde_json::Value::String(s) => s.trim().to_owned(),
        other => other.to_string(),
    };
    // Laaffic's reason may quote the number.
    let reason = crm_core::values::redact_personal(&answer.reason.unwrap_or_default());
    match code.as_str() {
        "0" => Ok(Receipt {
            provider: PROVIDER,
            message_id: answer
                .array
                .into_iter()
                .find_map(|n| n.msg_id)
                .map(|id| match id {
                    serde_json::Value::String(s) => s,
                    other => other.to_string(),
                })
                .unwrap_or_default(),
        }),
        "-15" | "-16" => Err(ProviderError::Retryable {
            provider: PROVIDER,
            message: format!("status {code}: {reason}"),
        }),
        _ => Err(ProviderError::Rejected {
            provider: PROVIDER,
            message: format!("status {code}: {reason}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_matches_the_documented_test_vector() {
        assert_eq!(
            sign("bDqJFiq9", "7bz1lzh9", 1630468800),
            "05d7a50893e22a5c4bb3216ae3396c7c"
        );
    }

    #[test]
    fn statuses_map_to_sent_retry_or_refused() {
        let answer = |json: &str| interpret(serde_json::from_str(json).unwrap());
        let ok = answer(
            r#"{"status":"0","reason":"success","success":"1","fail":"0","array":[{"msgId":"abc","number":"51999888777","orderId":"msg_1"}]}"#,
        );
        assert_eq!(ok.unwrap().message_id, "abc");
        assert!(matches!(
            answer(r#"{"status":"-15","reason":"too often"}"#),
            Err(ProviderError::Retryable { .. })
        ));
        assert!(
            matches!(answer(r#"{"status":-10,"reason":"balance"}"#), Err(ProviderError::Rejected { message, .. }) if message.contains("-10"))
        );
    }
}
