//! The stats counters, kept off the ingest path: the attribution function counts each new
//! click, lead and event once, in one transaction that marks the record as counted (its
//! `attribution`) and adds to every counter row it belongs to. Counter items are written
//! only by that function, so no ingest request ever waits on a hot counter.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use crm_core::attribution::Attribution;
use crm_core::records::{Activity, ClickRecord, Counts, RecordKind};
use crm_core::stats::{CountedRow, DayCounters, Delta, Dimension, FxRates, Hour, Row};
use crm_core::values::CustomerId;
use futures::{StreamExt, TryStreamExt};
use rust_decimal::Decimal;
use time::{Date, OffsetDateTime};

use crate::codec::{self, Expr, n, s};
use crate::keys::{self, entity};
use crate::{CommitError, Item, Store, StoreError, classify};

/// Months of counters read at once by a report: enough to overlap DynamoDB's round trips,
/// few enough that an emulator answering one request at a time stays inside each
/// request's timeout.
const PARALLEL_MONTHS: usize = 4;
/// A transaction that loses to another one touching the same counter is sent again this
/// many times before the record is left for the stream's retry.
const CONFLICT_RETRIES: u32 = 8;

impl Store {
    /// Which of `rows` this record is its customer's first in: each row is claimed for the
    /// first record that asks (and stays claimed for it, so a redelivered record gets the
    /// same answer). Rows already claimed under `merged` (the person's other customer ids)
    /// were counted for this person before the merge, and are not claimed again.
    pub async fn first_in(
        &self,
        customer: &CustomerId,
        merged: &[CustomerId],
        rows: &[Row],
        record_id: &str,
    ) -> Result<BTreeSet<Row>, StoreError> {
        let seen_before: BTreeSet<String> = if merged.is_empty() {
            BTreeSet::new()
        } else {
            self.batch_get(merged.iter().map(|id| (keys::customer_pk(id), keys::SEEN_SK)).collect())
                .await?
                .into_values()
                .flat_map(|item| item.into_keys())
                .collect()
        };
        let rows: Vec<Row> = rows
            .iter()
            .filter(|r| !seen_before.contains(&keys::seen_attr(r)))
            .cloned()
            .collect();
        if rows.is_empty() {
            return Ok(BTreeSet::new());
        }
        let rows = rows.as_slice();
        let mut e = Expr::default();
        let id = e.value(s(record_id));
        let names: Vec<(String, &Row)> = rows.iter().map(|r| (e.name(&keys::seen_attr(r)), r)).collect();
        let mut set: Vec<String> = names
            .iter()
            .map(|(name, _)| format!("{name} = if_not_exists({name}, {id})"))
            .collect();
        set.push(format!("{} = {}", e.name(keys::ENTITY), e.value(s(entity::SEEN))));
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(codec::key(keys::customer_pk(customer), keys::SEEN_SK)))
            .update_expression(format!("SET {}", set.join(", ")))
            .set_expression_attribute_names(Some(e.names))
            .set_expression_attribute_values(Some(e.values))
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .map_err(classify)?;
        let item = out.attributes.unwrap_or_default();
        Ok(rows
            .iter()
            .filter(|r| matches!(item.get(&keys::seen_attr(r)), Some(AttributeValue::S(v)) if v == record_id))
            .cloned()
            .collect())
    }

    /// Whether `event_id` is the customer's first deposit for `brand`: the first event to
    /// claim it keeps it (a redelivered event gets the same answer). Callers claim only
    /// for deposits that reached the milestone; two of those can share its millisecond.
    pub async fn claim_first_deposit(
        &self,
        customer: &CustomerId,
        brand: &str,
        event_id: &str,
    ) -> Result<bool, StoreError> {
        let attr = keys::first_deposit_attr(brand);
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(codec::key(keys::customer_pk(customer), keys::SEEN_SK)))
            .update_expression("SET #a = if_not_exists(#a, :id), #e = :seen")
            .expression_attribute_names("#a", &attr)
            .expression_attribute_names("#e", keys::ENTITY)
            .expression_attribute_values(":id", s(event_id))
            .expression_attribute_values(":seen", s(entity::SEEN))
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .map_err(classify)?;
        Ok(matches!(out.attributes.unwrap_or_default().get(&attr), Some(AttributeValue::S(v)) if v == event_id))
    }

    /// Counts a record: sets its `attribution` and `counted` and adds `deltas` to their
    /// counters, all or nothing. `false` when the record was counted before (or is gone).
    pub async fn count(
        &self,
        kind: RecordKind,
        id: &str,
        attribution: &Attribution,
        counted: &Counts,
        deltas: &[Delta],
    ) -> Result<bool, StoreError> {
        let deltas = merge_deltas(deltas);
        let rows: Vec<CountedRow> = deltas.iter().map(CountedRow::from).collect();
        let mut e = Expr::default();
        let mark = format!(
            "SET {} = {}, {} = {}, {} = {}",
            e.name("attribution"),
            e.value(codec::doc(attribution)?),
            e.name("counted"),
            e.value(codec::doc(counted)?),
            e.name("countedRows"),
            e.value(codec::doc(&rows)?)
        );
        // A voided record is never counted (voiding and counting may race).
        let cond = format!(
            "attribute_exists(PK) AND attribute_not_exists({}) AND attribute_not_exists({})",
            e.name("attribution"),
            e.name("voided")
        );
        let mut items = vec![codec::update(
            &self.table,
            codec::key(keys::record_pk(kind, id), kind.as_str()),
            mark,
            Some(&cond),
            e,
        )?];
        for d in &deltas {
            items.push(self.counter_update(d)?);
        }
        self.counting_transaction(items).await
    }

    /// Commits a counting transaction: conditional guards and unconditional counter rows.
    /// Counter rows are shared, so a conflict with another counting transaction is retried;
    /// `false` when a guard failed.
    pub(crate) async fn counting_transaction(
        &self,
        items: Vec<aws_sdk_dynamodb::types::TransactWriteItem>,
    ) -> Result<bool, StoreError> {
        let mut pause = Duration::from_millis(20);
        for attempt in 0..=CONFLICT_RETRIES {
            match self.transact(items.clone(), &crate::client_request_token()).await {
                Ok(()) => return Ok(true),
                // A condition failed (only the guards have one): nothing to count.
                Err(CommitError::Conflict { failed }) if !failed.is_empty() => return Ok(false),
                Err(CommitError::Conflict { .. }) if attempt < CONFLICT_RETRIES => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(500));
                }
                Err(CommitError::Conflict { .. }) => {
                    return Err(StoreError::Unavailable("counter transaction kept conflicting".into()));
                }
                Err(CommitError::Store(e)) => return Err(e),
            }
        }
        unreachable!("the loop returns on its last attempt")
    }

    pub(crate) fn counter_update(&self, d: &Delta) -> Result<aws_sdk_dynamodb::types::TransactWriteItem, StoreError> {
        let mut e = Expr::default();
        let adds: Vec<String> = d
            .metrics
            .iter()
            .map(|(metric, v)| format!("{} {}", e.name(&keys::counter_attr(metric, d.hour.hour)), e.value(n(v))))
            .collect();
        let set = [
            (keys::ENTITY, s(entity::COUNTERS)),
            ("dimension", s(d.row.dimension.as_str())),
            ("value", s(&d.row.value)),
            ("brand", s(&d.row.brand)),
            ("day", s(d.hour.day.to_string())),
        ]
        .into_iter()
        .map(|(attr, v)| format!("{} = {}", e.name(attr), e.value(v)))
        .collect::<Vec<_>>();
        codec::update(
            &self.table,
            codec::key(
                keys::stats_pk(d.row.dimension, d.hour.day),
                &keys::stats_sk(d.hour.day, &d.row.brand, &d.row.value),
            ),
            format!("SET {} ADD {}", set.join(", "), adds.join(", ")),
            None,
            e,
        )
    }

    /// The counters of one dimension on `days` (consecutive), of one brand or all: one
    /// query per month they touch (a few at once), whatever the period's length.
    pub async fn counters(
        &self,
        dimension: Dimension,
        days: &[Date],
        brand: Option<&str>,
    ) -> Result<Vec<DayCounters>, StoreError> {
        let (Some(first), Some(last)) = (days.iter().min(), days.iter().max()) else {
            return Ok(Vec::new());
        };
        let months = keys::stats_months(*first, *last);
        let pages: Vec<Vec<DayCounters>> = futures::stream::iter(months)
            .map(|(from, to)| self.counters_between(dimension, from, to, brand))
            .buffer_unordered(PARALLEL_MONTHS)
            .try_collect()
            .await?;
        Ok(pages.into_iter().flatten().collect())
    }

    /// The counters of the days `from..=to` of one month.
    async fn counters_between(
        &self,
        dimension: Dimension,
        from: Date,
        to: Date,
        brand: Option<&str>,
    ) -> Result<Vec<DayCounters>, StoreError> {
        let pk = keys::stats_pk(dimension, from);
        let (low, high) = keys::stats_day_range(from, to);
        let q = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("PK = :pk AND SK BETWEEN :low AND :high")
            .expression_attribute_values(":pk", s(&pk))
            .expression_attribute_values(":low", s(low))
            .expression_attribute_values(":high", s(high));
        // A brand's rows are among every brand's of those days: filtered on the way out.
        let q = match brand {
            Some(b) => q
                .filter_expression("#brand = :brand")
                .expression_attribute_names("#brand", "brand")
                .expression_attribute_values(":brand", s(b)),
            None => q,
        };
        self.all_pages(q)
            .await?
            .iter()
            .map(|item| {
                let sk = codec::string(item, keys::SK, &pk)?;
                let day = sk
                    .get(..10)
                    .and_then(|d| Date::parse(d, &time::format_description::well_known::Iso8601::DATE).ok())
                    .ok_or_else(|| codec::corrupt(&pk, format!("counter key {sk} has no day")))?;
                day_counters(item, dimension, day, &pk)
            })
            .collect()
    }

    /// Every lead and event of one UTC day, oldest first (the multi-touch reports read what
    /// each record counted and among which clicks).
    pub async fn records_of_day(&self, kind: RecordKind, day: Date) -> Result<Vec<Activity>, StoreError> {
        let q = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(keys::GSI2)
            .key_condition_expression("GSI2PK = :pk")
            .expression_attribute_values(":pk", s(keys::feed_pk(kind, day)));
        self.all_pages(q)
            .await?
            .into_iter()
            .map(|item| codec::timeline_entry(item).map(|(_, record)| record))
            .collect()
    }

    /// A customer's clicks recorded from `from` to `to`, both included (their timeline).
    pub async fn clicks_between(
        &self,
        customer: &CustomerId,
        from: OffsetDateTime,
        to: OffsetDateTime,
    ) -> Result<Vec<ClickRecord>, StoreError> {
        let q = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(keys::GSI1)
            .key_condition_expression("GSI1PK = :pk AND GSI1SK BETWEEN :from AND :to")
            .filter_expression("#e = :click")
            .expression_attribute_names("#e", keys::ENTITY)
            .expression_attribute_values(":pk", s(keys::customer_pk(customer)))
            .expression_attribute_values(":from", s(keys::timeline_bound(from)))
            .expression_attribute_values(":to", s(keys::timeline_bound_after(to)))
            .expression_attribute_values(":click", s(RecordKind::Click.as_str()));
        let mut clicks = Vec::new();
        for item in self.all_pages(q).await? {
            if let (_, Activity::Click(c)) = codec::timeline_entry(item)? {
                clicks.push(c);
            }
        }
        Ok(clicks)
    }

    pub async fn click(&self, click_id: &str) -> Result<Option<ClickRecord>, StoreError> {
        let pk = keys::record_pk(RecordKind::Click, click_id);
        self.get_as(pk, RecordKind::Click.as_str(), |item, key| {
            serde_dynamo::from_item(item.clone()).map_err(|e| codec::corrupt(key, e.to_string()))
        })
        .await
    }

    /// Claims the daily report of `day` for this run: `false` when a run claimed it before
    /// (the report is sent at most once, whatever retries the schedule makes).
    pub async fn claim_daily_report(&self, day: Date, at: OffsetDateTime) -> Result<bool, StoreError> {
        let mut item = codec::key(keys::daily_report_pk(day), keys::DAILY_REPORT_SK);
        item.insert(keys::ENTITY.into(), s(entity::DAILY_REPORT));
        item.insert("claimedAt".into(), codec::ts(at));
        self.put_new(item).await
    }

    /// Records that the day's report went out (to how many recipients).
    pub async fn mark_daily_report_sent(
        &self,
        day: Date,
        recipients: usize,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(codec::key(keys::daily_report_pk(day), keys::DAILY_REPORT_SK)))
            .update_expression("SET sentAt = :at, recipients = :n")
            .expression_attribute_values(":at", codec::ts(at))
            .expression_attribute_values(":n", n(recipients))
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }

    pub async fn fx_rates(&self) -> Result<FxRates, StoreError> {
        Ok(self
            .get_as(keys::FX_PK.into(), keys::FX_SK, codec::document_from_item)
            .await?
            .unwrap_or_default())
    }

    pub async fn put_fx_rates(&self, rates: &FxRates) -> Result<(), StoreError> {
        self.put(codec::document_item(
            rates,
            keys::FX_PK.into(),
            keys::FX_SK,
            entity::FX_RATES,
        )?)
        .await
    }
}

