//! Redtrack's click log: `GET {REDTRACK_API_URL}/tracks?api_key=…&date_from=…&date_to=…&page=…&per=…`
//! answers `{items, total}`, one item per click. The key is a query parameter (Redtrack's
//! only way); it never reaches a log line (errors are reported without the URL).

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Map, Value};
use time::Date;

use crate::ProviderError;

pub const PROVIDER: &str = "redtrack";
pub const DEFAULT_BASE_URL: &str = "https://api.redtrack.io";

#[derive(Debug, Clone)]
pub struct Redtrack {
    http: reqwest::Client,
    base_url: String,
}

/// One page of the click log.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Tracks {
    #[serde(default)]
    pub items: Vec<Map<String, Value>>,
    #[serde(default)]
    pub total: u64,
}

/// Why a page did not come.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogError {
    /// 429, 5xx or no connection: worth asking again, after `retry_after` if Redtrack said.
    #[error("redtrack is busy or unreachable")]
    Busy { retry_after: Option<Duration> },
    /// Refused (a bad key) or unreadable: asking again will not help.
    #[error(transparent)]
    Failed(ProviderError),
}

impl Redtrack {
    pub fn new(base_url: impl Into<String>) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(30))
            .build()
            .expect("the HTTP client builds");
        Self {
            http,
            base_url: base_url.into().trim_end_matches('/').to_owned(),
        }
    }

    /// One page (from 1) of the clicks of the days `from`..=`to`.
    pub async fn tracks(&self, api_key: &str, from: Date, to: Date, page: u32, per: u32) -> Result<Tracks, LogError> {
        let query = serde_urlencoded::to_string([
            ("api_key", api_key.to_owned()),
            ("date_from", from.to_string()),
            ("date_to", to.to_string()),
            ("page", page.to_string()),
            ("per", per.to_string()),
        ])
        .expect("pairs of strings encode");
        let response = self
            .http
            .get(format!("{}/tracks?{query}", self.base_url))
            .send()
            .await
            .map_err(|e| {
                if e.is_connect() || e.is_timeout() {
                    LogError::Busy { retry_after: None }
                } else {
                    LogError::Failed(ProviderError::Unknown {
                        provider: PROVIDER,
                        message: e.without_url().to_string(),
                    })
                }
            })?;
        let status = response.status();
        if status.as_u16() == 429 || status.is_server_error() {
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            return Err(LogError::Busy { retry_after });
        }
        if !status.is_success() {
            return Err(LogError::Failed(ProviderError::Rejected {
                provider: PROVIDER,
                message: format!("HTTP {status} (check the source's Redtrack API key)"),
            }));
        }
        response.json::<Tracks>().await.map_err(|e| {
            LogError::Failed(ProviderError::Unknown {
                provider: PROVIDER,
                message: format!("unreadable click log page: {}", e.without_url()),
            })
        })
    }
}
