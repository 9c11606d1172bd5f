//! The table's stream read as Lambda's event source mapping reads it, for `make dev`, the
//! tests and the bench: every shard from its oldest record, a parent read to its end before
//! its children, each batch handed to a stream function's `handle`, a record it reports as
//! failed read again. The reader follows the stream as it changes: it re-describes it, so a
//! shard opened later (DynamoDB closes shards and opens children every few hours) is read
//! after its parent; it recovers an iterator that expired or was stranded (a plain moto
//! replaces the shard object when a transaction is cancelled, and the old iterator then
//! returns nothing for ever) from the last sequence number it handled, and says so.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use aws_lambda_events::dynamodb::Event;
use aws_lambda_events::streams::DynamoDbEventResponse;
use aws_sdk_dynamodbstreams::types::{Record, ShardIteratorType};
use serde_json::{Value, json};

/// A shard as `DescribeStream` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Described {
    pub id: String,
    pub parent: Option<String>,
}

/// Which described shards to start reading: those not known yet whose parent is not
/// waiting to be read (it is unknown, trimmed away, or read to its end), in the order
/// described. A child whose parent is still being read waits, as Lambda's mapping keeps a
/// record's changes in order across a shard split.
pub fn shards_to_start(described: &[Described], known: &BTreeMap<String, bool>) -> Vec<String> {
    let listed: std::collections::BTreeSet<&str> = described.iter().map(|d| d.id.as_str()).collect();
    described
        .iter()
        .filter(|d| !known.contains_key(&d.id))
        .filter(|d| {
            // A parent still listed is read first: to its end if known, else started now.
            let pending = d.parent.as_deref().is_some_and(|p| match known.get(p) {
                Some(ended) => !ended,
                None => listed.contains(p),
            });
            !pending
        })
        .map(|d| d.id.clone())
        .collect()
}

/// Where the reader is in one shard.
struct Shard {
    iterator: Option<String>,
    /// The last record handed over here (sequence number, event id): where a renewed
    /// iterator starts.
    last: Option<(String, String)>,
    /// A renewed iterator starts at the last record handled: skip it if it is that one
    /// (a plain moto reuses sequence numbers after a cancelled transaction, so the record
    /// there may be another, new one).
    skip: Option<String>,
    /// Read to its end: the shard is closed and nothing is left.
    ended: bool,
    /// When a record last arrived here, or the iterator was last renewed.
    fresh_at: Instant,
}

/// A reader of the table's stream: one per stream function, as each has its own mapping.
pub struct StreamReader {
    client: aws_sdk_dynamodbstreams::Client,
    stream_arn: String,
    shards: BTreeMap<String, Shard>,
    described_at: Option<Instant>,
    /// How long a shard may return nothing before its iterator is renewed, and how often the
    /// stream is described again.
    pub refresh_after: Duration,
    /// The mapping's event filters (Lambda's `FilterCriteria`): a record none matches is
    /// passed over without invoking the function. Empty: every record.
    pub filters: Vec<Value>,
}

impl StreamReader {
    /// Opens the table's stream from its oldest record (as a new event source mapping with
    /// `TRIM_HORIZON`): every committed change is seen, once or more (the stream functions
    /// are idempotent).
    pub async fn open(
        shared: &aws_config::SdkConfig,
        dynamodb: &aws_sdk_dynamodb::Client,
        table: &str,
    ) -> anyhow::Result<Self> {
        let described = dynamodb
            .describe_table()
            .table_name(table)
            .send()
            .await
            .context("DescribeTable")?;
        let stream_arn = described
            .table
            .and_then(|t| t.latest_stream_arn)
            .ok_or_else(|| anyhow!("table {table} has no stream"))?;
        let mut reader = Self {
            client: aws_sdk_dynamodbstreams::Client::new(shared),
            stream_arn,
            shards: BTreeMap::new(),
            described_at: None,
            refresh_after: Duration::from_secs(10),
            filters: Vec::new(),
        };
        reader.follow().await?;
        Ok(reader)
    }

