//! `make invoke FN=<function> EVENT=<file>`: one function's binary (the release build, or
//! the `bootstrap` in `.aws-sam/build/`) invoked once with a sample event, through a local
//! stand-in for the Lambda Runtime API, against the AWS endpoint the environment names (the
//! Makefile starts the local emulator). What `sam local invoke <Function> -e <file>` does,
//! without Docker. Prints the function's answer on stdout (its log goes to stderr); exits
//! 1 when the function reported an error or exited without answering.
//!
//! Usage: `crm-invoke <binary> <event.json> [function name]`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use crm_local::runtime::{Answer, invoke};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(binary), Some(event)) = (args.next(), args.next()) else {
        bail!("usage: crm-invoke <binary> <event.json> [function name]");
    };
    let binary = PathBuf::from(binary);
    let function = args.next().unwrap_or_else(|| {
        binary
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    });
    let event: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&event).with_context(|| format!("reading {event}"))?)
            .with_context(|| format!("{event} is not JSON"))?;
    let shared = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let account = crm_local::account::prepare(&shared).await?;
    let mut env = account.env();
    if std::env::var_os("PUBLIC_BASE_URL").is_none() {
        env.push(("PUBLIC_BASE_URL".into(), "http://localhost:3005".into()));
    }
    // The stack sets these for the event functions; a variable already set wins.
    env.retain(|(k, _)| std::env::var_os(k).is_none() || k == "SECRETS_ID");
    let done = invoke(&binary, &function, event, &env, true, Duration::from_secs(60)).await?;
    eprintln!("{function}: answered in {} ms", done.took.as_millis());
    match done.answer {
        Answer::Response(body) => {
            println!("{}", pretty(&body));
            Ok(())
        }
        Answer::Error(body) => {
            println!("{}", pretty(&body));
            bail!("{function} reported an error")
        }
        Answer::Exited(status) => bail!("{function} exited without answering ({status}); its log is above"),
    }
}

fn pretty(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .and_then(|v| serde_json::to_string_pretty(&v))
        .unwrap_or_else(|_| body.to_owned())
}
