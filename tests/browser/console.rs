//! The console in headless Chromium: logging in, what each role sees, a cross-site form
//! refused, logging out; axe-core finds no WCAG 2.2 AA violation on any page, and a
//! screenshot of each is kept under `target/screenshots/`.

use std::time::Duration;

use crm_core::access::{Password, Role};
use crm_core::values::Email;
use crm_tests::browser::Browser;
use crm_tests::{spawn_with, unique};

const PASSWORD: &str = "correct horse battery staple";

/// A new owner's email (the password is `PASSWORD`).
async fn an_owner(app: &crm_tests::TestApp) -> String {
    let owner = format!("{}@example.com", unique("owner"));
    crm_app::access::create_user(
        &app.state.store,
        Email::parse(&owner).unwrap(),
        Role::Owner,
        &Password::parse(PASSWORD).unwrap(),
        time::OffsetDateTime::now_utc(),
    )
    .await
    .unwrap();
    owner
}

async fn accessible(browser: &Browser, name: &str) {
    browser.screenshot(name).await;
    let violations = browser.accessibility_violations().await;
    assert!(violations.is_empty(), "{name}: {violations:#?}");
}

async fn log_in(browser: &Browser, email: &str) {
    browser.type_into("#email", email).await;
    browser.type_into("#password", PASSWORD).await;
    browser.click("form.login button[type=submit]").await;
}

/// Waits for the page whose heading starts with `title` (a click's navigation takes a
/// moment: until then the old page is still there).
async fn arrive(browser: &Browser, title: &str) {
    let script = format!(
        "const h = document.querySelector('h1'); return !!h && h.textContent.startsWith({})",
        serde_json::Value::from(title)
    );
    browser.wait_for(&script, Duration::from_secs(10)).await;
}

