//! The Redtrack click log as a backstop: every ten minutes (EventBridge; `make dev` runs
//! the same tick), for each `tracker` source with a Redtrack API key (`REDTRACK_API_KEYS`,
//! a secret: `<sourceId>=<api key>,…`), page through `GET /tracks` over a window that
//! overlaps the last run and ingest each row as a click from that source. Idempotent by
//! click id: a click the link, the tag or an earlier run recorded is a duplicate, read (in
//! batches) rather than written again, and given only what it lacked. A run
//! holds the source's import lease (never two at once), waits out a 429 or 5xx as Redtrack
//! asks (a few times, then stops), and moves the cursor only when its whole window is in:
//! the next run repeats what a failed one left, without duplicates.
//!
//! The same tick watches the sources that send conversions: an operator's (or Zapier's)
//! source that was used before and has sent nothing for `OPERATOR_SILENCE_HOURS` (default
//! 24; `0` turns it off) is logged by id and counted in `SilentOperatorSources`, which
//! alarms. A paused Zap or a changed postback URL fails silently on the other side.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use axum::{Json, Router};

use crm_app::config::{Config, ConfigError, Secret};
use crm_app::ingest::Sender;
use crm_core::input::{ClickCommand, Defaults};
use crm_core::plan::Ingest;
use crm_core::records::Provenance;
use crm_core::redtrack::{PER_PAGE, Window, click_fields};
use crm_core::source::{KeyInfo, SourceKind, is_silent};
use crm_http::{ApiError, AppState, HttpFunction, JsonResult};
use crm_providers::redtrack::{DEFAULT_BASE_URL, LogError, Redtrack};
use crm_store::{Store, StoreError};
use serde::Serialize;
use time::OffsetDateTime;

/// Attempts at one page before the run stops.
const ATTEMPTS: u32 = 4;
/// Longest wait a `Retry-After` is obeyed for within a run.
const MAX_WAIT: Duration = Duration::from_secs(60);
/// How long a scheduled run's lease lasts (past the function's timeout).
const LEASE: time::Duration = time::Duration::minutes(15);
/// A manual run's (past its 29 s): one killed by the gateway's timeout holds the source only
/// briefly.
const MANUAL_LEASE: time::Duration = time::Duration::minutes(1);

pub struct Deps {
    pub store: Store,
    pub redtrack: Redtrack,
    /// API key per source id.
    pub keys: BTreeMap<String, String>,
    pub defaults: Defaults,
    pub dedupe_window: time::Duration,
    /// Rows per page asked for (`PER_PAGE`).
    pub per_page: u32,
    /// The manual trigger's bearer secret; none: open.
    pub cron_secret: Option<Secret>,
    /// How long a run holds its source.
    pub lease: time::Duration,
    /// How long a conversion source may stay quiet before it counts as silent; `None`: off.
    pub operator_silence: Option<time::Duration>,
}

impl Deps {
    /// The scheduled function's cold start.
    pub async fn cold_start() -> Result<Self, ConfigError> {
        crm_app::telemetry::init();
        let env = crm_app::secrets::Env::load().await?;
        let config = Config::from_lookup(|name| env.get(name))?;
        Self::new(config.store().await, &config, |name| env.get(name))
    }

    /// The manual trigger's, around its function's store.
    pub async fn for_store(store: Store) -> Result<Self, ConfigError> {
        let env = crm_app::secrets::Env::load().await?;
        let config = Config::from_lookup(|name| env.get(name))?;
        let deps = Self::new(store, &config, |name| env.get(name))?;
        Ok(Self {
            lease: MANUAL_LEASE,
            ..deps
        })
    }

    /// From `config` and the Redtrack variables `lookup` finds (`REDTRACK_API_URL`,
    /// `REDTRACK_API_KEYS`, `CRON_SECRET`).
    pub fn new(store: Store, config: &Config, lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let cron_secret = match lookup("CRON_SECRET").filter(|v| !v.trim().is_empty()) {
            Some(v) if v.len() < crm_app::config::MIN_SECRET_LEN => {
                return Err(ConfigError {
                    var: "CRON_SECRET",
                    message: "must be at least 16 characters".into(),
                });
            }
            v => v.map(Secret::new),
        };
        Ok(Self {
            store,
            redtrack: Redtrack::new(lookup("REDTRACK_API_URL").unwrap_or_else(|| DEFAULT_BASE_URL.into())),
            keys: api_keys(lookup("REDTRACK_API_KEYS").as_deref())?,
            defaults: config.defaults.clone(),
            dedupe_window: config.dedupe_window,
            per_page: PER_PAGE,
            cron_secret,
            lease: LEASE,
            operator_silence: operator_silence(lookup("OPERATOR_SILENCE_HOURS").as_deref())?,
        })
    }
}

/// `OPERATOR_SILENCE_HOURS`: whole hours, default 24; `0` turns the watch off.
fn operator_silence(raw: Option<&str>) -> Result<Option<time::Duration>, ConfigError> {
    match raw.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(Some(time::Duration::hours(24))),
        Some(v) => match v.parse::<u16>() {
            Ok(0) => Ok(None),
            Ok(hours) => Ok(Some(time::Duration::hours(hours.into()))),
            Err(_) => Err(ConfigError {
                var: "OPERATOR_SILENCE_HOURS",
                message: "must be a whole number of hours (0 turns the watch off)".into(),
            }),
        },
    }
}

