//! `make dev`: every HTTP endpoint on one local server and the event functions' loops (stream
//! → journey, queue → sender, five-minute scheduler ticks), against the AWS endpoint the
//! environment names (the Makefile starts a local emulator when none is given).

use std::sync::Arc;

use anyhow::Context;
use crm_app::config::IngestAuth;
use crm_http::AppState;
use crm_messaging::{Deps, MessagingConfig};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    crm_app::telemetry::init();
    let shared = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let account = crm_local::account::prepare(&shared).await?;
    let mut state = AppState::from_env().await?;
    let owner_login = first_owner(&state.store).await?;
    let mut config = MessagingConfig::from_env().await?;
    let port: u16 = std::env::var("PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(3005);
    let base = format!("http://localhost:{port}");
    config.public_base_url.get_or_insert_with(|| base.clone());
    let (queue_name, queue_url) = (account.queue_name, account.queue_url);
    config.queue_url.get_or_insert(queue_url.clone());
    let real_sending = config.real_sending;
    let deps = Arc::new(Deps::new(&shared, state.store.clone(), config));
    let import = Arc::new(crm_import_clicks::Deps::new(
        state.store.clone(),
        &state.config,
        |name| std::env::var(name).ok(),
    )?);
    crm_local::wire(
        &mut state,
        &shared,
        deps.clone(),
        crm_providers::parked::ParkedQueues::urls_from_env(),
        import.clone(),
    );

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
    println!("Console: {base}/dashboard  ({owner_login})");
    if let Ok(key) = std::env::var("ADMIN_API_KEY") {
        println!("Admin API: curl -H 'Authorization: Bearer {key}' {base}/api/customers/<id>\n");
    }
    let attribution = Arc::new(crm_attribution::Deps {
        store: state.store.clone(),
        reporting: state.config.reporting.clone(),
    });
    // Not spawned: the loops borrow their dependencies, and run beside the server here.
    let loops = crm_local::messaging::run_loops(deps, attribution, import, shared, queue_url);
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

/// The console's first owner, from `CONSOLE_OWNER_EMAIL` and `CONSOLE_OWNER_PASSWORD` (or
/// development defaults, printed): how to log in.
async fn first_owner(store: &crm_store::Store) -> anyhow::Result<String> {
    let email = std::env::var("CONSOLE_OWNER_EMAIL").unwrap_or_else(|_| "owner@example.com".into());
    let given = std::env::var("CONSOLE_OWNER_PASSWORD").ok().filter(|p| !p.is_empty());
    let password = given.clone().unwrap_or_else(|| "local-owner-password".into());
    let parsed_email =
        crm_core::values::Email::parse(&email).map_err(|e| anyhow::anyhow!("CONSOLE_OWNER_EMAIL: {}", e.message))?;
    let parsed = crm_core::access::Password::parse(&password)
        .map_err(|e| anyhow::anyhow!("CONSOLE_OWNER_PASSWORD: {}", e.message))?;
    let created = crm_app::access::ensure_owner(store, parsed_email, &parsed, time::OffsetDateTime::now_utc())
        .await
        .context("creating the console's owner")?;
    let shown = if given.is_some() {
        "the password in CONSOLE_OWNER_PASSWORD"
    } else {
        password.as_str()
    };
    Ok(match created {
        Some(_) => format!("owner created: log in as {email} with {shown}"),
        None => format!("log in as {email} with {shown}, unless you changed it"),
    })
}
