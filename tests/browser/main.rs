//! End to end in headless Chromium: a landing page on one origin includes the tag from the
//! API on another, as in production. What the page does is read back through the admin API.
//! Run by `make e2e` (which installs Chromium and ChromeDriver).

mod console;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State};
use axum::response::Html;
use axum::routing::get;
use crm_import_clicks::{Deps, run};
use crm_providers::redtrack::Redtrack;
use crm_tests::browser::{Browser, USER_AGENT};
use crm_tests::redtrack::{API_KEY, FakeRedtrack};
use crm_tests::{TestApp, spawn_with, unique};
use http::{Method, StatusCode};
use serde_json::{Value, json};
use time::OffsetDateTime;

/// The landing page and the operator's registration page, served on one port of this
/// machine under two names (`lp.localhost`, `rushbet.localhost`), with the tag from `api`.
#[derive(Clone)]
struct Pages {
    port: u16,
    api: String,
    key: Arc<Mutex<String>>,
    /// The query of every request the operator's page received.
    registrations: Arc<Mutex<Vec<BTreeMap<String, String>>>>,
}

impl Pages {
    async fn start(api: &str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let pages = Self {
            port: listener.local_addr().unwrap().port(),
            api: api.to_owned(),
            key: Arc::default(),
            registrations: Arc::default(),
        };
        let app = Router::new()
            .route("/lp.html", get(landing_page))
            .route("/register", get(register))
            .with_state(pages.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        pages
    }

    /// The landing page's origin, as its source lists it.
    fn origin(&self) -> String {
        format!("http://lp.localhost:{}", self.port)
    }

    fn landing(&self, query: &str) -> String {
        format!("{}/lp.html{query}", self.origin())
    }

    fn operator(&self) -> String {
        format!("http://rushbet.localhost:{}/register", self.port)
    }

    /// A `landing` source for these pages (with `extra` settings); its key goes in the page.
    async fn source(&self, app: &TestApp, extra: Value) {
        let mut spec = json!({
            "name": "Rushbet LP", "kind": "landing", "brand": "rushbet",
            "allowedOrigins": [self.origin()],
            "decorateDomains": ["rushbet.localhost"], "decorateParam": "btag",
        });
        spec.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        let (status, body) = app.admin_send(Method::POST, "/api/sources", spec).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        *self.key.lock().unwrap() = body["key"].as_str().unwrap().to_owned();
    }
}

/// The landing page of docs/integrations.md, as written there (the tag and a lead form with
/// no JavaScript of its own), on these pages' names, with links to the operator, to
/// Redtrack and elsewhere.
async fn landing_page(State(p): State<Pages>) -> Html<String> {
    let doc = include_str!("../../docs/integrations.md");
    let section = &doc[doc.find("## The landing-page tag").expect("the tag's section")..];
    let snippet = section
        .split("```html\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("the documented page");
    let key = p.key.lock().unwrap().clone();
    let port = p.port;
    let snippet = snippet
        .replace("https://<api-id>.execute-api.<region>.amazonaws.com", &p.api)
        .replace("<LANDING_KEY>", &key)
        .replace("https://rushbet.com", &format!("http://rushbet.localhost:{port}"));
    Html(format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Rushbet welcome bonus</title></head>
<body>
{snippet}
<a id="operator" href="http://rushbet.localhost:{port}/register?lang=es">Play at Rushbet</a>
<a id="tracker" href="http://trk.rushbet.localhost:{port}/click?cmpid=64f">Through Redtrack</a>
<a id="elsewhere" href="http://example.localhost:{port}/terms">Terms</a>
</body></html>"#
    ))
}

async fn register(State(p): State<Pages>, Query(q): Query<BTreeMap<String, String>>) -> Html<&'static str> {
    p.registrations.lock().unwrap().push(q);
    Html("<!doctype html><title>Register</title><p>Rushbet registration")
}

/// Every click recorded, newest first.
async fn clicks(app: &TestApp) -> Vec<Value> {
    let (_, feed) = app.admin("/api/clicks?limit=200").await;
    feed["items"].as_array().unwrap().clone()
}

