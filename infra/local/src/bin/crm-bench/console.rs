//! The console's pages on a large table, logged in as an owner: each list page and the
//! profile page, warm, with the DynamoDB requests each costs.

use anyhow::Context;
use axum::Router;
use axum::body::Body;
use crm_core::access::{Password, Role};
use crm_core::values::Email;
use crm_store::Store;
use tower::ServiceExt;

use crate::floor::Floor;
use crate::measure::{Row, measure_runs};

const PASSWORD: &str = "bench password, long enough";

/// A new owner, logged in through the login form: the session cookie to send back.
async fn log_in(app: &Router, store: &Store) -> anyhow::Result<String> {
    let email = format!("owner-{}@example.com", uuid::Uuid::new_v4().simple());
    crm_app::access::create_user(
        store,
        Email::parse(&email).map_err(|e| anyhow::anyhow!("{e}"))?,
        Role::Owner,
        &Password::parse(PASSWORD).map_err(|e| anyhow::anyhow!("{e}"))?,
        time::OffsetDateTime::now_utc(),
    )
    .await?;
    // The login page hands out the form's own token, in the form and in a cookie.
    let req = http::Request::get("/dashboard/login")
        .header("host", "localhost")
        .body(Body::empty())?;
    let res = app.clone().oneshot(req).await?;
    let login_cookie = res
        .headers()
        .get("set-cookie")
        .and_then(|c| c.to_str().ok())
        .and_then(|c| c.split(';').next())
        .context("the login page set no cookie")?
        .to_owned();
    let token = login_cookie
        .split_once('=')
        .map(|(_, t)| t.to_owned())
        .unwrap_or_default();
    let form = serde_urlencoded::to_string([
        ("email", email.as_str()),
        ("password", PASSWORD),
        ("login_csrf", token.as_str()),
    ])?;
    let req = http::Request::post("/dashboard/login")
        .header("host", "localhost")
        .header("cookie", login_cookie)
        .header("sec-fetch-site", "same-origin")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(form))?;
    let res = app.clone().oneshot(req).await?;
    let cookie = res
        .headers()
        .get("set-cookie")
        .and_then(|c| c.to_str().ok())
        .and_then(|c| c.split(';').next())
        .context("the login set no cookie")?;
    Ok(cookie.to_owned())
}

async fn page(app: &Router, cookie: &str, path: &str) -> anyhow::Result<()> {
    let req = http::Request::get(path)
        .header("host", "localhost")
        .header("cookie", cookie)
        .body(Body::empty())?;
    crate::harness::send(app, req).await.map(|_| ())
}

/// Each page `runs` times after one unmeasured (warm) request.
pub async fn pages(
    app: &Router,
    store: &Store,
    floor: &Floor,
    customer: &str,
    runs: usize,
) -> anyhow::Result<Vec<Row>> {
    let cookie = log_in(app, store).await?;
    let profile = format!("/dashboard/customers/{customer}");
    let cases: [(&str, &str); 10] = [
        ("overview (today, 30 days)", "/dashboard"),
        ("customers, newest first", "/dashboard/customers"),
        ("customers, search by click id", "/dashboard/customers?q=B_1000000"),
        ("customer profile", profile.as_str()),
        ("clicks of today", "/dashboard/clicks"),
        ("leads of today", "/dashboard/leads"),
        ("events of today", "/dashboard/events"),
        (
            "journey automation (messages of today)",
            "/dashboard/journey-automation",
        ),
        ("influencers (30 days)", "/dashboard/influencers"),
        ("report: 30 days by campaign", "/dashboard/reports?groupBy=campaign"),
    ];
    let mut rows = Vec::new();
    for (name, path) in cases {
        page(app, &cookie, path).await?;
        let row = measure_runs(&format!("console: {name}"), store, floor, runs, |_| {
            let (app, cookie) = (app.clone(), cookie.clone());
            async move { page(&app, &cookie, path).await }
        })
        .await?;
        rows.push(row);
    }
    Ok(rows)
}