#[tokio::test]
async fn people_log_in_see_what_their_role_allows_and_log_out() {
    let app = spawn_with(&[]).await;
    let api = app.serve().await;
    let owner = an_owner(&app).await;
    let browser = Browser::start().await;

    browser.goto(&format!("{api}/dashboard")).await;
    arrive(&browser, "Log in").await;
    accessible(&browser, "console-login").await;
    log_in(&browser, &owner).await;
    arrive(&browser, "Overview").await;
    accessible(&browser, "console-overview").await;

    // The seed's customer, found on the Customers page by its email.
    let email = format!("{}@example.com", unique("juan"));
    let click = unique("TEST_CLICK");
    app.post_json(
        "/api/ingest/click",
        serde_json::json!({"clickId": click, "campaign": "test-campaign"}),
    )
    .await;
    app.post_json(
        "/api/ingest/lead",
        serde_json::json!({"clickId": click, "email": email, "firstName": "Juan"}),
    )
    .await;
    browser.click("a[href='/dashboard/customers']").await;
    arrive(&browser, "Customers").await;
    accessible(&browser, "console-customers").await;
    browser.type_into("#q", &email).await;
    browser.click("form.filters button[type=submit]").await;
    browser
        .wait_for("return location.search.includes('q=')", Duration::from_secs(10))
        .await;
    browser.click("tbody a").await;
    arrive(&browser, "Customer ").await;
    let page = browser.eval("return document.body.textContent").await;
    assert!(page.as_str().unwrap().contains(&email) && page.as_str().unwrap().contains(&click));
    accessible(&browser, "console-customer").await;
    browser.click("a[href='/dashboard/clicks']").await;
    arrive(&browser, "Clicks").await;
    let clicks = browser
        .eval("return document.querySelector('main table').textContent")
        .await;
    assert!(clicks.as_str().unwrap().contains(&click), "{clicks}");
    accessible(&browser, "console-clicks").await;

    // Seed §6.3's influencer, added on its page, then its campaign.
    browser.click("a[href='/dashboard/influencers']").await;
    arrive(&browser, "Influencers").await;
    browser.type_into("#inf-name", "Test Influencer").await;
    browser.type_into("#inf-id", "test-influencer-id").await;
    browser.click("form.stacked button[type=submit]").await;
    browser
        .wait_for(
            "return document.body.textContent.includes('test-influencer-id')",
            Duration::from_secs(10),
        )
        .await;
    accessible(&browser, "console-influencers").await;
    browser.click("a[href='/dashboard/campaigns']").await;
    arrive(&browser, "Campaigns").await;
    browser.type_into("#cmp-name", "test-campaign").await;
    browser.type_into("#cmp-brand", "rushbet").await;
    browser.click("form.stacked button[type=submit]").await;
    browser
        .wait_for(
            "return document.querySelector('tbody').textContent.includes('test-campaign')",
            Duration::from_secs(10),
        )
        .await;
    accessible(&browser, "console-campaigns").await;
    browser
        .goto(&format!("{api}/dashboard/journey-automation?brand=rushbet"))
        .await;
    arrive(&browser, "Journey automation").await;
    accessible(&browser, "console-journey-automation").await;
    browser.click("a[href='/dashboard/message-templates']").await;
    arrive(&browser, "Message templates").await;
    browser.type_into("#name", "Rushbet welcome").await;
    browser.type_into("#brand", "rushbet").await;
    browser.type_into("#subject", "¡Bienvenido, {firstName}!").await;
    browser.type_into("#body", "<p>Hola {firstName}</p>").await;
    browser.click("button[value=preview]").await;
    let preview = browser
        .wait_for("const p = document.querySelector('#preview-title'); return !!p && document.querySelector('main').textContent", Duration::from_secs(10))
        .await;
    assert!(preview.as_str().unwrap().contains("¡Bienvenido, Juan!"), "{preview}");
    accessible(&browser, "console-message-templates").await;
    browser.click("a[href='/dashboard/reports']").await;
    arrive(&browser, "Reports").await;
    accessible(&browser, "console-reports").await;
    browser.click("a[href='/dashboard/sources']").await;
    arrive(&browser, "Sources").await;
    accessible(&browser, "console-sources").await;

    // The owner adds an analyst on the Users page.
    browser.click("a[href='/dashboard/users']").await;
    arrive(&browser, "Users").await;
    accessible(&browser, "console-users").await;
    let analyst = format!("{}@example.com", unique("analyst"));
    browser.type_into("#new-email", &analyst).await;
    browser.type_into("#new-password", PASSWORD).await;
    browser.click("form.stacked button[type=submit]").await;
    browser
        .wait_for(
            &format!("return document.body.textContent.includes('{analyst}')"),
            Duration::from_secs(10),
        )
        .await;
    browser.click("a[href='/dashboard/audit']").await;
    arrive(&browser, "Audit log").await;
    accessible(&browser, "console-audit").await;
    let audit = browser.eval("return document.querySelector('tbody').textContent").await;
    assert!(audit.as_str().unwrap().contains("user.create"), "{audit}");

    browser.click("header form button[type=submit]").await;
    arrive(&browser, "Log in").await;
    browser.goto(&format!("{api}/dashboard/users")).await;
    arrive(&browser, "Log in").await;

    // The analyst reads, manages no one.
    log_in(&browser, &analyst).await;
    arrive(&browser, "Not allowed").await; // back where the login began, refused
    let text = browser.eval("return document.body.textContent").await;
    assert!(
        text.as_str().unwrap().contains("Your role does not allow this"),
        "{text}"
    );
    // The seed's customer, as an analyst sees it: no email, no name.
    browser.goto(&format!("{api}/dashboard/customers?q={click}")).await;
    arrive(&browser, "Customers").await;
    browser.click("tbody a").await;
    arrive(&browser, "Customer ").await;
    let seen = browser.eval("return document.body.textContent").await;
    let seen = seen.as_str().unwrap();
    assert!(!seen.contains(&email) && !seen.contains("Juan"), "{seen}");
    accessible(&browser, "console-customer-analyst").await;
    browser.goto(&format!("{api}/dashboard")).await;
    let links = browser
        .eval("return [...document.querySelectorAll('nav a')].map(a => a.textContent)")
        .await;
    assert_eq!(
        links,
        serde_json::json!([
            "Overview",
            "Customers",
            "Clicks",
            "Leads",
            "Events",
            "Journey automation",
            "Message templates",
            "Influencers",
            "Campaigns",
            "Reports",
            "Exports",
            "Suppressions",
            "Brand settings",
            "Sources",
            "Audit log"
        ])
    );
    browser.quit().await;
}

#[tokio::test]
async fn a_form_posted_from_another_site_changes_nothing() {
    let app = spawn_with(&[]).await;
    let api = app.serve().await;
    let owner = an_owner(&app).await;
    let browser = Browser::start().await;
    browser.goto(&format!("{api}/dashboard/login")).await;
    log_in(&browser, &owner).await;
    arrive(&browser, "Overview").await;

    // Another site's page posts a form to the console in the owner's browser.
    let evil = crm_tests::browser::serve_html(&format!(
        r#"<!doctype html><html lang="en"><title>Win</title><form method="post" action="{api}/dashboard/users">
        <input name="email" value="evil@example.com"><input name="role" value="owner">
        <input name="password" value="{PASSWORD}"><input name="csrf" value="guess"></form>
        <script>document.forms[0].submit()</script></html>"#
    ))
    .await;
    browser.goto(&evil).await;
    let refused = browser
        .wait_for(
            "return location.pathname === '/dashboard/users' && document.querySelector('h1') && document.querySelector('h1').textContent",
            Duration::from_secs(10),
        )
        .await;
    assert_ne!(refused, "Users", "the form was not taken as the owner's");
    let users = app.state.store.users().await.unwrap();
    assert_eq!(users.len(), 1, "nothing changed: {users:?}");
    browser.quit().await;
}

