//! Every ingest endpoint, the admin API's reads and health: a row each, on a fresh table.

use axum::Router;
use crm_store::Store;
use serde_json::json;

use crate::floor::Floor;
use crate::harness::{Request, customer_of, done, fresh, request, send};
use crate::measure::{Row, measure_runs, n};

pub fn click(i: usize) -> Request {
    let body = json!({"clickId": format!("B_{i}"), "campaign": "bench", "source": "youtube"});
    ("POST", "/api/ingest/click".to_owned(), Some(body))
}

pub fn lead(i: usize) -> Request {
    let body = json!({"clickId": format!("B_{i}"), "email": format!("b{i}@example.com"), "phone": format!("+5199988{:04}", i % 10_000), "firstName": "Ana"});
    ("POST", "/api/ingest/lead".to_owned(), Some(body))
}

fn deposit(i: usize) -> Request {
    let body = json!({"eventType": "deposit", "clickId": format!("B_{i}"), "depositAmount": "25.50", "operatorId": "rushbet", "transactionId": format!("T{i}")});
    ("POST", "/api/postback".to_owned(), Some(body))
}

/// `n()` requests built by `make`, measured.
pub async fn endpoint(
    name: &str,
    app: &Router,
    store: &Store,
    floor: &Floor,
    make: &dyn Fn(usize) -> Request,
) -> anyhow::Result<Row> {
    measure_runs(name, store, floor, n(), |i| {
        // Built before the measured future starts: the caller's work, not the endpoint's.
        let (method, uri, body) = make(i);
        let req = request(method, &uri, body);
        let app = app.clone();
        async move { send(&app, req?).await.map(|_| ()) }
    })
    .await
}

/// The rows, in the order a customer meets them: click, lead, postbacks, then the reads.
pub async fn run(floor: &Floor) -> anyhow::Result<Vec<Row>> {
    let (app, store) = fresh().await?;
    let mut rows = vec![endpoint("click, new click id", &app, &store, floor, &click).await?];
    rows.push(
        endpoint("click, repeated click id", &app, &store, floor, &|i| {
            ("GET", format!("/api/ingest/click?clickid=B_{i}"), None)
        })
        .await?,
    );
    rows.push(endpoint("lead, known click id, new email + phone", &app, &store, floor, &lead).await?);
    rows.push(endpoint("postback, known customer", &app, &store, floor, &deposit).await?);
    rows.push(endpoint("postback, replayed (duplicate)", &app, &store, floor, &deposit).await?);
    rows.push(
        endpoint("postback, unknown customer", &app, &store, floor, &|i| {
            (
                "GET",
                format!("/api/postback?event=registration&userId=new{i}&operator=roobet"),
                None,
            )
        })
        .await?,
    );
    let customer = customer_of(&app, "B_0").await?;
    rows.push(
        endpoint("admin: customer profile", &app, &store, floor, &|_| {
            ("GET", format!("/api/customers/{customer}"), None)
        })
        .await?,
    );
    rows.push(
        endpoint("admin: recent events (50)", &app, &store, floor, &|_| {
            ("GET", "/api/events".to_owned(), None)
        })
        .await?,
    );
    rows.push(
        endpoint("health", &app, &store, floor, &|_| {
            ("GET", "/api/health".to_owned(), None)
        })
        .await?,
    );
    done(&store).await?;
    Ok(rows)
}
