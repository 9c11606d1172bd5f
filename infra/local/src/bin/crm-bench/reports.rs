//! Attribution and reports: 30 days of clicks and deposits for `BRANDS` brands, the
//! attribution function over the table's stream (its CPU and requests per record), then
//! reports over those 30 days of counters.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use axum::Router;
use crm_app::config::Config;
use crm_core::stats::Dimension;
use crm_store::Store;
use serde_json::json;

use crate::floor::Floor;
use crate::harness::{call, done, fresh_on, request, send};
use crate::measure::{Row, cpu_of, its_calls, measure_with, metered, ops_text, table, times, us, us_or_dash};

/// Brands the records spread over.
const BRANDS: usize = 20;
/// Requests per report row.
const RUNS: usize = 20;

struct Attribution {
    records: usize,
    requests_per_record: f64,
    per_op: BTreeMap<String, f64>,
    cpu: Duration,
    /// Of which inside the SDK's calls.
    sdk: Duration,
    floor: Option<Duration>,
    seconds: f64,
    /// Items in the table afterwards.
    items: i64,
}

/// The attribution handler's records so far: CPU, of which in the SDK's calls, the
/// floor's, calls by operation, and the first error the floor met.
struct Tally {
    cpu: Duration,
    sdk: Duration,
    floor: Option<Duration>,
    calls: BTreeMap<String, u64>,
    error: Option<anyhow::Error>,
}

impl Default for Tally {
    fn default() -> Self {
        Self {
            cpu: Duration::ZERO,
            sdk: Duration::ZERO,
            floor: Some(Duration::ZERO),
            calls: BTreeMap::new(),
            error: None,
        }
    }
}

impl Tally {
    fn add(
        &mut self,
        cpu: Duration,
        sdk: Duration,
        calls: BTreeMap<String, u64>,
        replayed: anyhow::Result<Option<Duration>>,
    ) {
        self.cpu += cpu;
        self.sdk += sdk;
        match replayed {
            Ok(f) => self.floor = self.floor.zip(f).map(|(a, b)| a + b),
            Err(e) => self.error = Some(e),
        }
        for (op, c) in calls {
            *self.calls.entry(op).or_default() += c;
        }
    }
}

pub struct Reports {
    attribution: Attribution,
    reports: Vec<Row>,
}

/// The emulator answers a Query by reading its whole table, one request at a time: a
/// report's queries wait on each other there far longer than on DynamoDB, so this store
/// allows 30 s a request (the functions' 3 s would answer 503). Stalled-stream protection
/// off, as the functions' store has it.
async fn patient_store() -> Store {
    let patient = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .operation_timeout(Duration::from_secs(30))
                .build(),
        )
        .stalled_stream_protection(aws_config::stalled_stream_protection::StalledStreamProtectionConfig::disabled())
        .load()
        .await;
    Store::from_sdk_config(&patient, format!("bench-{}", uuid::Uuid::new_v4()))
}

pub async fn run(floor: &Floor) -> anyhow::Result<Reports> {
    let (app, store) = fresh_on(patient_store().await).await?;
    let attribution = attribution(&app, &store, floor).await?;
    let today = time::OffsetDateTime::now_utc().date();
    let from = today - time::Duration::days(29);
    let mut reports = Vec::new();
    for (by, what, dimension) in [
        ("brand", format!("by brand ({BRANDS} brands)"), Dimension::Brand),
        ("day", "by day".to_owned(), Dimension::Brand),
        ("influencer", "by influencer".to_owned(), Dimension::Influencer),
    ] {
        let uri = format!("/api/reports?groupBy={by}&from={from}&to={today}");
        let name = format!("report: 30 days {what}");
        // The floor: the same counter queries through the plain client, undecoded; the
        // report's other calls (its GetItem, the influencers' names) as every row's.
        let floor_of = async |calls: &BTreeMap<String, u64>| {
            let (queried, spent) = cpu_of(raw_counters(&store, dimension, from, today)).await;
            let mut others = calls.clone();
            if let Some(q) = others.get_mut("Query") {
                *q = q.saturating_sub(queried?);
            }
            Ok(floor.replay(&others).await?.map(|d| d + spent))
        };
        let step = |_| {
            let (app, req) = (app.clone(), request("GET", &uri, None));
            async move { send(&app, req?).await.map(|_| ()) }
        };
        reports.push(measure_with(&name, &store, RUNS, step, floor_of).await?);
    }
    done(&store).await?;
    Ok(Reports { attribution, reports })
}

