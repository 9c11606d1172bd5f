//! `make dev`: every HTTP endpoint on one local server, against the AWS endpoint the
//! environment names (the Makefile starts a local emulator when none is given).

use anyhow::Context;
use crm_http::AppState;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    crm_app::telemetry::init();
    let state = AppState::from_env().await?;
    crm_local::ensure_table(state.store.client(), state.store.table())
        .await
        .context("creating the local table")?;
    let port: u16 = std::env::var("PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(3005);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .with_context(|| format!("binding port {port}"))?;
    let base = format!("http://localhost:{port}");
    println!("\nCRM dev server on {base} (table {})", state.store.table());
    for f in &crm_local::FUNCTIONS {
        for route in f.routes {
            println!("  {base}{route}");
        }
    }
    match &state.config.ingest_token {
        Some(_) => println!("Ingest endpoints require INGEST_TOKEN (?token= or X-Api-Key)."),
        None => println!("INGEST_TOKEN is unset: ingest endpoints accept unauthenticated requests."),
    }
    if let Ok(key) = std::env::var("ADMIN_API_KEY") {
        println!("Admin API: curl -H 'Authorization: Bearer {key}' {base}/api/customers/<id>\n");
    }
    axum::serve(listener, crm_local::app(state))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
