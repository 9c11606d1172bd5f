//! The local reader of the table's stream (`make dev`'s journey and attribution loops)
//! follows the stream as Lambda's event source mapping does, against any endpoint: here a
//! plain moto server, without the corrections of `infra/emulator.py`.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_lambda_events::streams::DynamoDbEventResponse;
use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Put, TransactWriteItem};
use crm_local::stream::StreamReader;
use crm_tests::{free_port, sdk_config, unique, wait_for_port};

/// moto's own server, as pinned in `.venv`; stopped when dropped.
struct PlainMoto {
    child: Child,
    endpoint: String,
}

impl Drop for PlainMoto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn plain_moto() -> PlainMoto {
    let port = free_port();
    let server = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/moto_server");
    let child = Command::new(server)
        .args(["-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start moto_server (make test installs it into .venv)");
    wait_for_port(port, "moto_server", Duration::from_secs(30));
    PlainMoto {
        child,
        endpoint: format!("http://127.0.0.1:{port}"),
    }
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

#[tokio::test]
async fn after_a_cancelled_transaction_on_plain_moto_the_next_record_still_arrives() {
    let moto = plain_moto();
    let shared = sdk_config(&moto.endpoint).await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&shared);
    let table = unique("plain");
    crm_local::ensure_table(&dynamodb, &table).await.unwrap();
    let mut reader = StreamReader::open(&shared, &dynamodb, &table).await.unwrap();
    reader.refresh_after = Duration::from_millis(200);
    let seen = std::sync::Mutex::new(Vec::<String>::new());
    let consumer = async |event: aws_lambda_events::dynamodb::Event| {
        for r in event.records {
            let pk = r.change.keys.get("PK").cloned();
            seen.lock().unwrap().push(format!("{pk:?}"));
        }
        DynamoDbEventResponse::default()
    };
    let put = async |pk: &str| {
        dynamodb
            .put_item()
            .table_name(&table)
            .item("PK", s(pk))
            .item("SK", s("A"))
            .send()
            .await
            .unwrap();
    };

    put("first").await;
    assert_eq!(reader.pump(&consumer).await.unwrap(), 1);

    // A transaction cancelled by its condition (a replayed postback's guard does this):
    // plain moto puts back a copy of the whole table, stream shard included.
    let cancelled = dynamodb
        .transact_write_items()
        .transact_items(
            TransactWriteItem::builder()
                .put(
                    Put::builder()
                        .table_name(&table)
                        .item("PK", s("never"))
                        .item("SK", s("A"))
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .transact_items(
            TransactWriteItem::builder()
                .condition_check(
                    ConditionCheck::builder()
                        .table_name(&table)
                        .key("PK", s("missing"))
                        .key("SK", s("A"))
                        .condition_expression("attribute_exists(PK)")
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .send()
        .await;
    assert!(cancelled.is_err(), "the condition fails");

    put("second").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !seen.lock().unwrap().iter().any(|k| k.contains("second")) {
        assert!(
            Instant::now() < deadline,
            "the record after the cancelled transaction never arrived"
        );
        reader.pump(&consumer).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Each committed record once, in order. (Plain moto also streams the cancelled
    // transaction's put, which DynamoDB never does: `infra/emulator.py` corrects that.)
    let seen = seen.lock().unwrap().clone();
    let committed: Vec<&String> = seen.iter().filter(|k| !k.contains("never")).collect();
    assert_eq!(committed.len(), 2, "{seen:?}");
    assert!(
        committed[0].contains("first") && committed[1].contains("second"),
        "{seen:?}"
    );
}
