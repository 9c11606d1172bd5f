//! The console's compliance and settings pages: a profile's consent, suppressions and
//! exclusions, erasure behind a typed confirmation, the suppression list, brand settings,
//! journey editing and exports (in-process, as `console.rs`).

use axum::body::Body;
use crm_core::access::Role;
use crm_tests::{ADMIN_KEY, TestApp, spawn, unique};
use http::{Method, Request, StatusCode, header};
use serde_json::json;

use crate::console::{PASSWORD, assert_bounded, call, csrf, form, login, page, user};

/// A logged-in person of `role`: their cookie and a CSRF token of theirs.
async fn session(app: &TestApp, role: Role) -> (String, String, String) {
    let email = user(app, role).await;
    let (_, cookie, _) = login(app, &email, PASSWORD).await;
    let cookie = cookie.unwrap();
    let (_, _, body) = call(app, page("/dashboard", Some(&cookie))).await;
    (email, cookie, csrf(&body))
}

async fn post(app: &TestApp, path: &str, cookie: &str, token: &str, fields: &[(&str, &str)]) -> (StatusCode, String) {
    let mut all = fields.to_vec();
    all.push(("csrf", token));
    let (status, _, body) = call(app, form(path, Some(cookie), &all, "same-origin")).await;
    (status, body)
}

async fn audited(app: &TestApp, action: &str) -> Vec<crm_core::access::AuditEntry> {
    let today = time::OffsetDateTime::now_utc().date();
    let (lines, _) = app.state.store.audit_day(today, 200, None).await.unwrap();
    lines.into_iter().filter(|l| l.action == action).collect()
}