pub const PATH: &str = "/api/cron/import-clicks";

/// `POST /api/cron/import-clicks`: one run now (`Authorization: Bearer <CRON_SECRET>` when
/// it is set), answering each source's report.
pub const FUNCTION: HttpFunction = HttpFunction {
    logical_id: "ImportClicksCronFunction",
    binary: "import-clicks-cron",
    needs: &[],
    routes: &[PATH],
    router,
};

pub fn router(state: AppState) -> Router {
    let deps: Arc<Deps> = state.extension();
    let routes = Router::new().route(PATH, post(run_now)).with_state(deps);
    crm_http::finish(routes)
}

async fn run_now(State(deps): State<Arc<Deps>>, headers: HeaderMap) -> JsonResult {
    crm_http::require_bearer(&headers, deps.cron_secret.as_ref())?;
    match run(&deps, OffsetDateTime::now_utc()).await {
        Ok(reports) => Ok(Json(serde_json::json!({"sources": reports}))),
        Err(ImportError::Store(e)) => Err(ApiError::from(e)),
    }
}

/// `REDTRACK_API_KEYS`: `<sourceId>=<api key>` pairs, comma-separated.
pub fn api_keys(raw: Option<&str>) -> Result<BTreeMap<String, String>, ConfigError> {
    raw.unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((id, key)) if !id.trim().is_empty() && !key.trim().is_empty() => {
                Ok((id.trim().to_owned(), key.trim().to_owned()))
            }
            _ => Err(ConfigError {
                var: "REDTRACK_API_KEYS",
                message: "must be <sourceId>=<api key> pairs separated by commas".into(),
            }),
        })
        .collect()
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceReport {
    pub source_id: String,
    pub pages: u32,
    pub imported: u32,
    pub duplicates: u32,
    /// Of the duplicates, clicks that got fields they lacked (address, agent, page,
    /// referrer, parameters).
    pub filled: u32,
    /// Rows that are not clicks we can keep (no id, a value too long).
    pub rejected: u32,
    /// The window was imported whole and the cursor moved.
    pub complete: bool,
    /// Why the run stopped early or skipped the source.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a scheduled tick did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Tick {
    /// Ids of the conversion sources silent for `OPERATOR_SILENCE_HOURS`.
    pub silent_sources: Vec<String>,
    pub sources: Vec<SourceReport>,
}

/// The scheduled tick (its event's payload is not read).
pub async fn handle(deps: &Deps, _event: serde_json::Value) -> Result<Tick, ImportError> {
    tick(deps, OffsetDateTime::now_utc()).await
}

/// The silence watch, then one import run over every source with a key.
pub async fn tick(deps: &Deps, now: OffsetDateTime) -> Result<Tick, ImportError> {
    Ok(Tick {
        silent_sources: silent_sources(deps, now).await?,
        sources: run(deps, now).await?,
    })
}

/// The conversion sources that have gone quiet ([`is_silent`]): each logged, and their
/// number emitted as `SilentOperatorSources` (0 too: the dashboard shows the watch ran).
pub async fn silent_sources(deps: &Deps, now: OffsetDateTime) -> Result<Vec<String>, ImportError> {
    let Some(silence) = deps.operator_silence else {
        return Ok(Vec::new());
    };
    let mut silent = Vec::new();
    for entry in deps.store.sources().await? {
        let keys: Vec<KeyInfo> = entry.keys.into_iter().map(|k| k.info).collect();
        if is_silent(&entry.source, &keys, now, silence) {
            let last_used = keys
                .iter()
                .filter_map(|k| k.last_used_at)
                .max()
                .map(crm_core::values::format_ts);
            tracing::warn!(source_id = %entry.source.source_id, name = %entry.source.name, last_used = ?last_used,
                hours = silence.whole_hours(), "conversion source silent");
            silent.push(entry.source.source_id);
        }
    }
    crm_app::metrics::Metrics::new()
        .count("SilentOperatorSources", silent.len())
        .emit();
    Ok(silent)
}

pub async fn run(deps: &Deps, now: OffsetDateTime) -> Result<Vec<SourceReport>, ImportError> {
    let mut reports = Vec::new();
    for (source_id, api_key) in &deps.keys {
        let report = import_source(deps, source_id, api_key, now).await?;
        tracing::info!(
            source_id,
            pages = report.pages,
            imported = report.imported,
            duplicates = report.duplicates,
            filled = report.filled,
            rejected = report.rejected,
            complete = report.complete,
            stopped = report.stopped.as_deref(),
            "click log import"
        );
        crm_app::metrics::Metrics::new()
            .dimension("Kind", "redtrack-log")
            .count("Ingested", report.imported as usize)
            .count("Duplicates", report.duplicates as usize)
            .emit();
        reports.push(report);
    }
    Ok(reports)
}

