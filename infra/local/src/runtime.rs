//! A stand-in for the Lambda Runtime API, the interface a function's runtime client polls:
//! it starts a function's binary as Lambda starts `bootstrap`, hands it one event and takes
//! its answer. `make invoke` (`crm-invoke`) prints that answer, as `sam local invoke -e`
//! does without Docker; the bench times a cold start with it; a test runs every function's
//! binary on its sample events through it.

use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::routing::{get, post};
use serde_json::Value;
use tokio::io::AsyncReadExt;
use tokio::process::Command;

/// How the function ended its one invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// It answered: the body it posted to `…/response`.
    Response(String),
    /// It reported an error (`…/error`, or `…/init/error` at cold start): Lambda's error body.
    Error(String),
    /// It exited without answering (a configuration error at cold start, a panic with
    /// `panic = "abort"`): its exit status.
    Exited(String),
}

/// One invocation's outcome.
#[derive(Debug)]
pub struct Invocation {
    pub answer: Answer,
    /// Process start to the answer: the cold start, the event included.
    pub took: Duration,
    /// What the function wrote (its log lines on stdout, a panic on stderr).
    pub log: String,
}

struct Shared {
    event: Mutex<Option<Value>>,
    answer: Mutex<Option<(Answer, Instant)>>,
    /// The invocation's deadline, milliseconds since the epoch (Lambda's header).
    deadline_ms: i64,
}

/// Runs `binary` for one invocation of `event`, with `env` on top of this process's
/// environment (the AWS endpoint and credentials among it) and the variables Lambda sets.
/// `show_log`: the function's log (stdout and stderr alike) is also copied to this
/// process's stderr as it runs, so this process's stdout carries only the answer.
pub async fn invoke(
    binary: &Path,
    function: &str,
    event: Value,
    env: &[(String, String)],
    show_log: bool,
    timeout: Duration,
) -> anyhow::Result<Invocation> {
    let deadline_ms = (time::OffsetDateTime::now_utc() + timeout).unix_timestamp_nanos() / 1_000_000;
    let shared = Arc::new(Shared {
        event: Mutex::new(Some(event)),
        answer: Mutex::default(),
        deadline_ms: deadline_ms as i64,
    });
    let api = Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route("/2018-06-01/runtime/invocation/{id}/response", post(response))
        .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
        .route("/2018-06-01/runtime/init/error", post(init_error))
        .with_state(shared.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let server = tokio::spawn(async move { axum::serve(listener, api).await });
    let started = Instant::now();
    let mut child = Command::new(binary)
        .env("AWS_LAMBDA_RUNTIME_API", address.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", function)
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "local")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{function}"))
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    // Read as they come, so a chatty function never blocks on a full pipe.
    let out = child.stdout.take().map(|pipe| tokio::spawn(drain(pipe, show_log)));
    let err = child.stderr.take().map(|pipe| tokio::spawn(drain(pipe, show_log)));
    let deadline = started + timeout;
    let ended = loop {
        if let Some(answered) = shared.answer.lock().expect("lock").take() {
            break Ok(answered);
        }
        if let Some(status) = child.try_wait()? {
            // It may have answered just before it exited.
            let answered = shared.answer.lock().expect("lock").take();
            break Ok(answered.unwrap_or_else(|| (Answer::Exited(status.to_string()), Instant::now())));
        }
        if Instant::now() > deadline {
            break Err(anyhow::anyhow!("{function} did not answer within {timeout:?}"));
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    let _ = child.kill().await;
    server.abort();
    let mut log = String::new();
    for task in [out, err].into_iter().flatten() {
        log.push_str(&task.await.unwrap_or_default());
    }
    let (answer, at) = ended.map_err(|e| e.context(log.clone()))?;
    Ok(Invocation {
        answer,
        took: at - started,
        log,
    })
}

/// The one event, then nothing: Lambda would freeze the process, the caller kills it.
async fn next(State(shared): State<Arc<Shared>>) -> axum::response::Response {
    let Some(event) = shared.event.lock().expect("lock").take() else {
        return std::future::pending().await;
    };
    let headers = [
        ("lambda-runtime-aws-request-id", "local-1".to_owned()),
        ("lambda-runtime-deadline-ms", shared.deadline_ms.to_string()),
        (
            "lambda-runtime-invoked-function-arn",
            "arn:aws:lambda:us-east-1:000000000000:function:local".to_owned(),
        ),
        (
            "lambda-runtime-trace-id",
            "Root=1-00000000-000000000000000000000000".to_owned(),
        ),
    ];
    axum::response::IntoResponse::into_response((headers, axum::Json(event)))
}

/// Everything `pipe` gives until it closes; with `show`, copied to this process's stderr
/// as it comes.
async fn drain(mut pipe: impl tokio::io::AsyncRead + Unpin, show: bool) -> String {
    let (mut all, mut chunk) = (Vec::new(), [0u8; 8192]);
    loop {
        match pipe.read(&mut chunk).await {
            Ok(0) | Err(_) => return String::from_utf8_lossy(&all).into_owned(),
            Ok(n) => {
                if show {
                    let _ = std::io::Write::write_all(&mut std::io::stderr(), &chunk[..n]);
                }
                all.extend_from_slice(&chunk[..n]);
            }
        }
    }
}

fn answered(shared: &Shared, answer: Answer) -> &'static str {
    *shared.answer.lock().expect("lock") = Some((answer, Instant::now()));
    r#"{"status":"OK"}"#
}

async fn response(State(shared): State<Arc<Shared>>, UrlPath(_id): UrlPath<String>, body: Bytes) -> &'static str {
    answered(&shared, Answer::Response(String::from_utf8_lossy(&body).into_owned()))
}

async fn error(State(shared): State<Arc<Shared>>, UrlPath(_id): UrlPath<String>, body: Bytes) -> &'static str {
    answered(&shared, Answer::Error(String::from_utf8_lossy(&body).into_owned()))
}

async fn init_error(State(shared): State<Arc<Shared>>, body: Bytes) -> &'static str {
    answered(&shared, Answer::Error(String::from_utf8_lossy(&body).into_owned()))
}
