//! CloudWatch metrics in Embedded Metric Format: one JSON line on stdout per set of values,
//! which CloudWatch Logs turns into metrics of the namespace `CRM` without any API call
//! (and without the function waiting on one). Each value is published under every
//! dimension set given and without dimensions, so an alarm can watch the total.
//!
//! Written in Lambda (or with `CRM_METRICS=stdout`); elsewhere off, unless a test captures
//! them with `capture()`. The dashboard and alarms in `template.yaml` read these names.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};

use serde_json::{Map, Value, json};

pub const NAMESPACE: &str = "CRM";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Milliseconds,
    Seconds,
    None,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Self::Count => "Count",
            Self::Milliseconds => "Milliseconds",
            Self::Seconds => "Seconds",
            Self::None => "None",
        }
    }
}

static STDOUT: OnceLock<bool> = OnceLock::new();
static CAPTURING: AtomicBool = AtomicBool::new(false);
static CAPTURED: Mutex<Vec<Value>> = Mutex::new(Vec::new());

fn stdout() -> bool {
    *STDOUT.get_or_init(|| {
        std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some()
            || std::env::var("CRM_METRICS").is_ok_and(|v| v == "stdout")
    })
}

/// Keeps every metric document in memory from now on (tests).
pub fn capture() {
    CAPTURING.store(true, Ordering::SeqCst);
}

/// The metric documents captured so far.
pub fn captured() -> Vec<Value> {
    CAPTURED.lock().map(|l| l.clone()).unwrap_or_default()
}

/// Values sharing dimensions, published together.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    dimensions: Vec<(&'static str, String)>,
    values: Vec<(&'static str, f64, Unit)>,
}

impl Metrics {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn dimension(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.dimensions.push((name, value.into()));
        self
    }

    pub fn value(mut self, name: &'static str, value: f64, unit: Unit) -> Self {
        self.values.push((name, value, unit));
        self
    }

    pub fn count(self, name: &'static str, n: usize) -> Self {
        self.value(name, n as f64, Unit::Count)
    }

    /// The EMF document: published under all dimensions, each leading prefix of them, and
    /// none.
    pub fn document(&self, now_ms: i64) -> Value {
        let names: Vec<&str> = self.dimensions.iter().map(|(n, _)| *n).collect();
        let sets: Vec<Vec<&str>> = (0..=names.len()).rev().map(|k| names[..k].to_vec()).collect();
        let mut doc = Map::new();
        doc.insert(
            "_aws".into(),
            json!({
                "Timestamp": now_ms,
                "CloudWatchMetrics": [{
                    "Namespace": NAMESPACE,
                    "Dimensions": sets,
                    "Metrics": self.values.iter().map(|(n, _, u)| json!({"Name": n, "Unit": u.as_str()})).collect::<Vec<_>>(),
                }],
            }),
        );
        for (name, value) in &self.dimensions {
            doc.insert((*name).into(), json!(value));
        }
        for (name, value, _) in &self.values {
            doc.insert((*name).into(), json!(value));
        }
        Value::Object(doc)
    }

    pub fn emit(self) {
        if self.values.is_empty() {
            return;
        }
        let now_ms = (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64;
        if CAPTURING.load(Ordering::SeqCst) {
            if let Ok(mut l) = CAPTURED.lock() {
                l.push(self.document(now_ms));
            }
        } else if stdout() {
            println!("{}", self.document(now_ms));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_publishes_each_value_under_every_prefix_of_its_dimensions() {
        let doc = Metrics::new()
            .dimension("Channel", "email")
            .dimension("Reason", "suppressed")
            .count("MessagesSkipped", 1)
            .document(1_700_000_000_000);
        let spec = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(spec["Namespace"], "CRM");
        assert_eq!(spec["Dimensions"], json!([["Channel", "Reason"], ["Channel"], []]));
        assert_eq!(spec["Metrics"], json!([{"Name": "MessagesSkipped", "Unit": "Count"}]));
        assert_eq!(
            (&doc["Channel"], &doc["MessagesSkipped"]),
            (&json!("email"), &json!(1.0))
        );
        assert_eq!(doc["_aws"]["Timestamp"], 1_700_000_000_000i64);
    }
}