/// Waits (at most 10 s) for the click `id` to be recorded.
async fn recorded(app: &TestApp, id: &str) -> Value {
    for _ in 0..100 {
        if let Some(c) = clicks(app).await.into_iter().find(|c| c["clickId"] == id) {
            return c;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("click {id} never arrived: {:?}", clicks(app).await);
}

/// What the tag put in the form's click id field, once it has (it waits up to 3 s for
/// Redtrack's script when the URL has no click id).
async fn filled(browser: &Browser) -> String {
    let v = browser
        .wait_for(
            "return document.querySelector('[name=clickId]').value",
            Duration::from_secs(10),
        )
        .await;
    v.as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_landing_page_with_the_tag_records_its_visit_once_and_hands_the_click_id_on() {
    let app = spawn_with(&[("INGEST_AUTH", "required")]).await;
    let api = app.serve().await;
    let pages = Pages::start(&api).await;
    pages.source(&app, json!({})).await;
    let browser = Browser::start().await;
    let rtkcid = unique("rt");

    browser
        .goto(&pages.landing(&format!(
            "?rtkcid={rtkcid}&sub1=story&utm_source=instagram&utm_campaign=Spring&fbclid=IwAR0x"
        )))
        .await;
    assert_eq!(filled(&browser).await, rtkcid);
    let click = recorded(&app, &rtkcid).await;
    assert_eq!(click["subs"]["sub1"], "story", "{click}");
    assert_eq!(click["source"], "instagram");
    assert_eq!(click["params"]["fbclid"], "IwAR0x");
    assert_eq!(click["userAgent"], USER_AGENT, "the browser's, from the request");
    assert_eq!(click["ip"], "127.0.0.1");
    assert!(click["landingPage"].as_str().unwrap().starts_with(&pages.origin()));

    // The operator's link carries the click id in its parameter; Redtrack's own /click link
    // and other sites' links are untouched.
    let hrefs = browser
        .eval("return ['operator','tracker','elsewhere'].map(id => document.getElementById(id).href)")
        .await;
    assert_eq!(
        hrefs,
        json!([
            format!("{}?lang=es&btag={rtkcid}", pages.operator()),
            format!("http://trk.rushbet.localhost:{}/click?cmpid=64f", pages.port),
            format!("http://example.localhost:{}/terms", pages.port),
        ])
    );

    // A reload in the same browser session is the same visit: no second click.
    browser.refresh().await;
    assert_eq!(filled(&browser).await, rtkcid);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(clicks(&app).await.len(), 1, "one click for the visit");

    // The form, filled as a person would: its lead carries the click id and joins the
    // click's customer; the visitor goes on to the operator with the click id.
    let email = format!("{}@example.com", unique("ana"));
    browser.type_into("[name=firstName]", "Ana").await;
    browser.type_into("[name=email]", &email).await;
    browser.type_into("[name=phone]", "+51 987 654 321").await;
    browser.click("button[type=submit]").await;
    browser
        .wait_for(
            "return location.pathname === '/register' && location.href",
            Duration::from_secs(10),
        )
        .await;
    let registrations = pages.registrations.lock().unwrap().clone();
    assert_eq!(registrations, vec![BTreeMap::from([("btag".into(), rtkcid.clone())])]);
    let (_, customer) = app.admin(&format!("/api/customers?email={email}")).await;
    assert_eq!(customer["customerId"], click["customerId"], "{customer}");
    assert_eq!(customer["firstName"], "Ana");
    assert!(
        customer["identifiers"].to_string().contains("+51987654321"),
        "{customer}"
    );
    assert_eq!(clicks(&app).await.len(), 1);
    browser.quit().await;
}

#[tokio::test]
async fn where_the_brand_asks_for_consent_the_tag_waits_and_a_visit_without_a_tracker_is_still_one_click() {
    let app = spawn_with(&[("INGEST_AUTH", "required")]).await;
    let api = app.serve().await;
    let pages = Pages::start(&api).await;
    pages.source(&app, json!({"waitForConsent": true})).await;
    let browser = Browser::start().await;

    browser.goto(&pages.landing("?utm_source=tiktok")).await;
    browser
        .wait_for("return window.crmTagLoaded === true", Duration::from_secs(10))
        .await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let before = browser
        .eval("return [sessionStorage.length, document.cookie, document.querySelector('[name=clickId]').value]")
        .await;
    assert_eq!(before, json!([0, "", ""]), "nothing stored or filled before consent");
    assert!(clicks(&app).await.is_empty(), "nothing sent before consent");

    // The consent banner says yes: the visit is recorded under its own visit id.
    browser.eval("window.crmConsent = true; return true").await;
    let visit = filled(&browser).await;
    assert!(visit.starts_with('v') && visit.len() == 33, "{visit}");
    let click = recorded(&app, &visit).await;
    assert_eq!(click["source"], "tiktok");

    // The next page view of the session (consent given again by the banner) is the same visit.
    browser.refresh().await;
    browser.eval("window.crmConsent = true; return true").await;
    assert_eq!(filled(&browser).await, visit);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(clicks(&app).await.len(), 1);
    browser.quit().await;
}

/// Seed §6.3: the influencer's stats count a visit once, though the tracked link, the
/// landing page's tag and the Redtrack click log all saw it.
#[tokio::test]
async fn a_visit_seen_by_the_link_the_tag_and_the_click_log_is_one_click_of_the_influencer() {
    let app = spawn_with(&[("INGEST_AUTH", "required")]).await;
    let api = app.serve().await;
    let pages = Pages::start(&api).await;
    pages.source(&app, json!({})).await;
    let influencer = unique("carlos");
    let (status, body) = app
        .admin_send(
            Method::POST,
            "/api/influencers",
            json!({"influencerId": influencer, "name": "Carlos"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // Redtrack's campaign sends the visitor on to the landing page with its click id and
    // the subs it was given; here the link goes straight to where Redtrack would.
    let rtkcid = unique("rt");
    let destination = pages.landing(&format!(
        "?rtkcid={rtkcid}&sub9={{influencerId}}&sub10={{visitId}}&utm_source=instagram"
    ));
    let (status, link) = app
        .admin_send(
            Method::POST,
            "/api/links",
            json!({"influencerId": influencer, "brand": "rushbet", "destination": destination}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{link}");

    let browser = Browser::start().await;
    browser
        .goto(&format!("{api}/l/{}", link["code"].as_str().unwrap()))
        .await;
    assert_eq!(filled(&browser).await, rtkcid);
    let visit = browser
        .eval("return new URLSearchParams(location.search).get('sub10')")
        .await;
    let visit = visit.as_str().expect("the redirect carried the visit").to_owned();
    let seen = recorded(&app, &rtkcid).await;
    assert_eq!(seen["visitId"], visit.as_str(), "{seen}");
    browser.quit().await;

    // The click log has Redtrack's click of the visit.
    let (status, tracker) = app
        .admin_send(
            Method::POST,
            "/api/sources",
            json!({"name": "Redtrack", "kind": "tracker", "brand": "rushbet"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{tracker}");
    let now = OffsetDateTime::now_utc();
    let track_time = crm_tests::redtrack::track_time(now);
    let row = json!({"id": rtkcid, "track_time": track_time, "ip": "203.0.113.7", "user_agent": USER_AGENT,
                     "sub9": influencer, "sub10": visit, "source": "instagram"});
    let fake = FakeRedtrack::start(vec![serde_json::from_value(row).unwrap()]).await;
    let deps = Deps {
        store: app.state.store.clone(),
        redtrack: Redtrack::new(fake.base_url.clone()),
        keys: BTreeMap::from([(tracker["id"].as_str().unwrap().to_owned(), API_KEY.to_owned())]),
        defaults: app.state.config.defaults.clone(),
        dedupe_window: app.state.config.dedupe_window,
        per_page: 50,
        cron_secret: None,
        lease: time::Duration::minutes(15),
        operator_silence: None,
    };
    let report = run(&deps, now).await.expect("the import runs");
    assert_eq!((report[0].imported, report[0].duplicates), (0, 1), "{report:?}");

    app.drain().await;
    let (_, stats) = app.admin(&format!("/api/influencers/{influencer}")).await;
    assert_eq!(stats["stats"]["clicks"], 1, "{stats}");
}
