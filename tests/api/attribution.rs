//! Attribution and stats end to end: ingest through the routers, the attribution function
//! over the table's stream, the figures through the admin API.

use crm_tests::{TestApp, spawn, unique};
use http::{Method, StatusCode};
use serde_json::{Value, json};

async fn create(app: &TestApp, path: &str, body: Value) -> Value {
    let (status, created) = app.admin_send(Method::POST, path, body).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    created
}

async fn report(app: &TestApp, query: &str) -> Value {
    let (status, body) = app.admin(&format!("/api/reports?{query}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// The row of `value` in a report.
fn row<'a>(report: &'a Value, field: &str, value: &str) -> &'a Value {
    report["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r[field] == value)
        .unwrap_or_else(|| panic!("no row {field} = {value} in {report}"))
}

/// Test traffic (a request marked `test`, or anything a test source sends) is stored and
/// shown marked `test`, and never counted: the influencer's figures and the brand's report
/// stay those of the real traffic.
#[tokio::test]
async fn test_traffic_is_stored_and_shown_but_never_counted() {
    let app = crm_tests::spawn_with(&[("INGEST_AUTH", "required")]).await;
    let (status, zap) = app
        .admin_send(
            Method::POST,
            "/api/sources",
            json!({"name": "Zap test action", "kind": "zapier", "test": true}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{zap}");
    let (_, tracker) = app
        .admin_send(
            Method::POST,
            "/api/sources",
            json!({"name": "Redtrack", "kind": "tracker"}),
        )
        .await;
    let (zap, tracker) = (zap["key"].as_str().unwrap(), tracker["key"].as_str().unwrap());
    let real = unique("c");
    let click = |id: &str, test: bool| {
        format!("/api/ingest/click?clickid={id}&brand=rushbet&influencerId=inf-t&test={test}&token={tracker}")
    };
    assert_eq!(app.get(&click(&real, false)).await.0, StatusCode::OK);
    assert_eq!(app.get(&click(&unique("c"), true)).await.0, StatusCode::OK);
    let (status, _) = app
        .post_json(
            &format!("/api/postback?token={zap}"),
            json!({"eventType": "deposit", "clickId": real, "depositAmount": 999, "operatorId": "rushbet"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    app.drain().await;

    let (_, influencer) = app.admin("/api/influencers/inf-t").await;
    let stats = &influencer["stats"];
    assert_eq!(
        (&stats["clicks"], &stats["conversions"]),
        (&json!(1), &json!(0)),
        "{stats}"
    );
    assert_eq!(stats["revenue"], json!({}), "{stats}");
    let (_, report) = app.admin("/api/reports?groupBy=brand").await;
    assert_eq!(row(&report, "brand", "rushbet")["clicks"], 1, "{report}");
    let (_, events) = app.admin("/api/events").await;
    let event = &events["items"][0];
    assert_eq!(
        (&event["test"], &event["sourceName"]),
        (&json!(true), &json!("Zap test action")),
        "{event}"
    );
    assert!(event["attribution"].is_null(), "never attributed: {event}");
    let (_, clicks) = app.admin("/api/clicks").await;
    let tests: Vec<bool> = clicks["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["test"] == true)
        .collect();
    assert_eq!(tests.iter().filter(|t| **t).count(), 1, "{clicks}");
}

#[tokio::test]
async fn seed_influencer_attribution_counts_click_lead_conversion_and_revenue() {
    let app = spawn().await;
    create(
        &app,
        "/api/influencers",
        json!({"influencerId": "test-influencer-id", "name": "Test Influencer", "channel": "youtube"}),
    )
    .await;
    let campaign = create(
        &app,
        "/api/campaigns",
        json!({"name": "test-campaign", "brand": "rushbet", "influencerId": "test-influencer-id"}),
    )
    .await;
    let email = format!("{}@example.com", unique("attr"));
    // Seed §6.3, verbatim.
    let (status, _) = app
        .post_json(
            "/api/ingest/click",
            json!({"clickId": "ATTR_TEST_001", "campaign": "test-campaign", "influencerId": "test-influencer-id", "source": "youtube", "medium": "video"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, lead) = app
        .post_json(
            "/api/ingest/lead",
            json!({"clickId": "ATTR_TEST_001", "email": email, "operatorId": "rushbet"}),
        )
        .await;
    app.post_json(
        "/api/postback",
        json!({"event": "deposit", "clickId": "ATTR_TEST_001", "amount": "100.50", "operator": "rushbet"}),
    )
    .await;
    app.drain().await;

    let (status, influencer) = app.admin("/api/influencers/test-influencer-id").await;
    assert_eq!(status, StatusCode::OK, "{influencer}");
    let stats = &influencer["stats"];
    assert_eq!(
        [&stats["clicks"], &stats["leads"], &stats["conversions"], &stats["ftds"]],
        [&json!(1), &json!(1), &json!(1), &json!(1)],
        "{stats}"
    );
    assert_eq!(stats["revenue"], json!({"USD": "100.5"}));
    assert_eq!(stats["customers"], 1);
    assert_eq!(stats["leadRate"], "1");
    let (_, by_campaign) = app
        .admin(&format!("/api/campaigns/{}", campaign["campaignId"].as_str().unwrap()))
        .await;
    assert_eq!(by_campaign["stats"]["revenue"], json!({"USD": "100.5"}));
    // The click named no brand: it counts under its campaign's, with the lead and deposit
    // the operator sent for that brand (so one person, and a lead rate, per brand).
    let (_, by_brand) = app.admin("/api/reports?groupBy=brand").await;
    let rows: Vec<_> = by_brand["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["brand"].clone(),
                r["clicks"].clone(),
                r["leads"].clone(),
                r["customers"].clone(),
            )
        })
        .collect();
    assert_eq!(rows, [(json!("rushbet"), json!(1), json!(1), json!(1))], "{by_brand}");

    // The lead and the deposit carry their attribution, visible on the timeline.
    let customer = lead["customerId"].as_str().unwrap();
    let (_, timeline) = app.admin(&format!("/api/customers/{customer}/timeline")).await;
    let items = timeline["items"].as_array().unwrap();
    for kind in ["lead", "event"] {
        let record = items.iter().find(|i| i["type"] == kind).unwrap();
        let a = &record["attribution"];
        assert_eq!(
            (
                &a["clickId"],
                &a["influencerId"],
                &a["campaignId"],
                &a["confidence"],
                &a["reason"]
            ),
            (
                &json!("ATTR_TEST_001"),
                &json!("test-influencer-id"),
                &campaign["campaignId"],
                &json!(1.0),
                &json!("click_id")
            ),
            "{record}"
        );
    }

    // A later deposit the operator links by email only: the campaign's click is that
    // brand's click, so it is the same-brand last click (the email's confidence, not half).
    let (status, later) = app
        .post_json(
            "/api/postback",
            json!({"event": "deposit", "email": email, "amount": "20", "operator": "rushbet", "transactionId": "tx-2"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{later}");
    app.drain().await;
    let (_, timeline) = app.admin(&format!("/api/customers/{customer}/timeline")).await;
    let record = timeline["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["eventId"] == later["eventId"])
        .unwrap()
        .clone();
    let a = &record["attribution"];
    assert_eq!(
        (&a["clickId"], &a["confidence"], &a["reason"], &a["campaignId"]),
        (
            &json!("ATTR_TEST_001"),
            &json!(0.8),
            &json!("last_click_same_brand"),
            &campaign["campaignId"]
        ),
        "{record}"
    );
}

#[tokio::test]
async fn a_click_naming_unknown_partners_creates_them_and_an_operator_adopts_them() {
    let app = spawn().await;
    let influencer = unique("inf");
    let name = unique("Summer Promo");
    for i in 0..3 {
        app.post_json(
            "/api/ingest/click",
            json!({"clickId": unique("auto"), "influencerId": influencer, "campaign": name, "brand": "rushbet", "sub1": format!("p{i}")}),
        )
        .await;
    }
    app.drain().await;
    let (status, auto) = app.admin(&format!("/api/influencers/{influencer}")).await;
    assert_eq!(status, StatusCode::OK, "{auto}");
    assert_eq!(auto["autoCreated"], true);
    assert_eq!(auto["stats"]["clicks"], 3);
    let (_, campaigns) = app.admin("/api/campaigns").await;
    let created = campaigns["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name.as_str())
        .unwrap_or_else(|| panic!("{campaigns}"))
        .clone();
    assert_eq!(created["autoCreated"], true);
    assert_eq!(created["influencerId"], influencer.as_str());

    // The operator creates the campaign under the same name, in other case: it is adopted.
    let adopted = create(
        &app,
        "/api/campaigns",
        json!({"name": name.to_uppercase(), "brand": "rushbet"}),
    )
    .await;
    assert_eq!(adopted["campaignId"], created["campaignId"]);
    assert_eq!(adopted["autoCreated"], false);
    let (_, with_stats) = app
        .admin(&format!("/api/campaigns/{}", adopted["campaignId"].as_str().unwrap()))
        .await;
    assert_eq!(with_stats["stats"]["clicks"], 3, "its stats are kept");
    // A second campaign of that name is refused.
    let (status, err) = app
        .admin_send(Method::POST, "/api/campaigns", json!({"name": name}))
        .await;
    assert_eq!(
        (status, &err["error"]["code"]),
        (StatusCode::CONFLICT, &json!("conflict"))
    );
    let by_sub = report(&app, "groupBy=sub1&brand=rushbet").await;
    assert_eq!(by_sub["items"].as_array().unwrap().len(), 3, "{by_sub}");
    assert_eq!(row(&by_sub, "sub1", "p2")["clicks"], 1);
}

/// Redtrack's own spellings (its links' `rtkcid`, the UTMs, sub-ids up to 20) are a click
/// like any other, and sub-ids 11–20 are reportable like 1–10.
#[tokio::test]
async fn a_click_in_redtracks_spelling_reports_by_its_sub_ids_up_to_twenty() {
    let app = spawn().await;
    let brand = format!("rt{}", crm_tests::rand_digits());
    let click = unique("rtk");
    let (status, body) = app
        .get(&format!(
            "/api/ingest/click?rtkcid={click}&brand={brand}&utm_source=instagram&sub11=reel&sub20=fb.1.17.abc&fbclid=IwAR0"
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    app.drain().await;
    let (_, timeline) = app
        .admin(&format!(
            "/api/customers/{}/timeline",
            body["customerId"].as_str().unwrap()
        ))
        .await;
    let recorded = &timeline["items"][0];
    assert_eq!(recorded["clickId"], click.as_str(), "{timeline}");
    assert_eq!(recorded["source"], "instagram");
    assert_eq!(recorded["params"]["fbclid"], "IwAR0");
    for (sub, value) in [("sub11", "reel"), ("sub20", "fb.1.17.abc")] {
        let by_sub = report(&app, &format!("groupBy={sub}&brand={brand}")).await;
        assert_eq!(row(&by_sub, sub, value)["clicks"], 1, "{by_sub}");
    }
}

#[tokio::test]
async fn a_conversion_without_click_id_is_attributed_through_the_identity_graph_below_full_confidence() {
    let app = spawn().await;
    let (device, email) = (unique("dev"), format!("{}@example.com", unique("graph")));
    app.post_json(
        "/api/ingest/click",
        json!({"clickId": unique("g"), "deviceId": device, "influencerId": "graph-inf", "brand": "rushbet"}),
    )
    .await;
    // The lead links the device to an email; the operator's postback knows only the email.
    app.post_json(
        "/api/ingest/lead",
        json!({"deviceId": device, "email": email, "brand": "rushbet"}),
    )
    .await;
    let (_, event) = app
        .post_json(
            "/api/postback",
            json!({"event": "registration", "email": email, "operator": "rushbet"}),
        )
        .await;
    app.drain().await;
    let customer = event["customerId"].as_str().unwrap();
    let (_, timeline) = app.admin(&format!("/api/customers/{customer}/timeline")).await;
    let registration = timeline["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["type"] == "event")
        .unwrap();
    let a = &registration["attribution"];
    assert_eq!(a["influencerId"], "graph-inf", "{a}");
    assert_eq!(a["reason"], "last_click_same_brand");
    assert_eq!(a["confidence"], 0.8, "linked by email");
    let r = report(&app, "groupBy=influencer&brand=rushbet").await;
    let inf = row(&r, "influencerId", "graph-inf");
    assert_eq!((&inf["leads"], &inf["registrations"]), (&json!(1), &json!(1)));
    assert_eq!(inf["attributionRate"], "1");
}

#[tokio::test]
async fn two_hundred_simultaneous_clicks_for_one_influencer_all_answer_and_all_count() {
    let app = spawn().await;
    let influencer = unique("hot");
    let clicks = (0..200).map(|i| {
        app.post_json(
            "/api/ingest/click",
            json!({"clickId": format!("{influencer}-{i}"), "influencerId": influencer, "brand": "rushbet"}),
        )
    });
    for (status, body) in futures::future::join_all(clicks).await {
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    app.drain().await;
    let (_, inf) = app.admin(&format!("/api/influencers/{influencer}")).await;
    assert_eq!(inf["stats"]["clicks"], 200, "{inf}");
    assert_eq!(inf["stats"]["customers"], 200);
}

#[tokio::test]
async fn redelivered_stream_records_and_replayed_postbacks_count_once() {
    let app = spawn().await;
    let click = unique("rp");
    app.post_json(
        "/api/ingest/click",
        json!({"clickId": click, "influencerId": "replay-inf", "brand": "rushbet"}),
    )
    .await;
    let pb = json!({"event": "ftd", "clickId": click, "amount": 20, "operator": "rushbet", "txid": unique("tx")});
    for _ in 0..3 {
        app.post_json("/api/postback", pb.clone()).await;
    }
    app.drain().await;
    let before = report(&app, "groupBy=influencer").await;
    // Lambda redelivers a batch after a timeout: a reader from the stream's start sees
    // every record again.
    let mut again = app.fresh_stream().await;
    assert!(
        again
            .pump(async |e| crm_attribution::handle(&app.attribution, e).await)
            .await
            .unwrap()
            > 0
    );
    assert_eq!(report(&app, "groupBy=influencer").await, before);
    let inf = row(&before, "influencerId", "replay-inf");
    assert_eq!((&inf["conversions"], &inf["ftds"]), (&json!(1), &json!(1)), "{inf}");
    assert_eq!(inf["revenue"], json!({"USD": "20"}));
}

#[tokio::test]
async fn a_merge_adds_nothing_and_later_records_count_for_the_survivor() {
    let app = spawn().await;
    let (email, device) = (format!("{}@example.com", unique("m")), unique("md"));
    let influencer = unique("merge-inf");
    // Two customers: one from a click and lead by email, one from a click by device.
    app.post_json(
        "/api/ingest/click",
        json!({"clickId": unique("m1"), "email": email, "influencerId": influencer, "brand": "rushbet"}),
    )
    .await;
    app.post_json(
        "/api/ingest/click",
        json!({"clickId": unique("m2"), "deviceId": device, "influencerId": influencer, "brand": "rushbet"}),
    )
    .await;
    app.drain().await;
    let before = report(&app, "groupBy=influencer&brand=rushbet").await;
    assert_eq!(row(&before, "influencerId", &influencer)["clicks"], 2);
    // A lead carrying both merges them.
    let (_, lead) = app
        .post_json(
            "/api/ingest/lead",
            json!({"email": email, "deviceId": device, "brand": "rushbet"}),
        )
        .await;
    assert_eq!(lead["mergedCustomerIds"].as_array().map(Vec::len), Some(1), "{lead}");
    app.drain().await;
    let after = report(&app, "groupBy=influencer&brand=rushbet").await;
    let inf = row(&after, "influencerId", &influencer);
    assert_eq!(
        (&inf["clicks"], &inf["leads"], &inf["customers"]),
        (&json!(2), &json!(1), &json!(2)),
        "{inf}"
    );
}

#[tokio::test]
async fn reports_and_csv_agree_with_the_events_to_the_cent() {
    let app = spawn().await;
    let brand = "centbet";
    let amounts = ["10.01", "0.1", "0.2", "99.99", "1234.5678"];
    for (i, amount) in amounts.iter().enumerate() {
        let click = unique("cent");
        app.post_json(
            "/api/ingest/click",
            json!({"clickId": click, "brand": brand, "source": if i % 2 == 0 { "tiktok" } else { "youtube" }}),
        )
        .await;
        app.post_json(
            "/api/postback",
            json!({"event": "deposit", "clickId": click, "amount": amount, "operator": brand}),
        )
        .await;
    }
    app.drain().await;
    let r = report(&app, &format!("groupBy=source&brand={brand}")).await;
    assert_eq!(row(&r, "source", "tiktok")["revenue"], json!({"USD": "1244.7778"}));
    assert_eq!(row(&r, "source", "youtube")["revenue"], json!({"USD": "100.09"}));
    assert_eq!(r["totals"]["revenue"], json!({"USD": "1344.8678"}));
    assert_eq!(r["totals"]["deposits"], 5);

    let (_, events) = app.admin("/api/events?limit=50").await;
    let sum: rust_decimal::Decimal = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["brand"] == brand)
        .map(|e| e["amount"].as_str().unwrap().parse::<rust_decimal::Decimal>().unwrap())
        .sum();
    assert_eq!(sum.to_string(), "1344.8678");

    let req = http::Request::get(format!("/api/reports?groupBy=source&brand={brand}"))
        .header(http::header::AUTHORIZATION, format!("Bearer {}", crm_tests::ADMIN_KEY))
        .header(http::header::ACCEPT, "text/csv")
        .body(axum::body::Body::empty())
        .unwrap();
    let (status, headers, csv) = app.send(req).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[http::header::CONTENT_TYPE], "text/csv; charset=utf-8");
    let csv = csv.as_str().unwrap();
    let lines: Vec<&str> = csv.split("\r\n").collect();
    let header: Vec<&str> = lines[0].split(',').collect();
    let at = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let total: Vec<&str> = lines
        .iter()
        .find(|l| l.starts_with("TOTAL,"))
        .unwrap()
        .split(',')
        .collect();
    assert_eq!(total[at("revenue.USD")], "1344.8678");
    assert_eq!(total[at("deposits")], "5");
    assert_eq!(
        lines.len(),
        5,
        "header, two sources, total, and the final line end: {csv}"
    );
}

#[tokio::test]
async fn a_late_conversion_is_credited_to_the_click_before_it_happened() {
    let app = spawn().await;
    let email = format!("{}@example.com", unique("late"));
    app.post_json(
        "/api/ingest/click",
        json!({"clickId": unique("early"), "email": email, "influencerId": "early-inf", "brand": "rushbet"}),
    )
    .await;
    let (_, clicks) = app.admin("/api/clicks?limit=1").await;
    let early_at: time::OffsetDateTime =
        crm_core::values::parse_ts(clicks["items"][0]["at"].as_str().unwrap()).unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    app.post_json(
        "/api/ingest/click",
        json!({"clickId": unique("later"), "email": email, "influencerId": "later-inf", "brand": "rushbet"}),
    )
    .await;
    // The batched FTD arrives after both clicks, saying it happened before the second.
    let occurred = crm_core::values::format_ts(early_at + time::Duration::milliseconds(5));
    app.post_json(
        "/api/postback",
        json!({"event": "ftd", "email": email, "operator": "rushbet", "amount": 50, "occurredAt": occurred}),
    )
    .await;
    app.drain().await;
    let r = report(&app, "groupBy=influencer&brand=rushbet").await;
    assert_eq!(row(&r, "influencerId", "early-inf")["ftds"], 1, "{r}");
    assert_eq!(row(&r, "influencerId", "later-inf")["ftds"], 0);
}

#[tokio::test]
async fn multi_touch_models_share_a_conversion_among_the_clicks_before_it() {
    let app = spawn().await;
    let email = format!("{}@example.com", unique("mt"));
    let (first, second) = (unique("first"), unique("second"));
    for influencer in [&first, &second] {
        app.post_json(
            "/api/ingest/click",
            json!({"clickId": unique("mt"), "email": email, "influencerId": influencer, "brand": "mtbet"}),
        )
        .await;
    }
    app.post_json(
        "/api/postback",
        json!({"event": "deposit", "email": email, "operator": "mtbet", "amount": "10"}),
    )
    .await;
    app.drain().await;
    let last = report(&app, "groupBy=influencer&brand=mtbet").await;
    assert_eq!(row(&last, "influencerId", &first)["deposits"], 0);
    assert_eq!(row(&last, "influencerId", &second)["deposits"], 1);
    let linear = report(&app, "groupBy=influencer&brand=mtbet&model=linear").await;
    assert_eq!(row(&linear, "influencerId", &first)["deposits"], 0.5, "{linear}");
    assert_eq!(row(&linear, "influencerId", &first)["revenue"], json!({"USD": "5"}));
    assert_eq!(
        row(&linear, "influencerId", &first)["clicks"],
        1,
        "clicks do not depend on the model"
    );
    let first_touch = report(&app, "groupBy=influencer&brand=mtbet&model=first_touch").await;
    assert_eq!(row(&first_touch, "influencerId", &first)["deposits"], 1);
    assert_eq!(first_touch["totals"]["deposits"], 1);
}

#[tokio::test]
async fn revenue_converts_with_the_operators_fx_rates() {
    let app = spawn().await;
    let (status, rates) = app
        .admin_send(
            Method::PUT,
            "/api/fx-rates",
            json!({"base": "USD", "rates": {"EUR": "1.10", "BTC": 90000}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{rates}");
    for (amount, currency) in [("10", "EUR"), ("0.001", "BTC"), ("5", "USD")] {
        let click = unique("fx");
        app.post_json("/api/ingest/click", json!({"clickId": click, "brand": "fxbet"}))
            .await;
        app.post_json(
            "/api/postback",
            json!({"event": "deposit", "clickId": click, "operator": "fxbet", "amount": amount, "currency": currency}),
        )
        .await;
    }
    app.drain().await;
    let r = report(&app, "groupBy=brand&brand=fxbet").await;
    let totals = &r["totals"];
    assert_eq!(totals["revenueConverted"], "106.00", "11 + 90 + 5: {totals}");
    assert_eq!(totals["currency"], "USD");
    assert_eq!(totals["epc"], "35.3333");
    let (status, err) = app
        .admin_send(Method::PUT, "/api/fx-rates", json!({"rates": {"EUR": "-1"}}))
        .await;
    assert_eq!(
        (status, &err["error"]["field"]),
        (StatusCode::BAD_REQUEST, &json!("rates"))
    );
}

#[tokio::test]
async fn report_parameters_are_checked() {
    let app = spawn().await;
    for (query, field) in [
        ("groupBy=planet", "groupBy"),
        ("from=2026-13-01", "from"),
        ("from=2026-11-20&to=2026-11-01", "from"),
        ("model=random", "model"),
        ("tz=Mars/Base", "tz"),
        ("format=xml", "format"),
    ] {
        let (status, body) = app.admin(&format!("/api/reports?{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert_eq!(body["error"]["field"], field, "{query}");
    }
    let (status, body) = app.admin("/api/influencers/nobody").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = app
        .admin_send(
            Method::POST,
            "/api/influencers",
            json!({"influencerId": "has space", "name": "x"}),
        )
        .await;
    assert_eq!(
        (status, &body["error"]["field"]),
        (StatusCode::BAD_REQUEST, &json!("influencerId"))
    );
    let (status, body) = app
        .admin_send(
            Method::POST,
            "/api/campaigns",
            json!({"name": "c", "influencerId": "nobody"}),
        )
        .await;
    assert_eq!(
        (status, &body["error"]["field"]),
        (StatusCode::BAD_REQUEST, &json!("influencerId"))
    );
}

#[tokio::test]
async fn a_person_merged_from_two_customers_counts_once_per_influencer() {
    let app = spawn().await;
    let (email, device) = (format!("{}@example.com", unique("pm")), unique("pmd"));
    let (first, second) = (unique("pm-i"), unique("pm-j"));
    // A clicks for one influencer; B, later, for another; a lead shows they are one person.
    app.post_json(
        "/api/ingest/click",
        json!({"clickId": unique("pa"), "email": email, "influencerId": first, "brand": "pmbet"}),
    )
    .await;
    app.post_json(
        "/api/ingest/click",
        json!({"clickId": unique("pb"), "deviceId": device, "influencerId": second, "brand": "pmbet"}),
    )
    .await;
    app.drain().await;
    let (_, lead) = app
        .post_json(
            "/api/ingest/lead",
            json!({"email": email, "deviceId": device, "brand": "pmbet"}),
        )
        .await;
    assert_eq!(lead["mergedCustomerIds"].as_array().map(Vec::len), Some(1), "{lead}");
    // A deposit by email: credited to B's later click, counted under the survivor.
    app.post_json(
        "/api/postback",
        json!({"event": "deposit", "email": email, "operator": "pmbet", "amount": 7}),
    )
    .await;
    app.drain().await;
    let r = report(&app, "groupBy=influencer&brand=pmbet").await;
    let j = row(&r, "influencerId", &second);
    assert_eq!((&j["customers"], &j["deposits"]), (&json!(1), &json!(1)), "{j}");
    assert_eq!(row(&r, "influencerId", &first)["customers"], 1);
}

/// The recount `aws lambda invoke` payload of `events/attribution/recount.json`, for
/// yesterday and today (UTC).
fn recount_request() -> crm_attribution::Recount {
    let mut sample: Value = serde_json::from_str(include_str!("../../events/attribution/recount.json")).unwrap();
    let today = time::OffsetDateTime::now_utc().date();
    sample["recount"] = json!({"from": today.previous_day().unwrap().to_string(), "to": today.to_string()});
    match serde_json::from_value(sample).expect("a recount invocation") {
        crm_attribution::Invocation::Recount { recount } => recount,
        other => panic!("{other:?}"),
    }
}

async fn recount(
    app: &TestApp,
    request: crm_attribution::Recount,
    budget: std::time::Duration,
) -> crm_attribution::RecountReport {
    let invocation = crm_attribution::Invocation::Recount { recount: request };
    match crm_attribution::invoke(&app.attribution, invocation, budget).await {
        Ok(crm_attribution::Reply::Recount(report)) => report,
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_recount_counts_the_records_whose_stream_records_were_lost_and_only_those() {
    let app = spawn().await;
    let influencer = unique("lost-inf");
    let click = unique("lost");
    let email = format!("{}@example.com", unique("lost"));
    // Counted as they arrive: a click of another influencer.
    app.post_json(
        "/api/ingest/click",
        json!({"clickId": unique("kept"), "influencerId": "kept-inf", "brand": "lostbet"}),
    )
    .await;
    app.drain().await;
    // Lost: its click, lead and deposit failed until the stream dropped them.
    app.post_json(
        "/api/ingest/click",
        json!({"clickId": click, "influencerId": influencer, "brand": "lostbet"}),
    )
    .await;
    app.post_json(
        "/api/ingest/lead",
        json!({"clickId": click, "email": email, "brand": "lostbet"}),
    )
    .await;
    app.post_json(
        "/api/postback",
        json!({"event": "deposit", "email": email, "operator": "lostbet", "amount": "40.10", "currency": "EUR"}),
    )
    .await;
    assert!(app.lose_attribution_records().await >= 3);
    app.drain().await;
    let before = report(&app, "groupBy=influencer").await;
    assert!(
        !before["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["influencerId"] == influencer.as_str()),
        "{before}"
    );

    // No time at all: one record per invocation, each going on from the last's `next`.
    let (mut request, mut invocations) = (recount_request(), 0);
    let (mut records, mut counted) = (0, 0);
    loop {
        let r = recount(&app, request.clone(), std::time::Duration::ZERO).await;
        invocations += 1;
        (records, counted) = (records + r.records, counted + r.counted);
        assert_eq!((r.records, r.failed), (1, 0), "{r:?}");
        match r.next {
            Some(next) => {
                assert!(!r.complete);
                request = next;
            }
            None => {
                assert!(r.complete);
                break;
            }
        }
        assert!(invocations < 10, "a recount makes progress");
    }
    assert_eq!((invocations, records, counted), (4, 4, 3));
    let after = report(&app, "groupBy=influencer").await;
    let inf = row(&after, "influencerId", &influencer);
    assert_eq!(
        (&inf["clicks"], &inf["leads"], &inf["conversions"], &inf["ftds"]),
        (&json!(1), &json!(1), &json!(1), &json!(1)),
        "{inf}"
    );
    assert_eq!(inf["revenue"], json!({"EUR": "40.1"}));
    assert_eq!(
        row(&after, "influencerId", "kept-inf"),
        row(&before, "influencerId", "kept-inf")
    );

    // Again, and the stream's redelivery on top: nothing more.
    let again = recount(&app, recount_request(), std::time::Duration::from_secs(600)).await;
    assert_eq!((again.records, again.counted, again.complete), (4, 0, true));
    let mut replay = app.fresh_stream().await;
    replay
        .pump(async |e| crm_attribution::handle(&app.attribution, e).await)
        .await
        .unwrap();
    assert_eq!(report(&app, "groupBy=influencer").await, after);

    // The days and the position are checked.
    for (payload, field) in [
        (json!({"from": "2026-11-02", "to": "2026-11-01"}), "from:"),
        (
            json!({"from": "2026-11-01", "to": "2026-11-01", "after": {"kind": "merge"}}),
            "after.kind:",
        ),
    ] {
        let invocation: crm_attribution::Invocation = serde_json::from_value(json!({"recount": payload})).unwrap();
        let err = crm_attribution::invoke(&app.attribution, invocation, std::time::Duration::from_secs(1))
            .await
            .unwrap_err();
        assert!(err.to_string().starts_with(field), "{err}");
    }
}