    /// Filters the records as the event source mapping of `function` (its logical id in
    /// `template.yaml`) does in AWS.
    pub fn filtered_as(mut self, function: &str) -> anyhow::Result<Self> {
        self.filters = template_filters(function)?;
        Ok(self)
    }

    /// Describes the stream and starts reading the shards it should.
    async fn follow(&mut self) -> anyhow::Result<()> {
        let mut described = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let out = self
                .client
                .describe_stream()
                .stream_arn(&self.stream_arn)
                .set_exclusive_start_shard_id(after.clone())
                .send()
                .await
                .context("DescribeStream")?;
            let Some(d) = out.stream_description else { break };
            described.extend(d.shards.unwrap_or_default().into_iter().map(|s| Described {
                id: s.shard_id.unwrap_or_default(),
                parent: s.parent_shard_id,
            }));
            after = d.last_evaluated_shard_id;
            if after.is_none() {
                break;
            }
        }
        let known: BTreeMap<String, bool> = self.shards.iter().map(|(id, s)| (id.clone(), s.ended)).collect();
        let first = self.described_at.is_none();
        for id in shards_to_start(&described, &known) {
            if !first {
                let parent = described.iter().find(|d| d.id == id).and_then(|d| d.parent.clone());
                tracing::info!(shard = %id, parent = ?parent, "stream reader: a new shard opened; reading it from its start");
            }
            let iterator = self.iterator(&id, None).await?;
            self.shards.insert(
                id,
                Shard {
                    iterator,
                    last: None,
                    skip: None,
                    ended: false,
                    fresh_at: Instant::now(),
                },
            );
        }
        // Shards read to their end and no longer listed are gone for good.
        self.shards
            .retain(|id, s| !s.ended || described.iter().any(|d| &d.id == id));
        self.described_at = Some(Instant::now());
        Ok(())
    }

    /// An iterator of `shard`: at `last` (the record last handled), else from its oldest
    /// record. A position the stream no longer holds (older than 24 hours) starts at the
    /// oldest it holds, and says what was lost.
    async fn iterator(&self, shard: &str, last: Option<&str>) -> anyhow::Result<Option<String>> {
        let request = |kind: ShardIteratorType, sequence: Option<&str>| {
            self.client
                .get_shard_iterator()
                .stream_arn(&self.stream_arn)
                .shard_id(shard)
                .shard_iterator_type(kind)
                .set_sequence_number(sequence.map(str::to_owned))
                .send()
        };
        let Some(last) = last else {
            let out = request(ShardIteratorType::TrimHorizon, None)
                .await
                .context("GetShardIterator")?;
            return Ok(out.shard_iterator);
        };
        match request(ShardIteratorType::AtSequenceNumber, Some(last)).await {
            Ok(out) => Ok(out.shard_iterator),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_trimmed_data_access_exception()) =>
            {
                tracing::error!(%shard, after = %last, "stream reader: records after this one were trimmed (older than 24 hours) before they were read: they are lost; reading from the oldest held");
                let out = request(ShardIteratorType::TrimHorizon, None)
                    .await
                    .context("GetShardIterator")?;
                Ok(out.shard_iterator)
            }
            Err(e) => Err(e).context("GetShardIterator"),
        }
    }

    /// Reads what each shard has, hands it to `consumer` (a stream function's `handle`) as a
    /// Lambda event, and returns how many records it moved past: handled, or passed over by
    /// the filters. A record the function reports as failed is read again next time (as
    /// Lambda retries from it).
    pub async fn pump<F>(&mut self, consumer: F) -> anyhow::Result<usize>
    where
        F: AsyncFn(Event) -> DynamoDbEventResponse,
    {
        if self.described_at.is_none_or(|at| at.elapsed() >= self.refresh_after) {
            self.follow().await?;
        }
        let mut handled = 0;
        let ids: Vec<String> = self.shards.keys().cloned().collect();
        for id in ids {
            handled += self.pump_shard(&id, &consumer).await?;
        }
        Ok(handled)
    }

    /// Renews a shard's iterator at the last record handled (skipped when read again).
    async fn renew(&mut self, id: &str) -> anyhow::Result<()> {
        let last = self.shards.get(id).and_then(|s| s.last.clone());
        let iterator = self.iterator(id, last.as_ref().map(|(seq, _)| seq.as_str())).await?;
        let shard = self.shards.get_mut(id).expect("known");
        shard.iterator = iterator;
        shard.skip = last.map(|(_, event)| event);
        shard.fresh_at = Instant::now();
        Ok(())
    }

    async fn pump_shard<F>(&mut self, id: &str, consumer: &F) -> anyhow::Result<usize>
    where
        F: AsyncFn(Event) -> DynamoDbEventResponse,
    {
        // At most two reads: the iterator held, then (idle too long) a renewed one.
        for attempt in 0..2 {
            let Some(shard) = self.shards.get_mut(id) else {
                return Ok(0);
            };
            if shard.ended {
                return Ok(0);
            }
            let Some(iterator) = shard.iterator.clone() else {
                // No iterator: the shard is closed and read to its end.
                shard.ended = true;
                self.described_at = None;
                return Ok(0);
            };
            let after = shard.last.as_ref().map(|(seq, _)| seq.clone());
            let out = match self
                .client
                .get_records()
                .shard_iterator(&iterator)
                .limit(100)
                .send()
                .await
            {
                Ok(out) => out,
                Err(e) => {
                    // Expired (15 minutes unused), or unknown to the service.
                    let why = aws_sdk_dynamodbstreams::error::DisplayErrorContext(&e).to_string();
                    tracing::warn!(shard = %id, after = ?after, error = %why, "stream reader: the shard's iterator no longer reads; resuming after the last record handled");
                    self.renew(id).await?;
                    return Ok(0);
                }
            };
            let mut records = out.records.unwrap_or_default();
            let shard = self.shards.get_mut(id).expect("known");
            if let Some(skip) = shard.skip.take()
                && records.first().and_then(|r| r.event_id.as_deref()) == Some(skip.as_str())
            {
                records.remove(0);
            }
            if records.is_empty() {
                shard.iterator = out.next_shard_iterator;
                if shard.iterator.is_none() {
                    // Closed and read to its end: its children come next.
                    shard.ended = true;
                    tracing::info!(shard = %id, "stream reader: shard closed and read to its end; following its children");
                    self.described_at = None;
                } else if attempt == 0 && shard.fresh_at.elapsed() >= self.refresh_after {
                    // Nothing for a while: renew the iterator at the last record handled
                    // and read again, so one that was stranded (its shard replaced under
                    // it) cannot keep us waiting for ever.
                    self.renew(id).await?;
                    continue;
                }
                return Ok(0);
            }
            if attempt == 1 {
                tracing::warn!(shard = %id, after = ?after, "stream reader: the shard's iterator had stopped returning records (its shard was replaced); resumed after the last record handled");
            }
            shard.fresh_at = Instant::now();
            return self.hand_over(id, records, out.next_shard_iterator, consumer).await;
        }
        Ok(0)
    }

    /// Hands records to the consumer; on a failure reported, the shard is read again from
    /// the failed record. Returns how many were handled.
    async fn hand_over<F>(
        &mut self,
        id: &str,
        records: Vec<Record>,
        next: Option<String>,
        consumer: &F,
    ) -> anyhow::Result<usize>
    where
        F: AsyncFn(Event) -> DynamoDbEventResponse,
    {
        let mut passed = Vec::new();
        for r in &records {
            let json = record_json(r, &self.stream_arn);
            if self.filters.is_empty() || self.filters.iter().any(|f| matches_pattern(f, &json)) {
                passed.push(json);
            }
        }
        let response = if passed.is_empty() {
            DynamoDbEventResponse::default()
        } else {
            let event: Event =
                serde_json::from_value(json!({ "Records": passed })).context("building the stream event")?;
            consumer(event).await
        };
        let position = |r: &Record| {
            let seq = r.dynamodb.as_ref().and_then(|d| d.sequence_number.clone())?;
            Some((seq, r.event_id.clone().unwrap_or_default()))
        };
        let failed = response
            .batch_item_failures
            .first()
            .and_then(|f| f.item_identifier.clone());
        let Some(failed) = failed else {
            let shard = self.shards.get_mut(id).expect("known");
            if let Some(last) = records.last().and_then(position) {
                shard.last = Some(last);
            }
            if next.is_none() {
                // A closed shard's last records: its children come next.
                shard.ended = true;
                tracing::info!(shard = %id, "stream reader: shard closed and read to its end; following its children");
                self.described_at = None;
            }
            shard.iterator = next;
            return Ok(records.len());
        };
        // Handled up to the failed record; read again from it.
        let handled: Vec<&Record> = records
            .iter()
            .take_while(|r| position(r).is_none_or(|(seq, _)| seq != failed))
            .collect();
        let it = self
            .client
            .get_shard_iterator()
            .stream_arn(&self.stream_arn)
            .shard_id(id)
            .shard_iterator_type(ShardIteratorType::AtSequenceNumber)
            .sequence_number(failed)
            .send()
            .await
            .context("GetShardIterator")?;
        let shard = self.shards.get_mut(id).expect("known");
        if let Some(last) = handled.last().and_then(|r| position(r)) {
            shard.last = Some(last);
        }
        shard.iterator = it.shard_iterator;
        Ok(handled.len())
    }
}

