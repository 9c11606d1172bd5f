//! The AWS SDK's own floor: the same client with no code of ours, making the calls a
//! measured request made, right after that request, so that both are measured on the same
//! machine in the same second. (A floor measured once, apart from the rows, moved by a
//! third between two runs of the same build: too much to hold a ratio against.)

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::time::Duration;

use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, Put, TransactWriteItem};
use aws_sdk_sesv2::types::{Destination, EmailContent, RawMessage};
use crm_store::Store;

use crate::measure::{cpu_of, us};

/// What the floor calls a raw SES v2 send among the DynamoDB operations it replays.
pub const SES_SEND: &str = "SES SendEmail (raw)";

/// The plain client over a table of its own, and the CPU of every call it made, per
/// operation.
pub struct Floor {
    store: Store,
    ses: aws_sdk_sesv2::Client,
    next: Cell<u64>,
    spent: RefCell<BTreeMap<String, (Duration, u64)>>,
}

fn key(pk: String) -> HashMap<String, AttributeValue> {
    [("PK", pk), ("SK", "X".to_owned())]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), AttributeValue::S(v)))
        .collect()
}

/// A 200-byte item at `pk`.
fn item(pk: String) -> HashMap<String, AttributeValue> {
    let mut item = key(pk);
    item.insert("v".into(), AttributeValue::S("x".repeat(200)));
    item
}

/// The shapes the floor's calls take, as the rows' tables describe them.
pub const SHAPES: &str = "a `GetItem` and a `DeleteItem` of one key, a `BatchGetItem` of 3 keys, a `Query` answering 3 items, a `TransactWriteItems` of 3 conditional 200-byte puts, an `UpdateItem` adding to a counter, a 200-byte `PutItem`, and an SES v2 raw send of a 4 KB welcome mail";

impl Floor {
    /// A table of its own, holding the three items its reads read.
    pub async fn open() -> anyhow::Result<Self> {
        let shared = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        let store = Store::connect(format!("bench-floor-{}", uuid::Uuid::new_v4())).await;
        crm_local::ensure_table(store.client(), store.table()).await?;
        // As the functions' clients are: no stalled-stream timer.
        let quiet = shared
            .to_builder()
            .stalled_stream_protection(aws_config::stalled_stream_protection::StalledStreamProtectionConfig::disabled())
            .build();
        crm_local::messaging::ensure_sender_identity(&aws_sdk_sesv2::Client::new(&shared), crate::messaging::FROM)
            .await?;
        let floor = Self {
            store,
            ses: aws_sdk_sesv2::Client::new(&quiet),
            next: Cell::new(0),
            spent: RefCell::new(BTreeMap::new()),
        };
        floor.call("TransactWriteItems").await?;
        Ok(floor)
    }

    /// Makes the calls in `calls` (operation → count); their CPU, or `None` if one of them
    /// is an operation the floor does not make.
    pub async fn replay(&self, calls: &BTreeMap<String, u64>) -> anyhow::Result<Option<Duration>> {
        let mut sum = Duration::ZERO;
        for (op, count) in calls {
            for _ in 0..*count {
                let (known, spent) = cpu_of(self.call(op)).await;
                if !known? {
                    return Ok(None);
                }
                sum += spent;
                let mut all = self.spent.borrow_mut();
                let entry = all.entry(op.clone()).or_default();
                entry.0 += spent;
                entry.1 += 1;
            }
        }
        Ok(Some(sum))
    }

    /// One call of `op`; false if the floor does not know it.
    async fn call(&self, op: &str) -> anyhow::Result<bool> {
        let (client, table) = (self.store.client(), self.store.table());
        let i = self.next.get();
        self.next.set(i + 1);
        match op {
            "GetItem" => {
                client
                    .get_item()
                    .table_name(table)
                    .set_key(Some(key("FLOOR#0".into())))
                    .send()
                    .await?;
            }
            "DeleteItem" => {
                client
                    .delete_item()
                    .table_name(table)
                    .set_key(Some(key(format!("FLOOR#GONE#{i}"))))
                    .send()
                    .await?;
            }
            "BatchGetItem" => {
                let wanted = KeysAndAttributes::builder()
                    .set_keys(Some((0..3).map(|j| key(format!("FLOOR#{j}"))).collect()))
                    .consistent_read(true)
                    .build()?;
                client.batch_get_item().request_items(table, wanted).send().await?;
            }
            "Query" => {
                client
                    .query()
                    .table_name(table)
                    .key_condition_expression("PK = :pk")
                    .expression_attribute_values(":pk", AttributeValue::S("FLOOR#Q".into()))
                    .send()
                    .await?;
            }
            "TransactWriteItems" => {
                // The first call writes the items the reads read; the rest new ones.
                let items = (0..3)
                    .map(|j| {
                        let pk = if i == 0 {
                            format!("FLOOR#{j}")
                        } else {
                            format!("FLOOR#{i}#{j}")
                        };
                        let put = Put::builder()
                            .table_name(table)
                            .set_item(Some(item(pk)))
                            .condition_expression("attribute_not_exists(PK)")
                            .build()?;
                        Ok(TransactWriteItem::builder().put(put).build())
                    })
                    .collect::<anyhow::Result<Vec<_>>>()?;
                client
                    .transact_write_items()
                    .set_transact_items(Some(items))
                    .client_request_token(uuid::Uuid::new_v4().to_string())
                    .send()
                    .await?;
                if i == 0 {
                    // The Query's three items, under one partition key.
                    for j in 0..3 {
                        let mut q = item("FLOOR#Q".into());
                        q.insert("SK".into(), AttributeValue::S(format!("X{j}")));
                        client.put_item().table_name(table).set_item(Some(q)).send().await?;
                    }
                }
            }
            "UpdateItem" => {
                client
                    .update_item()
                    .table_name(table)
                    .set_key(Some(key("FLOOR#1".into())))
                    .update_expression("ADD n :one")
                    .expression_attribute_values(":one", AttributeValue::N("1".into()))
                    .send()
                    .await?;
            }
            "PutItem" => {
                client
                    .put_item()
                    .table_name(table)
                    .set_item(Some(item(format!("FLOOR#PUT#{i}"))))
                    .send()
                    .await?;
            }
            SES_SEND => {
                let mail = format!(
                    "From: {from}\r\nTo: floor@example.com\r\nSubject: Welcome\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{}",
                    "<p>Hola Ana, bienvenida.</p>".repeat(150),
                    from = crate::messaging::FROM,
                );
                let raw = RawMessage::builder()
                    .data(aws_sdk_sesv2::primitives::Blob::new(mail))
                    .build()?;
                self.ses
                    .send_email()
                    .from_email_address(crate::messaging::FROM)
                    .destination(Destination::builder().to_addresses("floor@example.com").build())
                    .content(EmailContent::builder().raw(raw).build())
                    .send()
                    .await?;
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Every call the floor made in the run, per operation: the floor's own table.
    pub fn markdown(&self) -> String {
        let mut md = String::new();
        let _ = writeln!(md, "| operation | calls | CPU µs / call |");
        let _ = writeln!(md, "|---|---:|---:|");
        for (op, (spent, count)) in self.spent.borrow().iter() {
            let _ = writeln!(md, "| {op} | {count} | {} |", us(*spent / (*count).max(1) as u32));
        }
        md
    }

    pub async fn close(&self) -> anyhow::Result<()> {
        crate::harness::done(&self.store).await
    }
}
