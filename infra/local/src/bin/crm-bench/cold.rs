//! Cold start and size of every function's release binary: process start to its first
//! answer through the local stand-in for the Lambda Runtime API, serving a sample event.

use std::fmt::Write as _;
use std::time::Duration;

use anyhow::Context;

use crm_local::runtime;
use crm_store::Store;

use crate::harness::{ADMIN_KEY, done};
use crate::measure::ms;

/// A binary's cold start, and its size and zipped size.
struct Binary {
    name: &'static str,
    took: anyhow::Result<Duration>,
    sizes: std::io::Result<(u64, u64)>,
}

pub struct Cold(Vec<Binary>);

/// A release binary's size, and its size deflated (what a zip of it holds, give or take
/// the zip's own ~100 bytes).
fn sizes(binary: &str) -> std::io::Result<(u64, u64)> {
    let bytes = std::fs::read(format!("target/release/{binary}"))?;
    let mut zipped = flate2::write::DeflateEncoder::new(std::io::sink(), flate2::Compression::default());
    std::io::Write::write_all(&mut zipped, &bytes)?;
    zipped.try_finish()?;
    Ok((bytes.len() as u64, zipped.total_out()))
}

/// The function's sample event from `events/<binary>/`: the seed request where there is
/// one, else the first by name.
fn sample(binary: &str) -> anyhow::Result<String> {
    let dir = format!("events/{binary}");
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {dir}"))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort_by_key(|p| {
        (
            !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("seed")),
            p.clone(),
        )
    });
    let first = files.first().with_context(|| format!("no sample event in {dir}"))?;
    std::fs::read_to_string(first).with_context(|| format!("reading {}", first.display()))
}

/// Process start to the first answer, on a table of its own.
async fn cold_start(binary: &str) -> anyhow::Result<Duration> {
    let table = format!("bench-cold-{}", uuid::Uuid::new_v4());
    let store = Store::connect(table.clone()).await;
    crm_local::ensure_table(store.client(), &table).await?;
    let mut env = vec![
        ("TABLE_NAME".to_owned(), table),
        ("ADMIN_API_KEY".to_owned(), ADMIN_KEY.to_owned()),
        (
            "SOURCE_SECRET".to_owned(),
            "bench-source-secret-0123456789abcdef".to_owned(),
        ),
        // Never sent to: no message is due on a fresh table.
        (
            "SEND_QUEUE_URL".to_owned(),
            format!(
                "{}/123456789012/bench-cold",
                std::env::var("AWS_ENDPOINT_URL").unwrap_or_default()
            ),
        ),
        ("RUST_LOG".to_owned(), "warn".to_owned()),
    ];
    env.extend(
        crate::messaging::ENV
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    let path = std::path::PathBuf::from(format!("target/release/{binary}"));
    let invoked = runtime::invoke(
        &path,
        binary,
        serde_json::from_str(&sample(binary)?)?,
        &env,
        false,
        Duration::from_secs(20),
    )
    .await;
    done(&store).await?;
    let invoked = invoked?;
    match invoked.answer {
        runtime::Answer::Exited(status) => Err(anyhow::anyhow!(
            "{binary} exited ({status}): {}",
            invoked.log.lines().last().unwrap_or("")
        )),
        _ => Ok(invoked.took),
    }
}

/// Every HTTP and event function, in `crm_local`'s order.
pub async fn run() -> Cold {
    let binaries = crm_local::FUNCTIONS
        .iter()
        .map(|f| f.binary)
        .chain(crm_local::EVENT_FUNCTIONS.iter().map(|(_, b)| *b));
    let mut cold = Vec::new();
    for binary in binaries {
        cold.push(Binary {
            name: binary,
            took: cold_start(binary).await,
            sizes: sizes(binary),
        });
    }
    Cold(cold)
}

impl Cold {
    pub fn markdown(&self) -> Result<String, std::fmt::Error> {
        let mut md = String::new();
        writeln!(md, "\n## Cold start and size per function binary\n")?;
        writeln!(
            md,
            "Process start to the first answer, through a local stand-in for the Lambda Runtime API serving the function's sample event from `events/` (configuration, SDK client, one request including its DynamoDB calls). Profile: `lto = true`, `codegen-units = 1`, `strip = true`, `panic = \"abort\"`, host target ({}).\n",
            std::env::consts::ARCH
        )?;
        writeln!(
            md,
            "Zipped: the binary deflated as Lambda's deployment package holds it (`bootstrap` in a zip; the goal is at most 10 MB each). `make sam-build` prints the same for the artifacts SAM built.\n"
        )?;
        writeln!(md, "| binary | cold start ms | size MiB | zipped MiB |")?;
        writeln!(md, "|---|---:|---:|---:|")?;
        for Binary { name, took, sizes } in &self.0 {
            let took = took.as_ref().map(|d| ms(*d)).unwrap_or_else(|e| format!("failed: {e}"));
            let mib = |bytes: u64| format!("{:.1}", bytes as f64 / 1048576.0);
            let (size, zipped) = match sizes {
                Ok((size, zipped)) => (mib(*size), mib(*zipped)),
                Err(_) => Default::default(),
            };
            writeln!(md, "| {name} | {took} | {size} | {zipped} |")?;
        }
        Ok(md)
    }
}