/// The `FilterCriteria` patterns of `function`'s DynamoDB stream event in `template.yaml`.
pub fn template_filters(function: &str) -> anyhow::Result<Vec<Value>> {
    let t: serde_norway::Value = serde_norway::from_str(crate::TEMPLATE)?;
    let events = t["Resources"][function]["Properties"]["Events"]
        .as_mapping()
        .ok_or_else(|| anyhow!("{function} has no Events in template.yaml"))?;
    let stream = events
        .values()
        .find(|e| e["Type"].as_str() == Some("DynamoDB"))
        .ok_or_else(|| anyhow!("{function} reads no DynamoDB stream"))?;
    stream["Properties"]["FilterCriteria"]["Filters"]
        .as_sequence()
        .into_iter()
        .flatten()
        .map(|f| {
            let pattern = f["Pattern"]
                .as_str()
                .ok_or_else(|| anyhow!("{function}: a filter without its Pattern"))?;
            serde_json::from_str(pattern).with_context(|| format!("{function}: filter pattern {pattern}"))
        })
        .collect()
}

/// Whether `record` matches an event filter pattern: every key of the pattern is in the
/// record and matches, and a list lists the values allowed (Lambda's event filtering, for
/// the exact-value patterns the template uses).
pub fn matches_pattern(pattern: &Value, record: &Value) -> bool {
    match pattern {
        Value::Object(fields) => fields
            .iter()
            .all(|(k, sub)| record.get(k).is_some_and(|r| matches_pattern(sub, r))),
        Value::Array(allowed) => allowed.contains(record),
        _ => false,
    }
}

