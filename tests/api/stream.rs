//! The local reader of the table's stream (`make dev`'s journey and attribution loops)
//! follows the stream as Lambda's event source mapping does, against any endpoint: a plain
//! moto server, without the corrections of `infra/emulator.py`; a stream that rolls over to
//! a child shard; iterators that expire.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_lambda_events::streams::DynamoDbEventResponse;
use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Put, TransactWriteItem};
use crm_local::stream::StreamReader;
use crm_tests::{free_port, sdk_config, unique, wait_for_port};

/// An emulator of this test's own, as pinned in `.venv`; stopped when dropped.
struct Server {
    child: Child,
    endpoint: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `program` (under the workspace) with `args`, then `--port <a free port>`.
fn server(program: &[&str], args: &[&str]) -> Server {
    let port = free_port();
    let workspace = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut command = Command::new(workspace.join(program[0]));
    for arg in &program[1..] {
        command.arg(workspace.join(arg));
    }
    let child = command
        .args(args)
        .args(["--port", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the emulator (make test installs moto into .venv)");
    wait_for_port(port, program[program.len() - 1], Duration::from_secs(30));
    Server {
        child,
        endpoint: format!("http://127.0.0.1:{port}"),
    }
}

/// moto's own server.
fn plain_moto() -> Server {
    server(&[".venv/bin/moto_server"], &[])
}

/// `infra/emulator.py`, with `args`.
fn emulator(args: &[&str]) -> Server {
    server(&[".venv/bin/python", "infra/emulator.py"], args)
}

/// A table on `endpoint`, a reader of its stream that describes it again every 200 ms, and
/// a put of an item with the key `PK`.
struct Fixture {
    dynamodb: aws_sdk_dynamodb::Client,
    table: String,
    reader: StreamReader,
}

impl Fixture {
    async fn on(endpoint: &str) -> Self {
        let shared = sdk_config(endpoint).await;
        let dynamodb = aws_sdk_dynamodb::Client::new(&shared);
        let table = unique("stream");
        crm_local::ensure_table(&dynamodb, &table).await.unwrap();
        let mut reader = StreamReader::open(&shared, &dynamodb, &table).await.unwrap();
        reader.refresh_after = Duration::from_millis(200);
        Self {
            dynamodb,
            table,
            reader,
        }
    }

    async fn put(&self, pk: &str) {
        self.dynamodb
            .put_item()
            .table_name(&self.table)
            .item("PK", s(pk))
            .item("SK", s("A"))
            .send()
            .await
            .unwrap();
    }

    /// Pumps (as `make dev`'s loop does) until the record of `pk` has been handed over;
    /// every key handed over so far, in order.
    async fn read_until(&mut self, pk: &str, seen: &mut Vec<String>) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !seen.iter().any(|k| k == pk) {
            assert!(Instant::now() < deadline, "{pk} never arrived; saw {seen:?}");
            let handed = std::sync::Mutex::new(Vec::new());
            self.reader
                .pump(async |event: aws_lambda_events::dynamodb::Event| {
                    for r in event.records {
                        // `S("first")`: the string between the quotes.
                        let key = format!("{:?}", r.change.keys.get("PK"));
                        let pk = key.split('"').nth(1).unwrap_or_default().to_owned();
                        handed.lock().unwrap().push(pk);
                    }
                    DynamoDbEventResponse::default()
                })
                .await
                .unwrap();
            seen.extend(handed.into_inner().unwrap());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

#[tokio::test]
async fn after_a_cancelled_transaction_on_plain_moto_the_next_record_still_arrives() {
    let moto = plain_moto();
    let mut f = Fixture::on(&moto.endpoint).await;
    let mut seen = Vec::new();
    f.put("first").await;
    f.read_until("first", &mut seen).await;

    // A transaction cancelled by its condition (a replayed postback's guard does this):
    // plain moto puts back a copy of the whole table, stream shard included.
    let cancelled = f
        .dynamodb
        .transact_write_items()
        .transact_items(
            TransactWriteItem::builder()
                .put(
                    Put::builder()
                        .table_name(&f.table)
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
                        .table_name(&f.table)
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

    f.put("second").await;
    f.read_until("second", &mut seen).await;
    // Each committed record once, in order. (Plain moto also streams the cancelled
    // transaction's put, which DynamoDB never does: `infra/emulator.py` corrects that.)
    seen.retain(|k| k != "never");
    assert_eq!(seen, ["first", "second"]);
}

#[tokio::test]
async fn a_stream_that_rolls_over_is_read_to_the_parents_end_then_from_the_child() {
    let emulator = emulator(&[]);
    let mut f = Fixture::on(&emulator.endpoint).await;
    let mut seen = Vec::new();
    f.put("first").await;
    f.read_until("first", &mut seen).await;

    // A record the parent holds, unread, when it closes; then one in the child.
    f.put("late").await;
    let rolled = reqwest::Client::new()
        .post(format!("{}/_emulator/roll-stream?table={}", emulator.endpoint, f.table))
        .send()
        .await
        .unwrap();
    assert_eq!(rolled.status(), 204);
    f.put("second").await;

    f.read_until("second", &mut seen).await;
    assert_eq!(
        seen,
        ["first", "late", "second"],
        "each once, the parent's before the child's"
    );
}

#[tokio::test]
async fn an_expired_iterator_resumes_after_the_last_record_handled() {
    // DynamoDB's iterators last 15 minutes; these one second.
    let emulator = emulator(&["--iterator-lifetime-seconds", "1"]);
    let mut f = Fixture::on(&emulator.endpoint).await;
    let mut seen = Vec::new();
    f.put("first").await;
    f.read_until("first", &mut seen).await;

    tokio::time::sleep(Duration::from_millis(1500)).await;
    f.put("second").await;
    f.read_until("second", &mut seen).await;
    assert_eq!(seen, ["first", "second"], "each once");
}
