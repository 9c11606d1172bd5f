//! The Redtrack click log (the backstop): a day of clicks imported once, a failed run
//! resumed without duplicates, Redtrack's 429 obeyed, never two runs of a source at once.

use std::collections::BTreeMap;

use crm_import_clicks::{Deps, SourceReport, run};
use crm_providers::redtrack::Redtrack;
use crm_tests::redtrack::{API_KEY, FakeRedtrack};
use crm_tests::{TestApp, spawn, unique};
use http::{Method, StatusCode};
use serde_json::{Map, Value, json};
use time::{Duration, OffsetDateTime};

/// `n` clicks of the last day, newest first, ten minutes apart.
fn a_day_of_clicks(n: usize, now: OffsetDateTime) -> Vec<Map<String, Value>> {
    let prefix = unique("RT");
    (0..n)
        .map(|i| {
            let at = now - Duration::minutes(5 + 10 * i as i64);
            let track_time = crm_tests::redtrack::track_time(at);
            serde_json::from_value(json!({
                "id": format!("{prefix}{i:04}"), "track_time": track_time, "ip": "203.0.113.7",
                "user_agent": "Mozilla/5.0", "campaign": "Spring", "source": "Instagram",
                "sub1": format!("placement{}", i % 3), "country": "PE"
            }))
            .unwrap()
        })
        .collect()
}

