//! Every function's own binary (`main.rs` and all), started as Lambda starts `bootstrap`,
//! answers each of its sample events from `events/` through the local stand-in for the
//! Lambda Runtime API: what `make invoke` and `sam local invoke -e` do. The binaries are the
//! debug builds `make unit` makes first (`cargo build --bins`); `make invoke` runs the
//! release ones.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crm_local::runtime::{Answer, invoke};
use crm_tests::{ADMIN_KEY, FROM_EMAIL, SOURCE_SECRET, UNSUBSCRIBE_SECRET, endpoint, spawn};
use serde_json::Value;

/// (binary, events directory) of every function in `template.yaml`, from its build metadata.
fn functions() -> Vec<String> {
    let t: serde_norway::Value = serde_norway::from_str(crm_local::TEMPLATE).unwrap();
    t["Resources"]
        .as_mapping()
        .unwrap()
        .values()
        .filter(|r| r["Type"].as_str() == Some("AWS::Serverless::Function"))
        .map(|r| r["Metadata"]["BuildProperties"]["Binary"].as_str().unwrap().to_owned())
        .collect()
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Everything every function needs, on `table` and `queue`.
fn full_env(table: &str, queue: &str) -> Vec<(String, String)> {
    [
        ("AWS_ENDPOINT_URL", endpoint()),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", "us-east-1"),
        ("TABLE_NAME", table),
        ("SEND_QUEUE_URL", queue),
        ("ADMIN_API_KEY", ADMIN_KEY),
        ("UNSUBSCRIBE_SECRET", UNSUBSCRIBE_SECRET),
        ("SOURCE_SECRET", SOURCE_SECRET),
        ("CRON_SECRET", "test-cron-secret-0123456789"),
        ("DEFAULT_FROM_EMAIL", FROM_EMAIL),
        ("ENABLE_REAL_SENDING", "true"),
        ("INGEST_AUTH", "off"),
        ("PUBLIC_BASE_URL", "https://crm.test"),
        ("RUST_LOG", "warn"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

#[tokio::test]
async fn every_function_binary_answers_its_sample_events() {
    let app = spawn().await;
    let shared = crm_tests::sdk_config(endpoint()).await;
    let table = app.state.store.table().to_owned();
    let queue = crm_local::messaging::ensure_queue(&aws_sdk_sqs::Client::new(&shared), &format!("{table}-send"))
        .await
        .unwrap();
    let env = full_env(&table, &queue);
    let mut failed = Vec::new();
    let mut invoked = 0;
    for binary in functions() {
        let path = repo().join("target/debug").join(&binary);
        assert!(
            path.exists(),
            "{} is not built: run `cargo build --bins` (make unit does) before this test",
            path.display()
        );
        let mut samples: Vec<PathBuf> = std::fs::read_dir(repo().join("events").join(&binary))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        samples.sort();
        for sample in samples {
            let event: Value = serde_json::from_str(&std::fs::read_to_string(&sample).unwrap()).unwrap();
            let name = sample.strip_prefix(repo()).unwrap().display().to_string();
            let done = invoke(&path, &binary, event, &env, false, Duration::from_secs(60))
                .await
                .unwrap_or_else(|e| panic!("{name}: {e:#}"));
            invoked += 1;
            // An HTTP function answers API Gateway's response document: never a 5xx.
            let ok = match &done.answer {
                Answer::Response(body) => serde_json::from_str::<Value>(body)
                    .ok()
                    .and_then(|v| v["statusCode"].as_u64())
                    .is_none_or(|status| status < 500),
                _ => false,
            };
            if !ok {
                failed.push(format!("{name}: {:?}\n{}", done.answer, done.log));
            }
        }
    }
    assert!(invoked >= 30, "only {invoked} samples");
    assert!(failed.is_empty(), "{}", failed.join("\n\n"));
}

/// Each setting a function needs, left out, stops that function at cold start naming the
/// variable (Lambda counts an init error, which its Errors alarm reports),
/// before it could answer a request with a 500.
#[tokio::test]
async fn a_function_missing_what_it_needs_stops_at_cold_start_naming_it() {
    let app = spawn().await;
    let table = app.state.store.table().to_owned();
    let env = full_env(&table, "http://localhost:1/none");
    // The HTTP functions' declared needs, and the event functions' (checked in their
    // cold start: the send queue, the sender's link keys and base URL).
    let needs = crm_local::FUNCTIONS
        .iter()
        .flat_map(|f| f.needs.iter().map(|n| (f.binary, n.var())))
        .chain([
            ("scheduler", "SEND_QUEUE_URL"),
            ("cron", "SEND_QUEUE_URL"),
            ("sender", "UNSUBSCRIBE_SECRET"),
            ("sender", "PUBLIC_BASE_URL"),
            ("ses-events", "UNSUBSCRIBE_SECRET"),
        ]);
    let mut checked = 0;
    for (binary, var) in needs {
        let path = repo().join("target/debug").join(binary);
        let sample = std::fs::read_dir(repo().join("events").join(binary))
            .unwrap()
            .map(|e| e.unwrap().path())
            .min()
            .unwrap();
        let event: Value = serde_json::from_str(&std::fs::read_to_string(&sample).unwrap()).unwrap();
        let without: Vec<_> = env.iter().filter(|(k, _)| k != var).cloned().collect();
        let done = invoke(&path, binary, event, &without, false, Duration::from_secs(60))
            .await
            .unwrap();
        // It exits before asking for an event: not one invocation's error.
        assert!(
            matches!(done.answer, Answer::Exited(_)),
            "{binary} without {var} started and answered: {:?}",
            done.answer
        );
        assert!(
            done.log.contains(var),
            "{binary} without {var}: the log does not name it:\n{}",
            done.log
        );
        checked += 1;
    }
    assert!(checked >= 13, "only {checked} needs checked");
}
