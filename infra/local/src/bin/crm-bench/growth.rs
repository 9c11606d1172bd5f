//! The emulator as its table grows: its memory over many ingests, whether a lead costs the
//! same on a small and a large table, and the console's pages on the large one.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::endpoints::{click, endpoint, lead};
use crate::floor::Floor;
use crate::harness::{customer_of, done, fresh, setup};
use crate::measure::{Row, env_number, n, table};

pub struct Growth {
    big: usize,
    fill: Duration,
    before: Option<Value>,
    after: Option<Value>,
    replayed: Option<Value>,
    leads: Vec<Row>,
    console: Vec<Row>,
}

fn emulator_stats() -> Option<Value> {
    std::env::var("AWS_ENDPOINT_URL")
        .ok()
        .and_then(|e| crm_local::emulator_stats(&e))
}

/// A lead on a table of ~3 × N items and on one of ~3 × `BENCH_TABLE_INGESTS`, the
/// emulator's memory as the second fills, then the console on it.
pub async fn run(floor: &Floor) -> anyhow::Result<Growth> {
    let (n, big) = (n(), env_number("BENCH_TABLE_INGESTS", 10_000));
    let (small_app, small_store) = fresh().await?;
    setup(&small_app, n, &click).await?;
    let small = endpoint("lead, table of ~3 × N items", &small_app, &small_store, floor, &lead).await?;
    done(&small_store).await?;
    let before = emulator_stats();
    let (app, store) = fresh().await?;
    let fill_started = Instant::now();
    setup(&app, big, &|i| click(i + 1_000_000)).await?;
    let fill = fill_started.elapsed();
    let after = emulator_stats();
    // The same clicks again: every one a duplicate, so no new data. What memory does now is
    // the emulator's own behaviour, not the table's growth.
    setup(&app, big, &|i| click(i + 1_000_000)).await?;
    let replayed = emulator_stats();
    setup(&app, n, &click).await?;
    let large = endpoint(&format!("lead, table of ~3 × {big} items"), &app, &store, floor, &lead).await?;
    let someone = customer_of(&app, "B_1000000").await?;
    let console = crate::console::pages(&app, &store, floor, &someone, n).await?;
    done(&store).await?;
    Ok(Growth {
        big,
        fill,
        before,
        after,
        replayed,
        leads: vec![small, large],
        console,
    })
}

/// The console alone (`BENCH_ONLY=console`), on a table of `BENCH_TABLE_INGESTS` customers.
pub async fn console_only(floor: &Floor) -> anyhow::Result<String> {
    let (n, big) = (n(), env_number("BENCH_TABLE_INGESTS", 10_000));
    let (app, store) = fresh().await?;
    setup(&app, big, &|i| click(i + 1_000_000)).await?;
    setup(&app, n, &lead).await?;
    let someone = customer_of(&app, "B_1000000").await?;
    let rows = crate::console::pages(&app, &store, floor, &someone, n).await?;
    done(&store).await?;
    let mut md = String::new();
    writeln!(md, "Console pages, {big} customers, {n} requests each:\n")?;
    table(&mut md, &rows, floor)?;
    Ok(md)
}

fn tracked(stats: &Option<Value>) -> String {
    stats
        .as_ref()
        .map(|s| s["trackedInstances"].to_string())
        .unwrap_or_else(|| "?".into())
}

fn mib(stats: &Option<Value>) -> f64 {
    stats.as_ref().and_then(|s| s["residentBytes"].as_f64()).unwrap_or(0.0) / (1024.0 * 1024.0)
}

impl Growth {
    pub fn markdown(&self, floor: &Floor) -> Result<String, std::fmt::Error> {
        let (big, n) = (self.big, n());
        let mut md = String::new();
        writeln!(md, "\n## The emulator as the table grows\n")?;
        writeln!(
            md,
            "{big} new clicks (each stores a click, an identifier and a profile: {} items) took {:.1} s; the emulator's resident memory went from {:.0} MiB to {:.0} MiB, which is those items as moto keeps them (about {:.1} KiB each). Replaying the same {big} clicks (every one a duplicate: no new data) then moved it to {:.0} MiB. Tracked model instances: {} before, {} after, {} after the replays.\n",
            3 * big,
            self.fill.as_secs_f64(),
            mib(&self.before),
            mib(&self.after),
            (mib(&self.after) - mib(&self.before)) * 1024.0 / (3 * big) as f64,
            mib(&self.replayed),
            tracked(&self.before),
            tracked(&self.after),
            tracked(&self.replayed),
        )?;
        table(&mut md, &self.leads, floor)?;
        writeln!(md, "\n## The console on that table\n")?;
        writeln!(
            md,
            "Each page logged in as an owner (the session's own reads included: the session and its user), warm, {n} requests each, on the table above ({big} customers from clicks, and the leads of the rows before). Goal: ≤ 8 DynamoDB requests per page, none a Scan, whatever the table holds. The floor's Query answers 3 items, so a page's ratio is high where its queries answer many.\n"
        )?;
        table(&mut md, &self.console, floor)?;
        Ok(md)
    }
}
