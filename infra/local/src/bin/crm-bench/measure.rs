//! Measuring: CPU time, the rows every scenario's tables are made of, and `measure_runs`,
//! which runs a step many times and the SDK's floor beside each run.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::Context;
use crm_store::Store;

use crate::floor::Floor;
use crate::meter::meter;

/// Requests per row (`BENCH_N` overrides).
pub fn n() -> usize {
    env_number("BENCH_N", 200).max(1)
}

pub fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// CPU time this process has used, all threads: the scheduler's own accounting, to the
/// nanosecond, read in one system call (cheap enough to take around each SDK call).
pub fn cpu_time() -> Duration {
    let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `t` is a valid, writable timespec; the clock id is a constant Linux defines.
    let read = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut t) };
    assert_eq!(read, 0, "clock_gettime(CLOCK_PROCESS_CPUTIME_ID)");
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// The CPU `f` takes.
pub async fn cpu_of<T>(f: impl Future<Output = T>) -> (T, Duration) {
    let started = cpu_time();
    let out = f.await;
    (out, cpu_time() - started)
}

/// The CPU `f` takes, and of it the part inside the SDK's calls (`crate::meter`).
pub async fn metered<T>(f: impl Future<Output = T>) -> (T, Duration, Duration) {
    meter().take();
    let (out, cpu) = cpu_of(f).await;
    (out, cpu, meter().take())
}

pub struct Row {
    pub name: String,
    pub p50: Duration,
    pub p95: Duration,
    /// CPU per request.
    pub cpu: Duration,
    /// Of which inside the SDK's calls (`crate::meter`).
    pub sdk: Duration,
    /// The SDK's floor of the same calls, per request, measured beside each request (`None`
    /// where the floor does not know one of the calls).
    pub floor: Option<Duration>,
    pub calls_avg: f64,
    pub calls_max: u64,
    /// DynamoDB calls per request, by operation.
    pub per_op: BTreeMap<String, f64>,
}

/// `cpu` as a multiple of `floor`, as the tables print it.
pub fn times(cpu: Duration, floor: Option<Duration>) -> String {
    floor
        .filter(|f| !f.is_zero())
        .map(|f| format!("{:.2}×", cpu.as_secs_f64() / f.as_secs_f64()))
        .unwrap_or_else(|| "–".into())
}

pub fn ops_text(per_op: &BTreeMap<String, f64>) -> String {
    per_op
        .iter()
        .map(|(op, n)| format!("{op} {n:.2}"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

pub fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

pub fn us(d: Duration) -> String {
    format!("{:.0}", d.as_secs_f64() * 1e6)
}

/// `us`, or a dash where there is no figure.
pub fn us_or_dash(d: Option<Duration>) -> String {
    d.map(us).unwrap_or_else(|| "–".into())
}

/// Runs `step` `runs` times, measuring the latency, CPU and DynamoDB requests of each; after
/// each, the floor makes the same calls through the plain client.
pub async fn measure_runs<F, Fut>(name: &str, store: &Store, floor: &Floor, runs: usize, step: F) -> anyhow::Result<Row>
where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    measure_with(name, store, runs, step, async |calls| floor.replay(calls).await).await
}

/// `measure_runs`, with the floor of each run's calls measured by `floor_of`.
pub async fn measure_with<F, Fut, G>(
    name: &str,
    store: &Store,
    runs: usize,
    mut step: F,
    floor_of: G,
) -> anyhow::Result<Row>
where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
    G: AsyncFn(&BTreeMap<String, u64>) -> anyhow::Result<Option<Duration>>,
{
    let (mut latencies, mut calls, mut ops) = (Vec::new(), Vec::new(), BTreeMap::new());
    let (mut cpu, mut sdk, mut floor) = (Duration::ZERO, Duration::ZERO, Some(Duration::ZERO));
    for i in 0..runs {
        store.calls().reset();
        let started = Instant::now();
        let (done, spent, inside) = metered(step(i)).await;
        latencies.push(started.elapsed());
        done.with_context(|| format!("{name}, request {i}"))?;
        cpu += spent;
        sdk += inside;
        let made = store.calls().snapshot();
        floor = match (floor, floor_of(&made).await?) {
            (Some(sum), Some(this)) => Some(sum + this),
            _ => None,
        };
        for (op, count) in &made {
            *ops.entry(op.clone()).or_insert(0u64) += count;
        }
        calls.push(made.values().sum::<u64>());
    }
    latencies.sort();
    let per_op = ops
        .iter()
        .map(|(op, count)| (op.clone(), *count as f64 / runs as f64))
        .collect();
    Ok(Row {
        name: name.to_owned(),
        p50: percentile(&latencies, 0.5),
        p95: percentile(&latencies, 0.95),
        cpu: cpu / runs as u32,
        sdk: sdk / runs as u32,
        floor: floor.map(|f| f / runs as u32),
        calls_avg: calls.iter().sum::<u64>() as f64 / runs as f64,
        calls_max: calls.iter().copied().max().unwrap_or(0),
        per_op,
    })
}

/// The `in its SDK calls` and `× its calls` cells: the SDK's CPU in a request's calls,
/// whole (`Floor::whole`), with the part the meter saw between its hooks in brackets; the
/// request's CPU over the whole.
pub fn its_calls(floor: &Floor, cpu: Duration, hooks: Duration, per_op: &BTreeMap<String, f64>) -> [String; 2] {
    let whole = floor.whole(hooks, per_op);
    [format!("{} ({})", us_or_dash(whole), us(hooks)), times(cpu, whole)]
}

/// The rows: each one's CPU against the SDK's own CPU in its calls (`× its calls`), and
/// against the floor's small calls of the same kinds (`× SDK floor`).
pub fn table(md: &mut String, rows: &[Row], floor: &Floor) -> std::fmt::Result {
    writeln!(
        md,
        "| case | p50 ms | p95 ms | CPU µs / request | in its SDK calls µs (between hooks) | × its calls | SDK floor µs | × SDK floor | DynamoDB requests avg / max | per operation |"
    )?;
    writeln!(md, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")?;
    for r in rows {
        let [sdk, ratio] = its_calls(floor, r.cpu, r.sdk, &r.per_op);
        writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {:.2} / {} | {} |",
            r.name,
            ms(r.p50),
            ms(r.p95),
            us(r.cpu),
            sdk,
            ratio,
            us_or_dash(r.floor),
            times(r.cpu, r.floor),
            r.calls_avg,
            r.calls_max,
            ops_text(&r.per_op)
        )?;
    }
    Ok(())
}