/// Deltas for the same row and hour become one (a transaction may touch an item once; one
/// record counts in one hour, so that is one per item).
fn merge_deltas(deltas: &[Delta]) -> Vec<Delta> {
    let mut merged: BTreeMap<(Row, Hour), Delta> = BTreeMap::new();
    for d in deltas {
        let entry = merged.entry((d.row.clone(), d.hour)).or_insert_with(|| Delta {
            row: d.row.clone(),
            hour: d.hour,
            metrics: BTreeMap::new(),
        });
        for (m, v) in &d.metrics {
            *entry.metrics.entry(m.clone()).or_insert(Decimal::ZERO) += *v;
        }
    }
    merged.into_values().collect()
}

fn day_counters(item: &Item, dimension: Dimension, day: Date, key: &str) -> Result<DayCounters, StoreError> {
    let mut hours: BTreeMap<u8, BTreeMap<_, Decimal>> = BTreeMap::new();
    for (attr, value) in item {
        let (Some((metric, hour)), AttributeValue::N(raw)) = (keys::parse_counter_attr(attr), value) else {
            continue;
        };
        let v: Decimal = raw
            .parse()
            .map_err(|_| codec::corrupt(key, format!("{attr} is not a number")))?;
        hours.entry(hour).or_default().insert(metric, v);
    }
    Ok(DayCounters {
        row: Row {
            dimension,
            value: codec::string(item, "value", key)?,
            brand: codec::string(item, "brand", key)?,
        },
        day,
        hours,
    })
}