async fn setup(rows: Vec<Map<String, Value>>) -> (TestApp, FakeRedtrack, Deps) {
    let app = spawn().await;
    let (status, source) = app
        .admin_send(
            Method::POST,
            "/api/sources",
            json!({"name": "Redtrack", "kind": "tracker", "brand": "rushbet"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{source}");
    let fake = FakeRedtrack::start(rows).await;
    let deps = Deps {
        store: app.state.store.clone(),
        redtrack: Redtrack::new(fake.base_url.clone()),
        keys: BTreeMap::from([(source["id"].as_str().unwrap().to_owned(), API_KEY.to_owned())]),
        defaults: app.state.config.defaults.clone(),
        dedupe_window: app.state.config.dedupe_window,
        per_page: 50,
        cron_secret: None,
        lease: time::Duration::minutes(15),
        operator_silence: None,
    };
    (app, fake, deps)
}

/// Every click of the table (the feed walks back from today, newest first).
async fn clicks(app: &TestApp) -> usize {
    let (mut n, mut cursor) = (0, None::<String>);
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/clicks?limit=200&cursor={c}"),
            None => "/api/clicks?limit=200".to_owned(),
        };
        let (_, page) = app.admin(&path).await;
        n += page["items"].as_array().unwrap().len();
        cursor = page["nextCursor"].as_str().map(str::to_owned);
        if cursor.is_none() {
            return n;
        }
    }
}

fn only(reports: Vec<SourceReport>) -> SourceReport {
    assert_eq!(reports.len(), 1, "{reports:?}");
    reports.into_iter().next().unwrap()
}

#[tokio::test]
async fn a_day_of_clicks_is_imported_once_and_a_second_run_only_finds_duplicates() {
    let now = OffsetDateTime::now_utc();
    let (app, fake, deps) = setup(a_day_of_clicks(120, now)).await;
    let first = only(run(&deps, now).await.unwrap());
    assert_eq!(
        (first.imported, first.duplicates, first.pages, first.complete),
        (120, 0, 3, true),
        "{first:?}"
    );
    assert_eq!(clicks(&app).await, 120);
    let asked = &fake.requests()[0].1;
    assert_eq!(asked["date_from"], (now - Duration::days(1)).date().to_string());
    assert_eq!(asked["per"], "50");

    // Ten minutes later: the window overlaps the last run's end by half an hour, so the
    // newest clicks are seen again, and recognised.
    let second = only(run(&deps, now + Duration::minutes(10)).await.unwrap());
    assert_eq!(second.imported, 0, "{second:?}");
    assert!(second.duplicates >= 2 && second.complete, "{second:?}");
    assert_eq!(clicks(&app).await, 120);
    let (_, feed) = app.admin(&format!("/api/clicks?day={}&limit=1", now.date())).await;
    let newest = &feed["items"][0];
    assert_eq!(newest["brand"], "rushbet", "the source's brand: {newest}");
    assert!(newest["sourceId"].is_string(), "{newest}");
}

#[tokio::test]
async fn a_run_stopped_by_failures_is_resumed_without_duplicates_and_a_429_is_waited_out() {
    let now = OffsetDateTime::now_utc();
    let (app, fake, deps) = setup(a_day_of_clicks(120, now)).await;
    // Page 1 comes after one 429 (wait a second, as Redtrack asks); page 2 keeps failing.
    fake.fail_next(&[429]);
    let stopped = {
        let fake = fake.clone();
        let watcher = tokio::spawn(async move {
            // Once page 1 is served, every later request fails.
            loop {
                if fake.requests().len() >= 2 {
                    fake.fail_next(&[503, 503, 503, 503]);
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        });
        let report = only(run(&deps, now).await.unwrap());
        watcher.await.unwrap();
        report
    };
    assert!(!stopped.complete && stopped.stopped.is_some(), "{stopped:?}");
    assert_eq!(stopped.imported, 50, "page 1 only: {stopped:?}");
    let requests = fake.requests();
    assert!(
        requests[1].0.duration_since(requests[0].0) >= std::time::Duration::from_millis(950),
        "the 429's Retry-After was obeyed"
    );
    // The next run repeats the window: page 1 is all duplicates, the rest is new.
    let resumed = only(run(&deps, now + Duration::minutes(10)).await.unwrap());
    assert!(resumed.complete, "{resumed:?}");
    assert_eq!((resumed.imported, resumed.duplicates), (70, 50), "{resumed:?}");
    assert_eq!(clicks(&app).await, 120);
}

#[tokio::test]
async fn two_runs_of_one_source_never_import_at_once() {
    let now = OffsetDateTime::now_utc();
    let (_app, _fake, deps) = setup(a_day_of_clicks(60, now)).await;
    let (a, b) = tokio::join!(run(&deps, now), run(&deps, now));
    let (a, b) = (only(a.unwrap()), only(b.unwrap()));
    let ran: Vec<_> = [&a, &b].into_iter().filter(|r| r.pages > 0).collect();
    assert_eq!(ran.len(), 1, "{a:?} {b:?}");
    assert_eq!(ran[0].imported, 60);
    let skipped = if a.pages > 0 { &b } else { &a };
    assert_eq!(skipped.stopped.as_deref(), Some("another run is importing this source"));
}

/// `POST /api/cron/import-clicks` runs one now, behind the cron secret when it is set.
#[tokio::test]
async fn the_manual_trigger_needs_the_cron_secret() {
    let secret = "a-cron-secret-of-enough-length";
    let app = crm_tests::spawn_with(&[("CRON_SECRET", secret)]).await;
    let call = |bearer: Option<&str>| {
        let mut req = http::Request::builder()
            .method(Method::POST)
            .uri("/api/cron/import-clicks");
        if let Some(b) = bearer {
            req = req.header(http::header::AUTHORIZATION, format!("Bearer {b}"));
        }
        req.body(axum::body::Body::empty()).unwrap()
    };
    let (status, _, _) = app.send(call(None)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, _) = app.send(call(Some("wrong-secret-of-enough-length"))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, body) = app.send(call(Some(secret))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["sources"], json!([]), "no source has a Redtrack key here");
}

#[tokio::test]
async fn a_click_already_recorded_gets_only_what_it_lacked_and_an_erased_one_nothing() {
    let now = OffsetDateTime::now_utc();
    let id = unique("RT");
    let track_time = format!(
        "{} {:02}:{:02}:{:02}",
        now.date(),
        now.hour(),
        now.minute(),
        now.second()
    );
    let row = json!({"id": id, "track_time": track_time, "ip": "203.0.113.7", "user_agent": "Mozilla/5.0 (Redtrack)",
                     "landing": "https://lp.rushbet.example/", "ref_id": "fb.1.2", "campaign": "Other", "sub1": "log"});
    let (app, _fake, deps) = setup(vec![serde_json::from_value(row).unwrap()]).await;
    // The landing page reported the click first, from the visitor's browser.
    let (status, click) = app
        .post_json(
            "/api/ingest/click",
            json!({"clickId": id, "ip": "198.51.100.7", "campaign": "Spring", "sub1": "page", "brand": "rushbet"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{click}");

    let report = only(run(&deps, now).await.unwrap());
    assert_eq!(
        (report.imported, report.duplicates, report.filled),
        (0, 1, 1),
        "{report:?}"
    );
    let (_, feed) = app.admin("/api/clicks").await;
    let stored = &feed["items"][0];
    assert_eq!(stored["clickId"], id.as_str());
    assert_eq!(stored["ip"], "198.51.100.7", "what the click had stays: {stored}");
    assert_eq!(stored["campaign"], "Spring");
    assert_eq!(stored["subs"]["sub1"], "page");
    assert_eq!(
        stored["userAgent"], "Mozilla/5.0 (Redtrack)",
        "what it lacked is filled in"
    );
    assert_eq!(stored["landingPage"], "https://lp.rushbet.example/");
    assert_eq!(stored["params"]["ref_id"], "fb.1.2");
    assert_eq!(clicks(&app).await, 1);

    // The person is erased; the log still has the row, and gives nothing back.
    let customer = click["customerId"].as_str().unwrap();
    let (status, _) = app
        .admin_send(Method::DELETE, &format!("/api/customers/{customer}"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let again = only(run(&deps, now + Duration::minutes(10)).await.unwrap());
    assert_eq!((again.imported, again.duplicates, again.filled), (0, 1, 0), "{again:?}");
    let (_, feed) = app.admin("/api/clicks").await;
    let erased = &feed["items"][0];
    assert!(erased["ip"].is_null() && erased["userAgent"].is_null(), "{erased}");
}