/// A report's counter queries through the plain client: every month's partition of
/// `dimension` the report reads (its days `from..=to` and one more on each side, as
/// `Period::utc_days` has them), every page, nothing decoded. How many queries it made.
async fn raw_counters(store: &Store, dimension: Dimension, from: time::Date, to: time::Date) -> anyhow::Result<u64> {
    let mut queries = 0;
    for (a, b) in crm_store::keys::stats_months(from.previous_day().expect("a day"), to.next_day().expect("a day")) {
        let (low, high) = crm_store::keys::stats_day_range(a, b);
        let mut start = None;
        loop {
            let out = store
                .client()
                .query()
                .table_name(store.table())
                .key_condition_expression("PK = :pk AND SK BETWEEN :low AND :high")
                .expression_attribute_values(":pk", AttributeValue::S(crm_store::keys::stats_pk(dimension, a)))
                .expression_attribute_values(":low", AttributeValue::S(low.clone()))
                .expression_attribute_values(":high", AttributeValue::S(high.clone()))
                .set_exclusive_start_key(start)
                .send()
                .await?;
            queries += 1;
            start = out.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
    }
    Ok(queries)
}

/// Clicks and deposits spread over 30 days and `BRANDS` brands, then the attribution
/// function over the stream, as Lambda would run it: the CPU of its handler alone (the
/// local stream reader does what Lambda's event source mapping does, outside the
/// function), and the floor of each record's calls right after it.
async fn attribution(app: &Router, store: &Store, floor: &Floor) -> anyhow::Result<Attribution> {
    let now = time::OffsetDateTime::now_utc();
    for day in 0..30i64 {
        for b in 0..BRANDS {
            let click = format!("rep_{day}_{b}");
            let brand = format!("brand{b}");
            let occurred = crm_core::values::format_ts(now - time::Duration::days(day));
            call(
                app,
                "POST",
                "/api/ingest/click",
                Some(json!({"clickId": click, "brand": brand, "influencerId": format!("inf{}", b % 5)})),
            )
            .await?;
            call(
                app,
                "POST",
                "/api/postback",
                Some(json!({"event": "deposit", "clickId": click, "operator": brand, "amount": "10.5", "occurredAt": occurred})),
            )
            .await?;
        }
    }
    let config = Config::from_lookup(|k| match k {
        "TABLE_NAME" => Some(store.table().to_owned()),
        _ => None,
    })?;
    let deps = crm_attribution::Deps {
        store: store.clone(),
        reporting: config.reporting,
    };
    let shared = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let mut reader = crm_local::stream::StreamReader::open(&shared, store.client(), store.table())
        .await?
        .filtered_as("AttributionFunction")?;
    let tally = RefCell::new(Tally::default());
    let started = Instant::now();
    let mut records = 0;
    loop {
        let handled = reader
            .pump(async |e| {
                store.calls().reset();
                let (answer, cpu, sdk) = metered(crm_attribution::handle(&deps, e)).await;
                let calls = store.calls().snapshot();
                let replayed = floor.replay(&calls).await;
                tally.borrow_mut().add(cpu, sdk, calls, replayed);
                answer
            })
            .await?;
        if let Some(e) = tally.borrow_mut().error.take() {
            return Err(e);
        }
        if handled == 0 {
            break;
        }
        records += handled;
    }
    let seconds = started.elapsed().as_secs_f64();
    let Tally {
        cpu,
        sdk,
        floor: floor_cpu,
        calls,
        ..
    } = tally.into_inner();
    // Per record means per click and deposit (the reader's filter passes only those).
    let counted = 2 * 30 * BRANDS;
    anyhow::ensure!(
        records >= counted,
        "only {records} stream records for {counted} records"
    );
    let total: u64 = calls.values().sum();
    let per_op = calls
        .iter()
        .map(|(op, c)| (op.clone(), *c as f64 / counted as f64))
        .collect();
    let described = store.client().describe_table().table_name(store.table()).send().await?;
    Ok(Attribution {
        items: described.table.and_then(|t| t.item_count).unwrap_or(0),
        records: counted,
        requests_per_record: total as f64 / counted as f64,
        per_op,
        cpu: cpu / counted as u32,
        sdk: sdk / counted as u32,
        floor: floor_cpu.map(|f| f / counted as u32),
        seconds,
    })
}

impl Reports {
    pub fn markdown(&self, floor: &Floor) -> Result<String, std::fmt::Error> {
        let a = &self.attribution;
        let [sdk, ratio] = its_calls(floor, a.cpu, a.sdk, &a.per_op);
        let mut md = String::new();
        writeln!(md, "\n## Attribution and reports\n")?;
        writeln!(
            md,
            "Attribution: {} records ({} clicks, each followed by a deposit dated from 0 to 29 days back, for {BRANDS} brands) counted by the attribution function over the table's stream (filtered as its event source mapping filters it): {:.2} DynamoDB requests per record ({}), {} µs CPU per record in the function's handler, of which {} µs inside its SDK calls (whole; in brackets, between the meter's hooks) ({} its calls; goal ≤ 1.5×), against {} µs for the floor's small calls of the same kinds ({}), {:.1} s in all.\n",
            a.records,
            a.records / 2,
            a.requests_per_record,
            ops_text(&a.per_op),
            us(a.cpu),
            sdk,
            ratio,
            us_or_dash(a.floor),
            times(a.cpu, a.floor),
            a.seconds
        )?;
        writeln!(
            md,
            "Reports over those 30 days of counters (last touch: one paged query per month partition the period touches, at most 4 at a time), {RUNS} requests each. The emulator answers a query by reading its whole table (here some {} items), one request at a time, so the latency is the emulator's; the requests per report are what a report costs on DynamoDB. Each report's floor is its own queries (the months' counter partitions, every page) through the plain client, one after another, items left undecoded, plus its other calls, made after each request: `× SDK floor` holds the goal, ≤ 2×. (A report's month partitions are read concurrently, so its decoding can overlap calls under way, which `in its SDK calls` counts as the SDK's.)\n",
            a.items
        )?;
        table(&mut md, &self.reports, floor)?;
        Ok(md)
    }
}
