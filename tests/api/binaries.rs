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

#[tokio::test]
async fn every_function_binary_answers_its_sample_events() {
    let app = spawn().await;
    let shared = crm_tests::sdk_config(endpoint()).await;
    let table = app.state.store.table().to_owned();
    let queue = crm_local::messaging::ensure_queue(&aws_sdk_sqs::Client::new(&shared), &format!("{table}-send"))
        .await
        .unwrap();
    let env: Vec<(String, String)> = [
        ("AWS_ENDPOINT_URL", endpoint()),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", "us-east-1"),
        ("TABLE_NAME", table.as_str()),
        ("SEND_QUEUE_URL", queue.as_str()),
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
    .collect();
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
