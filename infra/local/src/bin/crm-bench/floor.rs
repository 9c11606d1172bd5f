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

use crate::measure::{metered, us};
use crate::meter::meter;

/// What the floor calls a raw SES v2 send among the DynamoDB operations it replays.
pub const SES_SEND: &str = "SES SendEmail (raw)";

/// The operations the floor makes.
const KNOWN: [&str; 8] = [
    "GetItem",
    "DeleteItem",
    "BatchGetItem",
    "Query",
    "TransactWriteItems",
    "UpdateItem",
    "PutItem",
    SES_SEND,
];

/// The plain client over a table of its own, and the CPU of every call it made, per
/// operation.
pub struct Floor {
    store: Store,
    ses: aws_sdk_sesv2::Client,
    next: Cell<u64>,
    /// Per operation: CPU, of which between the meter's hooks, and calls.
    spent: RefCell<BTreeMap<String, (Duration, Duration, u64)>>,
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
        let store = Store::connect(format!("bench-floor-{}", uuid::Uuid::new_v4()))
            .await
            .with_interceptor(meter());
        crm_local::ensure_table(store.client(), store.table()).await?;
        crm_local::messaging::ensure_sender_identity(&aws_sdk_sesv2::Client::new(&shared), crate::messaging::FROM)
            .await?;
        let floor = Self {
            store,
            // As the sender's client is (no stalled-stream timer), metered.
            ses: crm_providers::ses::Ses::new(&shared, None)
                .with_interceptor(meter())
                .client()
                .clone(),
            next: Cell::new(0),
            spent: RefCell::new(BTreeMap::new()),
        };
        // What the reads read: three items to get, three under one key to query.
        let (client, table) = (floor.store.client(), floor.store.table());
        for j in 0..3 {
            let mut q = item("FLOOR#Q".into());
            q.insert("SK".into(), AttributeValue::S(format!("X{j}")));
            for read in [item(format!("FLOOR#{j}")), q] {
                client.put_item().table_name(table).set_item(Some(read)).send().await?;
            }
        }
        Ok(floor)
    }

    /// Makes the calls in `calls` (operation → count); their CPU, or `None` if one of them
    /// is an operation the floor does not make.
    pub async fn replay(&self, calls: &BTreeMap<String, u64>) -> anyhow::Result<Option<Duration>> {
        if calls.keys().any(|op| !KNOWN.contains(&op.as_str())) {
            return Ok(None);
        }
        let mut sum = Duration::ZERO;
        for (op, count) in calls {
            for _ in 0..*count {
                let (made, spent, inside) = metered(self.call(op)).await;
                made?;
                sum += spent;
                let mut all = self.spent.borrow_mut();
                let entry = all.entry(op.clone()).or_default();
                entry.0 += spent;
                entry.1 += inside;
                entry.2 += 1;
            }
        }
        Ok(Some(sum))
    }

    /// One call of `op`, one of `KNOWN`.
    async fn call(&self, op: &str) -> anyhow::Result<()> {
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
                let items = (0..3)
                    .map(|j| {
                        let put = Put::builder()
                            .table_name(table)
                            .set_item(Some(item(format!("FLOOR#{i}#{j}"))))
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
            other => anyhow::bail!("the floor makes no {other}"),
        }
        Ok(())
    }

    /// How many SES sends the floor made (they reach the same emulator as the sender's).
    pub fn sends(&self) -> u64 {
        self.spent.borrow().get(SES_SEND).map(|(_, _, n)| *n).unwrap_or(0)
    }

    /// The whole CPU of calls made `per_op` times each (per request), of which the meter saw
    /// `hooks` between its hooks: scaled by the share of the floor's own calls of those kinds
    /// that fell between the hooks in this run, weighted by the calls. What the SDK does
    /// before its first hook (applying its runtime plugins to the call) is the SDK's, not
    /// ours. `None` if the floor made none of one of those kinds.
    pub fn whole(&self, hooks: Duration, per_op: &BTreeMap<String, f64>) -> Option<Duration> {
        let spent = self.spent.borrow();
        let (mut all, mut between) = (0.0, 0.0);
        for (op, n) in per_op.iter().filter(|(_, n)| **n > 0.0) {
            let (cpu, inside, count) = spent.get(op).filter(|(_, _, count)| *count > 0)?;
            all += n * cpu.as_secs_f64() / *count as f64;
            between += n * inside.as_secs_f64() / *count as f64;
        }
        (between > 0.0).then(|| hooks.mul_f64(all / between))
    }

    /// Every call the floor made in the run, per operation: the floor's own table.
    pub fn markdown(&self) -> String {
        let mut md = String::new();
        let _ = writeln!(
            md,
            "| operation | calls | CPU µs / call | of which between the meter's hooks µs | share |"
        );
        let _ = writeln!(md, "|---|---:|---:|---:|---:|");
        for (op, (spent, inside, count)) in self.spent.borrow().iter() {
            let per = |d: Duration| us(d / (*count).max(1) as u32);
            let share = inside.as_secs_f64() / spent.as_secs_f64().max(f64::MIN_POSITIVE);
            let _ = writeln!(
                md,
                "| {op} | {count} | {} | {} | {:.0} % |",
                per(*spent),
                per(*inside),
                share * 100.0
            );
        }
        md
    }

    pub async fn close(&self) -> anyhow::Result<()> {
        crate::harness::done(&self.store).await
    }
}