/// Today's clicks page shows a click that arrives while it is open, without a reload (the
/// page's one script, htmx, under the console's strict policy); a lead's welcome, processed,
/// is SENT on the customer's timeline; and the compliance, settings and partner pages have
/// no accessibility violation either.
#[tokio::test]
async fn new_rows_arrive_without_a_reload_and_the_other_pages_are_accessible() {
    let app = spawn_with(&[]).await;
    let api = app.serve().await;
    let owner = an_owner(&app).await;
    let browser = Browser::start().await;
    browser.goto(&format!("{api}/dashboard/clicks")).await;
    log_in(&browser, &owner).await;
    arrive(&browser, "Clicks").await;
    browser
        .wait_for("return typeof window.htmx === 'object'", Duration::from_secs(10))
        .await;
    let click = unique("LIVE_CLICK");
    app.post_json(
        "/api/ingest/click",
        serde_json::json!({"clickId": click, "brand": "rushbet"}),
    )
    .await;
    let arrived = browser
        .wait_for(
            &format!(
                "const t = document.querySelector('tbody.arrived'); return !!t && t.textContent.includes('{click}')"
            ),
            Duration::from_secs(20),
        )
        .await;
    assert_eq!(arrived, serde_json::json!(true));
    assert_eq!(
        browser
            .eval("return performance.getEntriesByType('navigation').length")
            .await,
        serde_json::json!(1),
        "no reload"
    );
    accessible(&browser, "console-clicks-live").await;

    // A lead's welcome, processed, is on the timeline as SENT.
    let email = format!("{}@example.com", unique("maria"));
    let (_, lead) = app
        .post_json(
            "/api/ingest/lead",
            serde_json::json!({"clickId": click, "email": email, "firstName": "María", "brand": "rushbet"}),
        )
        .await;
    app.run_due(time::OffsetDateTime::now_utc() + time::Duration::minutes(1))
        .await;
    let customer = lead["customerId"].as_str().unwrap();
    browser.goto(&format!("{api}/dashboard/customers/{customer}")).await;
    arrive(&browser, "Customer ").await;
    let timeline = browser.eval("return document.body.textContent").await;
    assert!(timeline.as_str().unwrap().contains("SENT"), "{timeline}");
    accessible(&browser, "console-customer-sent").await;

    // Seed §1.3: the deposit on the Events page, the lead on the Leads page.
    app.post_json(
        "/api/postback",
        serde_json::json!({"eventType": "deposit", "clickId": click, "depositAmount": 100, "currency": "USD", "operatorId": "rushbet"}),
    )
    .await;
    browser.goto(&format!("{api}/dashboard/events?type=deposit")).await;
    arrive(&browser, "Events").await;
    let events = browser
        .eval("return document.querySelector('main table').textContent")
        .await;
    assert!(
        events.as_str().unwrap().contains("deposit") && events.as_str().unwrap().contains(&click),
        "{events}"
    );
    accessible(&browser, "console-events").await;
    browser.goto(&format!("{api}/dashboard/leads")).await;
    arrive(&browser, "Leads").await;
    let leads = browser
        .eval("return document.querySelector('main table').textContent")
        .await;
    assert!(leads.as_str().unwrap().contains(&email), "{leads}");
    accessible(&browser, "console-leads").await;

    let (_, influencer) = app
        .admin_send(
            http::Method::POST,
            "/api/influencers",
            serde_json::json!({"name": "Ana Streams"}),
        )
        .await;
    let influencer = influencer["influencerId"].as_str().unwrap().to_owned();
    for (path, title, name) in [
        ("/dashboard/suppressions", "Suppressions", "console-suppressions"),
        (
            "/dashboard/settings?brand=rushbet",
            "Brand settings",
            "console-settings",
        ),
        ("/dashboard/exports", "Exports", "console-exports"),
        (
            &format!("/dashboard/influencers/{influencer}") as &str,
            "Ana Streams",
            "console-influencer",
        ),
    ] {
        browser.goto(&format!("{api}{path}")).await;
        arrive(&browser, title).await;
        accessible(&browser, name).await;
    }
    browser.quit().await;
}