/// A stream record as Lambda delivers it (DynamoDB JSON images).
fn record_json(r: &Record, stream_arn: &str) -> Value {
    let d = r
        .dynamodb
        .clone()
        .unwrap_or_else(|| aws_sdk_dynamodbstreams::types::StreamRecord::builder().build());
    let image = |i: Option<std::collections::HashMap<String, aws_sdk_dynamodbstreams::types::AttributeValue>>| {
        serde_json::to_value(serde_dynamo::Item::from(i.unwrap_or_default())).unwrap_or(Value::Null)
    };
    json!({
        "eventID": r.event_id,
        "eventName": r.event_name.as_ref().map(|e| e.as_str()),
        "eventSource": "aws:dynamodb",
        "eventVersion": "1.1",
        "awsRegion": r.aws_region,
        "eventSourceARN": stream_arn,
        "dynamodb": {
            "ApproximateCreationDateTime": d.approximate_creation_date_time.map(|t| t.as_secs_f64()),
            "Keys": image(d.keys),
            "NewImage": image(d.new_image),
            "OldImage": image(d.old_image),
            "SequenceNumber": d.sequence_number,
            "SizeBytes": d.size_bytes,
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_filters_pass_what_lambda_would_pass() {
        let attribution = template_filters("AttributionFunction").unwrap();
        let journey = template_filters("JourneyFunction").unwrap();
        let record = |name: &str, image: Value| json!({"eventName": name, "dynamodb": {"NewImage": image}});
        let click = record("INSERT", json!({"entityType": {"S": "CLICK"}, "PK": {"S": "CLICK#1"}}));
        let counter = record("MODIFY", json!({"entityType": {"S": "STATS"}}));
        let deposit = record(
            "INSERT",
            json!({"entityType": {"S": "EVENT"}, "eventType": {"S": "deposit"}}),
        );
        let registration = record(
            "INSERT",
            json!({"entityType": {"S": "EVENT"}, "eventType": {"S": "registration"}}),
        );
        let customer = record("MODIFY", json!({"entityType": {"S": "CUSTOMER"}}));
        let passes = |filters: &[Value], r: &Value| filters.iter().any(|f| matches_pattern(f, r));
        assert!(passes(&attribution, &click) && passes(&attribution, &registration));
        assert!(!passes(&attribution, &counter) && !passes(&attribution, &customer));
        assert!(!passes(
            &attribution,
            &record("MODIFY", json!({"entityType": {"S": "CLICK"}}))
        ));
        assert!(passes(&journey, &customer) && passes(&journey, &deposit));
        assert!(!passes(&journey, &registration) && !passes(&journey, &click));
    }

    fn shard(id: &str, parent: Option<&str>) -> Described {
        Described {
            id: id.into(),
            parent: parent.map(Into::into),
        }
    }

    #[test]
    fn at_start_every_shard_without_a_pending_parent_is_read() {
        let described = [shard("a", None), shard("b", Some("trimmed-away"))];
        assert_eq!(shards_to_start(&described, &BTreeMap::new()), ["a", "b"]);
    }

    #[test]
    fn a_child_waits_until_its_parent_is_read_to_its_end() {
        // A rollover: shard `a` closed, `b` opened as its child.
        let described = [shard("a", None), shard("b", Some("a"))];
        let reading = BTreeMap::from([("a".to_owned(), false)]);
        assert!(
            shards_to_start(&described, &reading).is_empty(),
            "a is still being read"
        );
        let ended = BTreeMap::from([("a".to_owned(), true)]);
        assert_eq!(shards_to_start(&described, &ended), ["b"]);
        // Both listed at once, neither known: the parent first, the child after it ends.
        assert_eq!(shards_to_start(&described, &BTreeMap::new()), ["a"]);
        // Known shards are not started again.
        let both = BTreeMap::from([("a".to_owned(), true), ("b".to_owned(), false)]);
        assert!(shards_to_start(&described, &both).is_empty());
    }

    #[test]
    fn a_split_opens_two_children_read_side_by_side() {
        let described = [shard("a", None), shard("b", Some("a")), shard("c", Some("a"))];
        let ended = BTreeMap::from([("a".to_owned(), true)]);
        assert_eq!(shards_to_start(&described, &ended), ["b", "c"]);
    }
}
