//! `make dev`: every HTTP endpoint on one local server and the event functions' loops (stream
//! → journey, queue → sender, five-minute scheduler ticks), against the AWS endpoint the
//! environment names (the Makefile starts a local emulator when none is given).

use std::sync::Arc;

use anyhow::Context;
use crm_app::config::{IngestAuth, Secret};
use crm_http::AppState;
use crm_messaging::{Deps, MessagingConfig};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    crm_app::telemetry::init();
    let mut state = AppState::from_env().await?;
    crm_local::ensure_table(state.store.client(), state.store.table())
        .await
        .context("creating the local table")?;
    let shared = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let mut config = MessagingConfig::from_env()?;
    let port: u16 = std::env::var("PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(3005);
    let base = format!("http://localhost:{port}");
    config.public_base_url.get_or_insert_with(|| base.clone());
    if config.unsubscribe.is_none() {
        // Stable across restarts, so links in mails already delivered locally keep working.
        config.unsubscribe = Some(crm_core::unsubscribe::Keys::derive(
            b"local-dev-unsubscribe-secret-not-for-production",
        ));
    }
    // The admin API's suppression list and the SMS replies key addresses the same way;
    // sources that sign get secrets derived from a fixed development value.
    if state.config.unsubscribe.is_none() || state.config.source_secret.is_none() {
        let mut app_config = (*state.config).clone();
        app_config.unsubscribe = app_config.unsubscribe.or(config.unsubscribe.clone());
        app_config.source_secret = app_config
            .source_secret
            .or(Some(Secret::new("local-dev-source-secret-not-for-production")));
        state.config = Arc::new(app_config);
    }
    let queue_name = format!("{}-send", state.store.table());
    let queue_url = crm_local::messaging::ensure_queue(&aws_sdk_sqs::Client::new(&shared), &queue_name).await?;
    config.queue_url.get_or_insert(queue_url.clone());
    let ses = aws_sdk_sesv2::Client::new(&shared);
    crm_local::messaging::ensure_sender_identity(&ses, config.defaults.from_email.as_str()).await?;
    let real_sending = config.real_sending;
    let deps = Arc::new(Deps::new(&shared, state.store.clone(), config));
    state.extensions.insert(deps.clone());

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .with_context(|| format!("binding port {port}"))?;
    println!("\nCRM dev server on {base} (table {})", state.store.table());
    for f in &crm_local::FUNCTIONS {
        for route in f.routes {
            println!("  {base}{route}");
        }
    }
    println!("Event functions: journey and attribution (table stream), sender (queue {queue_name}),");
    println!("  scheduler and journey-advance (every 5 min;");
    println!("  now: curl {base}/api/cron/process-messages)");
    println!(
        "Sending: {}",
        if real_sending {
            "real (ENABLE_REAL_SENDING=true): SES and SNS here are the local emulator"
        } else {
            "dry run (ENABLE_REAL_SENDING is not true): messages are rendered and recorded, not sent"
        }
    );
    match state.config.ingest_auth {
        IngestAuth::Required => {
            println!("INGEST_AUTH=required: ingest requests need a source's key (?token= or X-Api-Key), as in AWS.")
        }
        IngestAuth::Off => println!(
            "WARNING: INGEST_AUTH=off: ingest endpoints accept requests without a key (the seed's curls work as written).\n  \
             Create sources with POST /api/sources; run INGEST_AUTH=required make dev to behave as AWS does."
        ),
    }
    if let Ok(key) = std::env::var("ADMIN_API_KEY") {
        println!("Admin API: curl -H 'Authorization: Bearer {key}' {base}/api/customers/<id>\n");
    }
    let attribution = Arc::new(crm_attribution::Deps {
        store: state.store.clone(),
        reporting: state.config.reporting.clone(),
    });
    // Not spawned: the loops borrow their dependencies, and run beside the server here.
    let loops = crm_local::messaging::run_loops(deps, attribution, shared, queue_url);
    // The peer address is the client IP the ingest endpoints check sources' networks against
    // (API Gateway's sourceIp in AWS).
    let app = crm_local::app(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    let server = axum::serve(listener, app).with_graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
    });
    tokio::select! {
        served = server => served?,
        looped = loops => looped?,
    }
    Ok(())
}