#[tokio::test]
async fn a_profile_shows_consent_suppressions_and_exclusions_and_erasure_needs_the_id_typed() {
    let app = spawn().await;
    let email = format!("{}@example.com", unique("maria"));
    let (_, lead) = app
        .post_json(
            "/api/ingest/lead",
            json!({"email": email, "firstName": "María", "brand": "rushbet", "consent": true}),
        )
        .await;
    let customer = lead["customerId"].as_str().unwrap().to_owned();
    app.post_json(
        "/api/postback",
        json!({"event": "self_exclusion", "email": email, "operatorId": "rushbet"}),
    )
    .await;
    let (status, _) = app
        .admin_send(
            Method::POST,
            "/api/suppressions",
            json!({"channel": "email", "address": email, "scope": "rushbet"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);

    let (_, owner, token) = session(&app, Role::Owner).await;
    let profile_path = format!("/dashboard/customers/{customer}");
    let (status, _, profile) = call(&app, page(&profile_path, Some(&owner))).await;
    assert_eq!(status, StatusCode::OK);
    let consent = profile.split("Marketing consent").nth(1).unwrap();
    assert!(consent.contains("rushbet") && consent.contains("granted"), "{profile}");
    let suppressions = profile.split("Suppressions of the addresses").nth(1).unwrap();
    assert!(
        suppressions.contains("<td>rushbet</td>") && suppressions.contains("manual"),
        "{profile}"
    );
    let exclusions = profile.split("Responsible-gambling exclusions").nth(1).unwrap();
    assert!(exclusions.contains("self_exclusion"), "{profile}");
    assert!(profile.contains(&email), "an owner sees the person");

    // The timeline shows one kind of entry at a time.
    let (_, _, leads_only) = call(&app, page(&format!("{profile_path}?kind=lead"), Some(&owner))).await;
    let timeline = leads_only.split("id=\"timeline\"").nth(1).unwrap();
    assert!(
        timeline.contains(">lead<") && !timeline.contains(">event<"),
        "{timeline}"
    );

    // An analyst may not erase; a mistyped id erases nothing.
    let (_, analyst, analyst_token) = session(&app, Role::Analyst).await;
    let (_, _, masked) = call(&app, page(&profile_path, Some(&analyst))).await;
    assert!(
        !masked.contains(&email) && !masked.contains("Erase this person"),
        "{masked}"
    );
    let erase = format!("{profile_path}/erase");
    let (status, _) = post(&app, &erase, &analyst, &analyst_token, &[("confirm", &customer)]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = post(&app, &erase, &owner, &token, &[("confirm", "cus_wrong")]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.contains("nothing was erased"));
    assert!(app.customer(&customer).await.to_string().contains(&email), "not erased");

    let (status, body) = post(&app, &erase, &owner, &token, &[("confirm", &customer)]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("emails"), "what was erased is listed: {body}");
    let (status, _) = app.admin(&format!("/api/customers/{customer}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "erased");
    let (status, _) = app
        .post_json("/api/ingest/lead", json!({"email": email, "brand": "rushbet"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, found) = app
        .admin(&format!("/api/suppressions?channel=email&address={email}"))
        .await;
    assert!(
        found.to_string().contains("erased"),
        "the address stays suppressed: {found}"
    );
    let lines = audited(&app, "customer.erase").await;
    assert_eq!(lines.len(), 1, "one erasure, by the owner");
    assert_eq!(lines[0].target, customer);
}

#[tokio::test]
async fn the_suppression_list_is_added_to_and_lifted_in_the_console_and_analysts_see_it_masked() {
    let app = spawn().await;
    let (_, manager, token) = session(&app, Role::Manager).await;
    let email = format!("{}@example.com", unique("supp"));

    let (status, body) = post(
        &app,
        "/dashboard/suppressions",
        &manager,
        &token,
        &[("channel", "email"), ("address", "not an email"), ("scope", "")],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body.contains("address:"), "the field is named: {body}");

    let (status, body) = post(
        &app,
        "/dashboard/suppressions",
        &manager,
        &token,
        &[
            ("channel", "email"),
            ("address", &email.to_uppercase()),
            ("scope", "rushbet"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains(&email), "listed, normalised: {body}");
    let (_, api) = app.admin(&format!("/api/suppressions?address={email}")).await;
    assert_eq!(api["items"][0]["scope"], "rushbet", "{api}");
    assert_eq!(api["items"][0]["source"], "console");

    let (_, analyst, analyst_token) = session(&app, Role::Analyst).await;
    let (status, _, masked) = call(&app, page("/dashboard/suppressions", Some(&analyst))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        !masked.contains(&email) && masked.contains("***@example.com"),
        "{masked}"
    );
    assert!(!masked.contains("Lift"), "no forms for an analyst");
    let (status, _) = post(
        &app,
        "/dashboard/suppressions",
        &analyst,
        &analyst_token,
        &[("channel", "email"), ("address", "x@example.com")],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let hash = api["items"][0]["addressHash"].as_str().unwrap().to_owned();
    let (status, body) = post(
        &app,
        "/dashboard/suppressions/remove",
        &manager,
        &token,
        &[("channel", "email"), ("hash", &hash), ("scope", "rushbet")],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, api) = app.admin(&format!("/api/suppressions?address={email}")).await;
    assert_eq!(api["items"], json!([]), "lifted: {api}");
    assert_eq!(audited(&app, "suppression.add").await.len(), 1);
    assert_eq!(audited(&app, "suppression.remove").await.len(), 1);
}

#[tokio::test]
async fn brand_settings_and_the_journey_are_edited_with_the_refused_field_or_step_named() {
    let app = spawn().await;
    let (_, manager, token) = session(&app, Role::Manager).await;

    let (status, body) = post(
        &app,
        "/dashboard/settings",
        &manager,
        &token,
        &[("brand", "rushbet"), ("settings", r#"{"fromName": "Rush\u0007bet"}"#)],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body.contains("<code>fromName</code>"), "{body}");
    let (status, body) = post(
        &app,
        "/dashboard/settings",
        &manager,
        &token,
        &[
            ("brand", "rushbet"),
            ("settings", r#"{"fromName": "Rushbet", "language": "es"}"#),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, api) = app.admin("/api/brands/rushbet/settings").await;
    assert_eq!(api["settings"]["fromName"], "Rushbet", "{api}");
    let effective = body.split("In effect").nth(1).expect("what applies now");
    assert!(
        effective.contains("crossBrandCaps") && effective.contains("Rushbet"),
        "the deployment's defaults under the brand's own: {effective}"
    );

    let (_, current) = app.admin("/api/brands/rushbet/journey").await;
    let mut definition = current["definition"].clone();
    let first = definition["steps"][0]["id"].as_str().unwrap().to_owned();
    definition["steps"][0]["templateId"] = json!("tpl_missing");
    let (status, body) = post(
        &app,
        "/dashboard/journey-automation",
        &manager,
        &token,
        &[("brand", "rushbet"), ("definition", &definition.to_string())],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let row = body
        .split("<tr>")
        .find(|r| r.contains(&format!("<td>{first}</td>")))
        .expect("the step's row");
    assert!(
        row.contains("class=\"error\"") && row.contains("template"),
        "beside the step: {row}"
    );
    let (_, still) = app.admin("/api/brands/rushbet/journey").await;
    assert_eq!(still["source"], "default", "nothing saved");

    let mut definition = current["definition"].clone();
    definition["steps"][0]["delay"] = json!("3h");
    let (status, body) = post(
        &app,
        "/dashboard/journey-automation",
        &manager,
        &token,
        &[("brand", "rushbet"), ("definition", &definition.to_string())],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, saved) = app.admin("/api/brands/rushbet/journey").await;
    assert_eq!(saved["source"], "brand");
    assert_eq!(saved["definition"]["steps"][0]["delay"], "3h", "{saved}");
    assert_eq!(audited(&app, "journey.put").await.len(), 1);
    assert_eq!(audited(&app, "settings.put").await.len(), 1);
}

#[tokio::test]
async fn a_console_export_is_the_apis_and_personal_data_only_for_who_may_see_it() {
    let app = spawn().await;
    let mut emails = Vec::new();
    for _ in 0..3 {
        let email = format!("{}@example.com", unique("exp"));
        app.post_json(
            "/api/ingest/lead",
            json!({"email": email, "firstName": "Ana", "brand": "exportbet"}),
        )
        .await;
        emails.push(email);
    }
    let api = |path: &str| {
        Request::get(path)
            .header(header::AUTHORIZATION, format!("Bearer {ADMIN_KEY}"))
            .body(Body::empty())
            .unwrap()
    };
    let (_, _, masked_api) = call(&app, api("/api/exports/leads")).await;
    let (_, _, full_api) = call(&app, api("/api/exports/leads?includePii=true")).await;

    let (_, owner, _) = session(&app, Role::Owner).await;
    let (status, headers, csv) = call(&app, page("/dashboard/exports/download?kind=leads", Some(&owner))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], "text/csv; charset=utf-8");
    assert_eq!(csv, masked_api, "masked unless asked");
    assert!(audited(&app, "export.pii").await.is_empty());
    let (_, _, csv) = call(
        &app,
        page("/dashboard/exports/download?kind=leads&pii=on", Some(&owner)),
    )
    .await;
    assert_eq!(csv, full_api);
    assert!(emails.iter().all(|e| csv.contains(e.as_str())));
    assert_eq!(
        audited(&app, "export.pii").await.len(),
        1,
        "a personal export is audited"
    );

    let (_, analyst, _) = session(&app, Role::Analyst).await;
    let (_, _, form) = call(&app, page("/dashboard/exports", Some(&analyst))).await;
    assert!(!form.contains("name=\"pii\""), "{form}");
    let (_, _, csv) = call(
        &app,
        page("/dashboard/exports/download?kind=leads&pii=on", Some(&analyst)),
    )
    .await;
    assert_eq!(csv, masked_api, "an analyst's export is masked whatever is asked");

    let (status, _, refused) = call(
        &app,
        page("/dashboard/exports/download?kind=leads&from=2026-13-01", Some(&owner)),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.contains("from:"), "{refused}");
}

/// These pages are bounded too (the session's reads included), and none scans.
#[tokio::test]
async fn the_compliance_and_settings_pages_cost_a_bounded_number_of_requests() {
    let app = spawn().await;
    let (_, owner, _) = session(&app, Role::Owner).await;
    let email = format!("{}@example.com", unique("bound"));
    let (_, lead) = app
        .post_json(
            "/api/ingest/lead",
            json!({"email": email, "phone": crm_tests::phone(), "brand": "rushbet"}),
        )
        .await;
    let profile = format!("/dashboard/customers/{}", lead["customerId"].as_str().unwrap());
    let lookup = format!("/dashboard/suppressions?channel=email&address={email}");
    assert_bounded(
        &app,
        &owner,
        &[
            profile.as_str(),
            "/dashboard/suppressions",
            lookup.as_str(),
            "/dashboard/settings?brand=rushbet",
            "/dashboard/exports",
            // Figures of a period are one query per month of counters, whatever its length.
            "/dashboard",
            "/dashboard/influencers",
            "/dashboard/campaigns",
            "/dashboard/reports?from=2026-10-01&to=2026-11-30&groupBy=campaign",
            "/dashboard/reports?groupBy=influencer",
            "/dashboard/reports?groupBy=campaign&compare=previous",
        ],
    )
    .await;
}

/// An influencer's page: figures for a period that lead to the records behind them, a
/// tracked link created there that credits it, an edit, archiving (off the list, still
/// credited) and bringing back.
#[tokio::test]
async fn an_influencers_page_drills_down_makes_links_edits_and_archives() {
    let app = spawn().await;
    let (_, manager, token) = session(&app, Role::Manager).await;
    let influencer = unique("inf");
    let (status, _) = app
        .admin_send(
            Method::POST,
            "/api/influencers",
            json!({"influencerId": influencer, "name": "Ana Streams"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, campaign) = app
        .admin_send(
            Method::POST,
            "/api/campaigns",
            json!({"name": unique("cmp"), "brand": "rushbet", "influencerId": influencer}),
        )
        .await;
    let campaign_id = campaign["campaignId"].as_str().unwrap().to_owned();
    let click = unique("C");
    app.post_json(
        "/api/ingest/click",
        json!({"clickId": click, "influencerId": influencer, "brand": "rushbet"}),
    )
    .await;
    app.post_json(
        "/api/postback",
        json!({"event": "ftd", "clickId": click, "amount": "50", "currency": "USD", "operatorId": "rushbet"}),
    )
    .await;
    app.drain().await;

    let here = format!("/dashboard/influencers/{influencer}");
    let (status, _, html) = call(&app, page(&here, Some(&manager))).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    let today = time::OffsetDateTime::now_utc().date();
    let ftds = format!("/dashboard/events?type=ftd&amp;influencer={influencer}&amp;day={today}");
    assert!(
        html.contains(&format!("<a href=\"{ftds}\">1</a>")),
        "the FTD leads to its record: {html}"
    );
    let (_, _, events) = call(&app, page(&ftds.replace("&amp;", "&"), Some(&manager))).await;
    assert!(events.contains(&click), "the drill-down shows the FTD: {events}");
    let (_, _, none) = call(
        &app,
        page(
            &format!("/dashboard/events?type=ftd&influencer=someone-else&day={today}"),
            Some(&manager),
        ),
    )
    .await;
    assert!(!none.contains(&click), "and only its records");

    // A link made on the page credits the influencer and its campaign.
    let (status, body) = post(
        &app,
        &here,
        &manager,
        &token,
        &[
            ("do", "link"),
            ("destination", "https://operator.example/r?btag={clickid}"),
            ("campaignId", &campaign_id),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, links) = app.admin(&format!("/api/links?influencerId={influencer}")).await;
    let link = &links["items"][0];
    assert_eq!(link["campaignId"], campaign_id.as_str(), "{links}");
    assert_eq!(link["brand"], "rushbet", "the campaign's brand");
    let url = link["url"].as_str().unwrap();
    assert!(body.contains(&format!("value=\"{url}\"")), "the URL to copy: {body}");
    let (status, bad) = post(
        &app,
        &here,
        &manager,
        &token,
        &[("do", "link"), ("destination", "ftp://x")],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.contains("destination:"), "{bad}");

    let (status, _) = post(
        &app,
        &here,
        &manager,
        &token,
        &[
            ("do", "save"),
            ("name", "Ana Streams"),
            ("channel", "Twitch"),
            ("payout", "CPA 40 USD"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (_, api) = app.admin(&format!("/api/influencers/{influencer}")).await;
    assert_eq!(
        (api["channel"].as_str(), api["payout"].as_str()),
        (Some("Twitch"), Some("CPA 40 USD"))
    );

    let (status, _) = post(&app, &here, &manager, &token, &[("do", "archive")]).await;
    assert_eq!(status, StatusCode::OK);
    let (_, _, list) = call(&app, page("/dashboard/influencers", Some(&manager))).await;
    assert!(
        !list.contains(&influencer) && list.contains("Show archived (1)"),
        "{list}"
    );
    let (_, _, all) = call(&app, page("/dashboard/influencers?archived=1", Some(&manager))).await;
    assert!(all.contains(&influencer));
    let second = unique("C");
    app.post_json(
        "/api/ingest/click",
        json!({"clickId": second, "influencerId": influencer, "brand": "rushbet"}),
    )
    .await;
    app.drain().await;
    let (_, api) = app.admin(&format!("/api/influencers/{influencer}")).await;
    assert_eq!(
        api["stats"]["clicks"], 2,
        "an archived influencer is still credited: {api}"
    );
    assert!(api["archivedAt"].is_string());
    post(&app, &here, &manager, &token, &[("do", "restore")]).await;
    let (_, _, list) = call(&app, page("/dashboard/influencers", Some(&manager))).await;
    assert!(list.contains(&influencer));
    assert_eq!(audited(&app, "influencer.archive").await.len(), 1);

    let (_, analyst, analyst_token) = session(&app, Role::Analyst).await;
    let (_, _, read) = call(&app, page(&here, Some(&analyst))).await;
    assert!(!read.contains("Create link"), "no forms for an analyst");
    let (status, _) = post(&app, &here, &analyst, &analyst_token, &[("do", "archive")]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    assert_bounded(&app, &manager, &[here.as_str()]).await;
}

/// Today's feed asks for what arrived after its newest row; the answer is the new rows
/// (filtered and masked as the page is) and the question again from the newest one.
#[tokio::test]
async fn a_feed_of_today_fetches_only_what_arrived_since() {
    let app = spawn().await;
    let (_, analyst, _) = session(&app, Role::Analyst).await;
    let first = unique("C");
    app.post_json(
        "/api/ingest/click",
        json!({"clickId": first, "brand": "rushbet", "ip": "203.0.113.7"}),
    )
    .await;
    let (_, _, html) = call(&app, page("/dashboard/clicks?brand=rushbet", Some(&analyst))).await;
    let at = html.find("hx-get=\"").expect("today's feed polls") + 8;
    let poll = html[at..].split('"').next().unwrap().replace("&amp;", "&");
    assert!(
        poll.starts_with("/dashboard/clicks/live?") && poll.ends_with("&brand=rushbet"),
        "{poll}"
    );
    let (_, _, nothing) = call(&app, page(&poll, Some(&analyst))).await;
    assert!(
        !nothing.contains("tbody class=\"arrived\""),
        "nothing new yet: {nothing}"
    );

    let second = unique("C");
    let other = unique("C");
    app.post_json(
        "/api/ingest/click",
        json!({"clickId": second, "brand": "rushbet", "ip": "203.0.113.8"}),
    )
    .await;
    app.post_json("/api/ingest/click", json!({"clickId": other, "brand": "betano"}))
        .await;
    let (status, _, fragment) = call(&app, page(&poll, Some(&analyst))).await;
    assert_eq!(status, StatusCode::OK);
    let rows = fragment.split("<tbody class=\"arrived\">").nth(1).expect("new rows");
    assert!(rows.contains(&second) && !rows.contains(&first), "{fragment}");
    assert!(!rows.contains(&other), "the page's filter holds");
    assert!(!fragment.contains("203.0.113.8"), "an analyst sees addresses masked");
    let at = fragment.find("hx-get=\"").unwrap() + 8;
    let next = fragment[at..].split('"').next().unwrap().replace("&amp;", "&");
    let (_, _, after) = call(&app, page(&next, Some(&analyst))).await;
    assert!(
        !after.contains(&second),
        "asked again from the newest row read: {after}"
    );

    let (_, _, yesterday) = call(&app, page("/dashboard/clicks?day=2020-01-01", Some(&analyst))).await;
    assert!(!yesterday.contains("hx-get"), "only today's feed polls");
}

/// A report compared with the period before: each group's figures of the day before beside
/// today's, the change, and the CSV with the same columns beside.
#[tokio::test]
async fn a_report_compares_each_group_with_the_period_before() {
    let app = spawn().await;
    let (_, owner, _) = session(&app, Role::Owner).await;
    let campaign = unique("cmp");
    let now = time::OffsetDateTime::now_utc();
    let yesterday = crm_core::values::format_ts(now - time::Duration::days(1));
    for occurred in [None, None, None, Some(yesterday.as_str())] {
        let mut click = json!({"clickId": unique("C"), "campaign": campaign, "brand": "rushbet"});
        if let Some(at) = occurred {
            click["occurredAt"] = json!(at);
        }
        app.post_json("/api/ingest/click", click).await;
    }
    app.drain().await;
    let today = now.date();
    let path = format!("/dashboard/reports?groupBy=campaign&from={today}&to={today}&tz=UTC&compare=previous");
    let (status, _, html) = call(&app, page(&path, Some(&owner))).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    let row = html
        .split("<tr>")
        .find(|r| r.contains(&campaign))
        .expect("the campaign's row");
    assert!(
        row.contains(">3<br><span class=\"hint\">was 1 <span class=\"up\">+200%</span>"),
        "{row}"
    );

    let (_, _, csv) = call(&app, page(&format!("{path}&format=csv"), Some(&owner))).await;
    let lines: Vec<&str> = csv.split("\r\n").collect();
    let header: Vec<&str> = lines[0].split(',').collect();
    let clicks = header.iter().position(|c| *c == "clicks").unwrap();
    let before = header
        .iter()
        .position(|c| *c == "previous.clicks")
        .expect("the period before's columns");
    let line: Vec<&str> = lines
        .iter()
        .find(|l| l.contains(&campaign))
        .unwrap()
        .split(',')
        .collect();
    assert_eq!((line[clicks], line[before]), ("3", "1"), "{csv}");
}

/// Customers are found by a name or its start, either way round, without accents; the
/// index is written from the stream and goes with the person's erasure.
#[tokio::test]
async fn customers_are_found_by_name_and_the_name_goes_with_erasure() {
    let app = spawn().await;
    let (_, owner, token) = session(&app, Role::Owner).await;
    let last = format!("Núñez{}", unique("x").replace('_', ""));
    let email = format!("{}@example.com", unique("ana"));
    let (_, lead) = app
        .post_json(
            "/api/ingest/lead",
            json!({"email": email, "firstName": "Ana María", "lastName": last, "brand": "rushbet"}),
        )
        .await;
    let customer = lead["customerId"].as_str().unwrap().to_owned();
    app.drain().await;
    let folded = crm_core::profile::name_key(&last);
    for typed in [
        format!("ana maria {last}"),
        format!("{last} Ana"),
        last[..last.len() - 3].to_owned(),
        folded.to_uppercase(),
    ] {
        let (status, _, html) = call(
            &app,
            page(
                &format!("/dashboard/customers?q={}", typed.replace(' ', "+")),
                Some(&owner),
            ),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert!(html.contains(&customer), "{typed:?} finds the customer: {html}");
    }
    assert_bounded(&app, &owner, &[format!("/dashboard/customers?q={folded}").as_str()]).await;
    let (_, _, nobody) = call(&app, page("/dashboard/customers?q=zz-nobody-here", Some(&owner))).await;
    assert!(!nobody.contains(&customer));

    // An operator's user id, with the operator's brand.
    let user_id = unique("u");
    app.post_json(
        "/api/postback",
        json!({"event": "registration", "email": email, "userId": user_id, "operatorId": "rushbet"}),
    )
    .await;
    let (_, _, by_user) = call(
        &app,
        page(&format!("/dashboard/customers?q={user_id}&brand=rushbet"), Some(&owner)),
    )
    .await;
    assert!(
        by_user.contains(&customer),
        "found by the operator's user id: {by_user}"
    );

    let erase = format!("/dashboard/customers/{customer}/erase");
    let (status, _) = post(&app, &erase, &owner, &token, &[("confirm", &customer)]).await;
    assert_eq!(status, StatusCode::OK);
    app.drain().await;
    let (_, _, after) = call(&app, page(&format!("/dashboard/customers?q={folded}"), Some(&owner))).await;
    assert!(!after.contains(&customer), "an erased person is not found by name");
    let named = app.state.store.customers_named(&folded, 10).await.unwrap();
    assert!(named.is_empty(), "the name's entries are gone: {named:?}");
}

/// Journey automation counts a brand's customers at each stage, moved from the stream as
/// their journeys move; a move seen twice is counted once.
#[tokio::test]
async fn journey_automation_counts_customers_at_each_stage() {
    let app = spawn().await;
    let (_, owner, _) = session(&app, Role::Owner).await;
    let brand = unique("stagebet").to_lowercase();
    let mut emails = Vec::new();
    for _ in 0..2 {
        let email = format!("{}@example.com", unique("st"));
        app.post_json("/api/ingest/lead", json!({"email": email, "brand": brand}))
            .await;
        emails.push(email);
    }
    app.drain().await;
    let b = crm_core::values::Brand::parse(&brand).unwrap();
    let counts = |c: &std::collections::BTreeMap<crm_core::journey::Milestone, i64>| {
        crm_core::journey::Milestone::ALL.map(|m| c[&m])
    };
    assert_eq!(counts(&app.state.store.stage_counts(&b).await.unwrap()), [2, 0, 0, 0]);
    app.post_json(
        "/api/postback",
        json!({"event": "registration", "email": emails[0], "operatorId": brand}),
    )
    .await;
    app.drain().await;
    let now = app.state.store.stage_counts(&b).await.unwrap();
    assert_eq!(counts(&now), [1, 1, 0, 0], "one moved on");

    let (status, _, html) = call(
        &app,
        page(&format!("/dashboard/journey-automation?brand={brand}"), Some(&owner)),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let table = html.split("Customers at each stage").nth(1).expect("the counts");
    assert!(
        table.contains("milestone=touched\">1</a>") && table.contains("milestone=registered\">1</a>"),
        "{table}"
    );

    // The same move again (a stream record delivered twice) counts nothing.
    let (_, lead) = app
        .post_json("/api/ingest/lead", json!({"email": emails[1], "brand": brand}))
        .await;
    let id = crm_core::values::CustomerId::parse(lead["customerId"].as_str().unwrap()).unwrap();
    use crm_core::journey::Milestone::{Registered, Touched};
    let moved = app
        .state
        .store
        .move_stage(&id, &b, Some(Touched), Some(Registered))
        .await
        .unwrap();
    assert!(moved);
    let again = app
        .state
        .store
        .move_stage(&id, &b, Some(Touched), Some(Registered))
        .await
        .unwrap();
    assert!(!again, "counted already");
    assert_eq!(counts(&app.state.store.stage_counts(&b).await.unwrap()), [0, 2, 0, 0]);
}

/// A saved template opens in the form, is edited in place (same id) and deleted; "Send a
/// test" renders it for the seed's customer and sends it through the real adapter to the
/// person asking, from the template's brand's sender; a suppressed address is refused.
#[tokio::test]
async fn a_template_is_edited_test_sent_and_deleted_in_the_console() {
    let app = spawn().await;
    let (me, manager, token) = session(&app, Role::Manager).await;
    let (status, created) = app
        .admin_send(
            Method::POST,
            "/api/templates",
            json!({"name": "Nudge", "brand": "rushbet", "journeyType": "acquisition", "stage": 0, "channel": "email",
                   "language": "es", "subject": "Hola {firstName}", "body": "<p>Hola {firstName}</p>"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let id = created["templateId"].as_str().unwrap().to_owned();
    let (_, _, form_html) = call(
        &app,
        page(&format!("/dashboard/message-templates?edit={id}"), Some(&manager)),
    )
    .await;
    assert!(
        form_html.contains("Edit the template") && form_html.contains("value=\"Hola {firstName}\""),
        "{form_html}"
    );

    let fields = |subject: &'static str, action: &'static str, to: &str| -> Vec<(String, String)> {
        [
            ("templateId", id.as_str()),
            ("name", "Nudge"),
            ("brand", "rushbet"),
            ("journeyType", "acquisition"),
            ("stage", "0"),
            ("channel", "email"),
            ("language", "es"),
            ("subject", subject),
            ("body", "<p>Hola {firstName}, tu bono</p>"),
            ("do", action),
            ("to", to),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
    };
    let send = |f: Vec<(String, String)>| {
        let pairs: Vec<(&str, &str)> = f.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let mut all = pairs.clone();
        all.push(("csrf", token.as_str()));
        form("/dashboard/message-templates", Some(&manager), &all, "same-origin")
    };
    let (status, _, _) = call(&app, send(fields("¡Hola {firstName}!", "save", ""))).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, saved) = app.admin(&format!("/api/templates/{id}")).await;
    assert_eq!(saved["subject"], "¡Hola {firstName}!", "edited in place: {saved}");

    // An email test goes to whoever asks, whatever address is typed.
    let elsewhere = format!("{}@example.com", unique("someone"));
    let (status, _, sent) = call(&app, send(fields("¡Hola {firstName}!", "test", &elsewhere))).await;
    assert_eq!(status, StatusCode::OK, "{sent}");
    assert!(sent.contains("Sent through ses"), "{sent}");
    assert!(crm_tests::mailbox::emails_to(&elsewhere).is_empty());
    let received = crm_tests::mailbox::emails_to(&me);
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].subject, "¡Hola Juan!", "rendered for the seed's customer");
    assert!(received[0].text.contains("Hola Juan, tu bono"));
    assert_eq!(audited(&app, "template.test_send").await.len(), 1);

    app.admin_send(
        Method::POST,
        "/api/suppressions",
        json!({"channel": "email", "address": me, "scope": "rushbet"}),
    )
    .await;
    let (status, _, refused) = call(&app, send(fields("x", "test", ""))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        refused.contains("id=\"to-error\"") && refused.contains("suppression list"),
        "{refused}"
    );
    assert_eq!(crm_tests::mailbox::emails_to(&me).len(), 1, "nothing more sent");

    let (status, _, _) = call(&app, send(fields("x", "delete", ""))).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, _) = app.admin(&format!("/api/templates/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(audited(&app, "template.delete").await.len(), 1);
}

/// Two owners demoting each other at once: one succeeds, the other is refused as the last
/// owner, and an owner remains (the change is conditional on the other owner, as read).
#[tokio::test]
async fn two_owners_demoting_each_other_at_once_leave_one_owner() {
    use crm_app::access::{AccessError, UserChange, update_user};
    let app = spawn().await;
    let store = &app.state.store;
    let (a, b) = (user(&app, Role::Owner).await, user(&app, Role::Owner).await);
    let users = store.users().await.unwrap();
    let id = |email: &str| {
        users
            .iter()
            .find(|u| u.email.as_str() == email)
            .unwrap()
            .user_id
            .clone()
    };
    let (a, b) = (id(&a), id(&b));
    let demote = || UserChange {
        role: Some(Role::Analyst),
        ..UserChange::default()
    };
    let now = time::OffsetDateTime::now_utc();
    let (first, second) = tokio::join!(
        update_user(store, &a, demote(), now),
        update_user(store, &b, demote(), now)
    );
    let outcomes = [first.is_ok(), second.is_ok()];
    assert_eq!(outcomes.iter().filter(|ok| **ok).count(), 1, "{first:?} {second:?}");
    assert!(
        matches!(first, Ok(_) | Err(AccessError::LastOwner)) && matches!(second, Ok(_) | Err(AccessError::LastOwner))
    );
    let owners = store
        .users()
        .await
        .unwrap()
        .into_iter()
        .filter(|u| u.role == Role::Owner && !u.disabled)
        .count();
    assert_eq!(owners, 1);
}

/// An owner gives a user an API key on the user's page (shown once, acting with the user's
/// role) and revokes it there; both are audited.
#[tokio::test]
async fn a_users_api_key_is_made_and_revoked_on_their_page() {
    let app = spawn().await;
    let (_, owner, token) = session(&app, Role::Owner).await;
    let analyst = user(&app, Role::Analyst).await;
    let users = app.state.store.users().await.unwrap();
    let id = users
        .iter()
        .find(|u| u.email.as_str() == analyst)
        .unwrap()
        .user_id
        .clone();
    let here = format!("/dashboard/users/{id}");
    let (status, _, html) = call(&app, page(&here, Some(&owner))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("No keys."), "{html}");

    let (status, html) = post(&app, &here, &owner, &token, &[("do", "new-key")]).await;
    assert_eq!(status, StatusCode::OK);
    let at = html.find("crmu_").expect("the key, shown once");
    let key: String = html[at..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    let with_key = |path: &str| {
        Request::get(path)
            .header(header::AUTHORIZATION, format!("Bearer {key}"))
            .body(Body::empty())
            .unwrap()
    };
    let (status, _, _) = call(&app, with_key("/api/reports")).await;
    assert_eq!(status, StatusCode::OK, "the key reads as the analyst");
    let (status, _, _) = call(&app, with_key("/api/users")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "with the analyst's role");
    let (_, _, again) = call(&app, page(&here, Some(&owner))).await;
    assert!(!again.contains(&key), "shown once");

    let last4 = &key[key.len() - 4..];
    let (status, html) = post(&app, &here, &owner, &token, &[("do", "revoke-key"), ("last4", last4)]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("revoked"), "{html}");
    let (status, _, _) = call(&app, with_key("/api/reports")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "revoked");
    assert_eq!(audited(&app, "user.key.create").await.len(), 1);
    assert_eq!(audited(&app, "user.key.revoke").await.len(), 1);
}

#[tokio::test]
async fn a_profile_timeline_shows_the_records_of_customers_merged_into_it() {
    let app = spawn().await;
    let (a, b) = (unique("MERGE_A"), unique("MERGE_B"));
    let email = format!("{}@example.com", unique("merged"));
    let (_, first) = app.post_json("/api/ingest/click", json!({"clickId": a})).await;
    app.post_json("/api/ingest/click", json!({"clickId": b})).await;
    // A lead with B's click and the email, then one tying A's click to the same email:
    // B's customer is merged into A's, its records staying under its own id.
    app.post_json("/api/ingest/lead", json!({"clickId": b, "email": email}))
        .await;
    let (_, link) = app
        .post_json("/api/ingest/lead", json!({"clickId": a, "email": email}))
        .await;
    let survivor = first["customerId"].as_str().unwrap().to_owned();
    assert_eq!(link["customerId"], survivor.as_str(), "{link}");
    assert_eq!(link["mergedCustomerIds"].as_array().map(Vec::len), Some(1), "{link}");

    let (_, owner, _) = session(&app, Role::Owner).await;
    let (status, _, profile) = call(&app, page(&format!("/dashboard/customers/{survivor}"), Some(&owner))).await;
    assert_eq!(status, StatusCode::OK);
    let timeline = profile.split("id=\"timeline\"").nth(1).unwrap();
    assert!(
        timeline.contains(&a) && timeline.contains(&b),
        "both clicks: {timeline}"
    );
}