async fn import_source(
    deps: &Deps,
    source_id: &str,
    api_key: &str,
    now: OffsetDateTime,
) -> Result<SourceReport, ImportError> {
    let mut report = SourceReport {
        source_id: source_id.to_owned(),
        ..SourceReport::default()
    };
    let source = match deps.store.source(source_id).await? {
        Some(entry) if entry.source.revoked_at.is_none() && entry.source.rules.kind == SourceKind::Tracker => {
            entry.source
        }
        _ => {
            report.stopped = Some("no live tracker source has this id".into());
            return Ok(report);
        }
    };
    let token = uuid::Uuid::new_v4().to_string();
    let Some(until) = deps.store.take_import(source_id, &token, now + deps.lease, now).await? else {
        report.stopped = Some("another run is importing this source".into());
        return Ok(report);
    };
    let window = Window::after(until, now);
    let (from_day, to_day) = window.days();
    let sender = Sender {
        provenance: Provenance {
            source_id: Some(source_id.to_owned()),
            client_ip: None,
            test: source.rules.test,
        },
        claims_as: None,
        signature: None,
        kind: Some(SourceKind::Tracker),
    };
    let defaults = Defaults {
        brand: source.rules.brand.clone().or_else(|| deps.defaults.brand.clone()),
        ..deps.defaults.clone()
    };
    let mut seen = 0u64;
    let outcome: Result<(), String> = async {
        for page in 1.. {
            let tracks = fetch(deps, api_key, from_day, to_day, page).await?;
            report.pages += 1;
            let rows = tracks.items.len();
            seen += rows as u64;
            // Every row of the days asked for is looked at, older ones too: whether
            // Redtrack's `track_time` is UTC or the account's zone, none is lost. Those
            // already recorded (by the link, the tag or an earlier run) are read in batches,
            // not written again: they only get what they lacked.
            let mut commands = Vec::with_capacity(rows);
            for row in &tracks.items {
                let parsed = ClickCommand::parse(&click_fields(row), &defaults).and_then(|c| {
                    let c = if source.rules.test { c.into_test()? } else { c };
                    c.check_at(now)?;
                    Ok(c)
                });
                match parsed {
                    Ok(cmd) => commands.push(cmd),
                    Err(_) => report.rejected += 1,
                }
            }
            let ids: Vec<&str> = commands.iter().map(|c| c.click_id.as_str()).collect();
            let recorded = deps
                .store
                .clicks_by_id(&ids)
                .await
                .map_err(|e| format!("reading recorded clicks failed: {e}"))?;
            for cmd in &commands {
                if let Some(click) = recorded.get(cmd.click_id.as_str()) {
                    report.duplicates += 1;
                    if let Some(fill) = click.fill_from(&cmd.details) {
                        deps.store
                            .fill_click(&click.click_id, &fill)
                            .await
                            .map_err(|e| format!("filling in a recorded click failed: {e}"))?;
                        report.filled += 1;
                    }
                    continue;
                }
                match crm_app::ingest::run(&deps.store, cmd, &sender, now, deps.dedupe_window).await {
                    Ok(o) if o.duplicate => report.duplicates += 1,
                    Ok(_) => report.imported += 1,
                    Err(e) => return Err(format!("recording a click failed: {e}")),
                }
            }
            if rows < deps.per_page as usize {
                // A short page ends the log only when it held everything Redtrack counted.
                return if seen >= tracks.total {
                    Ok(())
                } else {
                    Err(format!("page {page} ended the log at {seen} of {} rows", tracks.total))
                };
            }
        }
        Ok(())
    }
    .await;
    report.complete = outcome.is_ok();
    report.stopped = outcome.err();
    let reached = report.complete.then_some(window.to);
    deps.store.finish_import(source_id, &token, reached).await?;
    Ok(report)
}

/// One page, waiting out Redtrack's 429s and 5xx a few times.
async fn fetch(
    deps: &Deps,
    api_key: &str,
    from: time::Date,
    to: time::Date,
    page: u32,
) -> Result<crm_providers::redtrack::Tracks, String> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match deps.redtrack.tracks(api_key, from, to, page, deps.per_page).await {
            Ok(tracks) => return Ok(tracks),
            Err(LogError::Busy { retry_after }) if attempt < ATTEMPTS => {
                let wait = retry_after.unwrap_or(Duration::from_secs(1 << attempt)).min(MAX_WAIT);
                tracing::warn!(
                    page,
                    attempt,
                    wait_seconds = wait.as_secs(),
                    "redtrack is busy; waiting"
                );
                tokio::time::sleep(wait).await;
            }
            Err(LogError::Busy { .. }) => return Err(format!("redtrack stayed busy on page {page}")),
            Err(LogError::Failed(e)) => return Err(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_keys_are_source_key_pairs() {
        let keys = api_keys(Some("src_a=k1, src_b = k2")).unwrap();
        assert_eq!(keys["src_a"], "k1");
        assert_eq!(keys["src_b"], "k2");
        assert!(api_keys(None).unwrap().is_empty());
        assert_eq!(api_keys(Some("src_a")).unwrap_err().var, "REDTRACK_API_KEYS");
    }
}
