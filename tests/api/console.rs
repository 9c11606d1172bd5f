//! The console's people and access: logging in and out, sessions behind cookies, CSRF,
//! roles, the login attempt limit and the audit log (in-process; the browser tests drive
//! the same pages in Chromium).

use axum::body::Body;
use crm_core::access::{Password, Role};
use crm_core::values::Email;
use crm_tests::{TestApp, spawn, unique};
use http::{HeaderMap, Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use tower::ServiceExt;

pub(crate) const PASSWORD: &str = "correct horse battery staple";

pub(crate) async fn user(app: &TestApp, role: Role) -> String {
    let email = format!("{}@example.com", unique(role.as_str()));
    crm_app::access::create_user(
        &app.state.store,
        Email::parse(&email).unwrap(),
        role,
        &Password::parse(PASSWORD).unwrap(),
        time::OffsetDateTime::now_utc(),
    )
    .await
    .unwrap();
    email
}

/// Status, headers and body text of one request.
pub(crate) async fn call(app: &TestApp, req: Request<Body>) -> (StatusCode, HeaderMap, String) {
    let response = app.app.clone().oneshot(req).await.unwrap();
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    (
        parts.status,
        parts.headers,
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}

pub(crate) fn form(path: &str, cookie: Option<&str>, fields: &[(&str, &str)], site: &str) -> Request<Body> {
    let mut req = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header("sec-fetch-site", site);
    if let Some(c) = cookie {
        req = req.header(header::COOKIE, c);
    }
    req.body(Body::from(serde_urlencoded::to_string(fields).unwrap()))
        .unwrap()
}

pub(crate) fn page(path: &str, cookie: Option<&str>) -> Request<Body> {
    let mut req = Request::get(path);
    if let Some(c) = cookie {
        req = req.header(header::COOKIE, c);
    }
    req.body(Body::empty()).unwrap()
}

/// A login form as the login page hands it out: its own token in the form and its cookie.
pub(crate) async fn login_form(app: &TestApp, fields: &[(&str, &str)], site: &str) -> Request<Body> {
    let (_, headers, body) = call(app, page("/dashboard/login", None)).await;
    let set = headers[header::SET_COOKIE].to_str().unwrap();
    let cookie = set.split(';').next().unwrap().to_owned();
    let at = body.find("name=\"login_csrf\" value=\"").expect("the form's token") + 25;
    let token = body[at..].split('"').next().unwrap().to_owned();
    let mut all = fields.to_vec();
    all.push(("login_csrf", &token));
    form("/dashboard/login", Some(&cookie), &all, site)
}

/// Logs in: the cookie to send back (`name=value`).
pub(crate) async fn login(app: &TestApp, email: &str, password: &str) -> (StatusCode, Option<String>, String) {
    let request = login_form(app, &[("email", email), ("password", password)], "same-origin").await;
    let (status, headers, body) = call(app, request).await;
    let cookie = headers
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|c| c.to_str().unwrap().split(';').next().unwrap().to_owned())
        .find(|c| c.contains("crm_session="));
    (status, cookie, body)
}

/// Each page answers 200 within 8 DynamoDB requests (the session's reads included), none
/// a Scan.
pub(crate) async fn assert_bounded(app: &TestApp, cookie: &str, paths: &[&str]) {
    for path in paths {
        app.take_calls();
        let (status, _, _) = call(app, page(path, Some(cookie))).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        let calls = app.take_calls();
        let total: u64 = calls.values().sum();
        assert!(total <= 8, "{path}: {calls:?}");
        assert!(!calls.contains_key("Scan"), "{path}: {calls:?}");
    }
}

/// The CSRF token a page's forms carry.
pub(crate) fn csrf(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a form with the token") + 19;
    html[at..].split('"').next().unwrap().to_owned()
}

#[tokio::test]
async fn a_person_logs_in_sees_the_console_and_logs_out() {
    let app = spawn().await;
    let email = user(&app, Role::Owner).await;

    let (status, headers, _) = call(&app, page("/dashboard/users", None)).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[header::LOCATION], "/dashboard/login?next=/dashboard/users");

    let (status, cookie, body) = login(&app, &email, "wrong password, long enough").await;
    assert_eq!((status, cookie), (StatusCode::UNAUTHORIZED, None));
    assert!(body.contains("Wrong email or password."), "{body}");
    // The login form carries a token of its own, before any session: a login forced from
    // another page (no token, or another form's) is refused, with a form to try again.
    let fields = [("email", email.as_str()), ("password", PASSWORD)];
    let (status, headers, body) = call(&app, form("/dashboard/login", None, &fields, "same-origin")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(!headers[header::SET_COOKIE].to_str().unwrap().contains("crm_session"));
    assert!(body.contains("expired or came from elsewhere"), "{body}");
    let forged = [
        ("email", email.as_str()),
        ("password", PASSWORD),
        ("login_csrf", "0123"),
    ];
    let (status, _, _) = call(&app, login_form(&app, &[], "same-origin").await).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a form with its token reaches the password check"
    );
    let (_, headers, _) = call(&app, page("/dashboard/login", None)).await;
    let cookie = headers[header::SET_COOKIE].to_str().unwrap();
    assert!(
        cookie.starts_with("__Host-crm_login=") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let cookie = cookie.split(';').next().unwrap();
    let (status, _, _) = call(&app, form("/dashboard/login", Some(cookie), &forged, "same-origin")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a token not the cookie's is refused");

    let (status, headers, _) = call(
        &app,
        login_form(
            &app,
            &[("email", &email), ("password", PASSWORD), ("next", "/dashboard/audit")],
            "same-origin",
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[header::LOCATION], "/dashboard/audit");
    let set = headers[header::SET_COOKIE].to_str().unwrap();
    assert!(set.starts_with("__Host-crm_session="), "{set}");
    for attribute in ["Path=/", "HttpOnly", "SameSite=Lax", "Secure", "Max-Age=43200"] {
        assert!(set.contains(attribute), "{attribute} in {set}");
    }
    let cookie = set.split(';').next().unwrap().to_owned();

    let (status, headers, body) = call(&app, page("/dashboard", Some(&cookie))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("<h1>Overview</h1>") && body.contains(&email));
    assert_eq!(headers[header::CACHE_CONTROL], "no-store");
    assert!(
        headers[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );

    let token = csrf(&body);
    let (status, headers, _) = call(
        &app,
        form("/dashboard/logout", Some(&cookie), &[("csrf", &token)], "same-origin"),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(headers[header::SET_COOKIE].to_str().unwrap().contains("Max-Age=0"));
    let (status, _, _) = call(&app, page("/dashboard", Some(&cookie))).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "the session ended with the logout");

    // Two browsers; "log out everywhere" in one ends both.
    let (_, first, _) = login(&app, &email, PASSWORD).await;
    let (_, second, _) = login(&app, &email, PASSWORD).await;
    let (first, second) = (first.unwrap(), second.unwrap());
    let (_, _, body) = call(&app, page("/dashboard", Some(&first))).await;
    assert!(body.contains("/dashboard/logout-everywhere"));
    let token = csrf(&body);
    let (status, _, _) = call(
        &app,
        form(
            "/dashboard/logout-everywhere",
            Some(&first),
            &[("csrf", &token)],
            "same-origin",
        ),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    for cookie in [&first, &second] {
        let (status, _, _) = call(&app, page("/dashboard", Some(cookie))).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "every session ended");
    }
}

#[tokio::test]
async fn a_form_from_another_site_or_without_its_token_changes_nothing_and_changes_are_audited() {
    let app = spawn().await;
    let owner = user(&app, Role::Owner).await;
    let (_, cookie, _) = login(&app, &owner, PASSWORD).await;
    let cookie = cookie.unwrap();
    let (_, _, body) = call(&app, page("/dashboard/users", Some(&cookie))).await;
    let token = csrf(&body);
    let new = format!("{}@example.com", unique("new"));
    let fields = |t: &str| {
        vec![
            ("email", new.clone()),
            ("role", "manager".into()),
            ("password", PASSWORD.into()),
            ("csrf", t.to_owned()),
        ]
    };
    let as_pairs = |f: &Vec<(&'static str, String)>| f.iter().map(|(k, v)| (*k, v.clone())).collect::<Vec<_>>();

    for (site, t) in [
        ("cross-site", token.as_str()),
        ("same-origin", ""),
        ("same-origin", "forged"),
    ] {
        let f = as_pairs(&fields(t));
        let f: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (status, _, body) = call(&app, form("/dashboard/users", Some(&cookie), &f, site)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{site} {t:?}: {body}");
    }
    assert_eq!(app.state.store.users().await.unwrap().len(), 1, "nothing changed");

    let f = as_pairs(&fields(&token));
    let f: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, _, _) = call(&app, form("/dashboard/users", Some(&cookie), &f, "same-origin")).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let users = app.state.store.users().await.unwrap();
    let created = users
        .iter()
        .find(|u| u.email.as_str() == new)
        .expect("the user was added");
    assert_eq!(created.role, Role::Manager);

    let today = time::OffsetDateTime::now_utc().date();
    let (lines, _) = app.state.store.audit_day(today, 50, None).await.unwrap();
    let line = lines
        .iter()
        .find(|l| l.action == "user.create")
        .expect("the change is audited");
    assert_eq!(line.actor.name, owner, "the authenticated actor");
    assert!(line.target.starts_with(&created.user_id));
    assert!(lines.iter().any(|l| l.action == "login" && l.actor.name == owner));
}

#[tokio::test]
async fn an_analyst_manages_no_one_and_sees_people_masked() {
    let app = spawn().await;
    let owner = user(&app, Role::Owner).await;
    login(&app, &owner, PASSWORD).await;
    let analyst = user(&app, Role::Analyst).await;
    let (_, cookie, _) = login(&app, &analyst, PASSWORD).await;
    let cookie = cookie.unwrap();

    let (status, _, _) = call(&app, page("/dashboard/users", Some(&cookie))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, _, body) = call(&app, page("/dashboard", Some(&cookie))).await;
    assert!(
        !body.contains("/dashboard/users"),
        "no link to what the role may not see"
    );
    let token = csrf(&body);
    let fields = [
        ("email", "x@example.com"),
        ("role", "owner"),
        ("password", PASSWORD),
        ("csrf", token.as_str()),
    ];
    let (status, _, _) = call(&app, form("/dashboard/users", Some(&cookie), &fields, "same-origin")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(app.state.store.users().await.unwrap().len(), 2);

    let (status, _, audit) = call(&app, page("/dashboard/audit", Some(&cookie))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(audit.contains("login"), "{audit}");
    assert!(!audit.contains(&owner), "other people's emails masked: {audit}");
    assert!(audit.contains("o***@example.com"));
}

#[tokio::test]
async fn too_many_login_attempts_wait_and_the_page_says_how_long() {
    let app = spawn().await;
    let email = user(&app, Role::Manager).await;
    for _ in 0..crm_core::access::LOGINS_PER_ACCOUNT_AND_ADDRESS {
        let (status, _, _) = login(&app, &email, "not the password at all").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, headers, body) = call(
        &app,
        login_form(&app, &[("email", &email), ("password", PASSWORD)], "same-origin").await,
    )
    .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "even the right password waits");
    assert!(headers.get(header::RETRY_AFTER).is_some());
    // The guesser's address is stopped; the person, from elsewhere, is not locked out.
    let mut elsewhere = login_form(&app, &[("email", &email), ("password", PASSWORD)], "same-origin").await;
    elsewhere.extensions_mut().insert(axum::extract::ConnectInfo(
        "198.51.100.20:443".parse::<std::net::SocketAddr>().unwrap(),
    ));
    let (status, _, _) = call(&app, elsewhere).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "logged in from another address");
    assert!(
        body.contains("Too many login attempts for this account from this address. Try again in"),
        "{body}"
    );
}

#[tokio::test]
async fn a_changed_role_ends_the_users_sessions_and_the_last_owner_stays_an_owner() {
    let app = spawn().await;
    let owner = user(&app, Role::Owner).await;
    let manager = user(&app, Role::Manager).await;
    let (_, owner_cookie, _) = login(&app, &owner, PASSWORD).await;
    let owner_cookie = owner_cookie.unwrap();
    let (_, manager_cookie, _) = login(&app, &manager, PASSWORD).await;
    let manager_cookie = manager_cookie.unwrap();
    let users = app.state.store.users().await.unwrap();
    let id = |email: &str| {
        users
            .iter()
            .find(|u| u.email.as_str() == email)
            .unwrap()
            .user_id
            .clone()
    };

    let (_, _, body) = call(&app, page("/dashboard/users", Some(&owner_cookie))).await;
    let token = csrf(&body);
    let path = format!("/dashboard/users/{}", id(&manager));
    let fields = [("do", "role"), ("role", "analyst"), ("csrf", token.as_str())];
    let (status, _, _) = call(&app, form(&path, Some(&owner_cookie), &fields, "same-origin")).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, _, _) = call(&app, page("/dashboard", Some(&manager_cookie))).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "a new role needs a new login");

    let path = format!("/dashboard/users/{}", id(&owner));
    for action in ["disable", "delete"] {
        let fields = [("do", action), ("csrf", token.as_str())];
        let (status, _, body) = call(&app, form(&path, Some(&owner_cookie), &fields, "same-origin")).await;
        assert_eq!(status, StatusCode::CONFLICT, "{action}");
        assert!(body.contains("last active owner"), "{body}");
    }
}

#[tokio::test]
async fn the_seeds_customer_is_listed_found_by_any_identifier_and_its_timeline_shown() {
    let app = spawn().await;
    let owner = user(&app, Role::Owner).await;
    let analyst = user(&app, Role::Analyst).await;
    let click = unique("TEST_CLICK");
    let email = format!("{}@example.com", unique("juan"));
    app.post_json(
        "/api/ingest/click",
        serde_json::json!({"clickId": click, "campaign": "test-campaign", "source": "youtube", "ip": "192.168.1.100"}),
    )
    .await;
    let (_, lead) = app
        .post_json(
            "/api/ingest/lead",
            serde_json::json!({"clickId": click, "email": email, "phone": "+51999888777", "firstName": "Juan"}),
        )
        .await;
    app.post_json(
        "/api/postback",
        serde_json::json!({"eventType": "deposit", "clickId": click, "depositAmount": 100, "currency": "USD",
                           "operatorId": "rushbet", "userId": unique("rush")}),
    )
    .await;
    let customer = lead["customerId"].as_str().unwrap().to_owned();
    let (_, cookie, _) = login(&app, &owner, PASSWORD).await;
    let cookie = cookie.unwrap();

    let (status, _, list) = call(&app, page("/dashboard/customers", Some(&cookie))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(list.contains(&format!("/dashboard/customers/{customer}")), "{list}");
    for term in [email.as_str(), "+51999888777", click.as_str()] {
        let (_, _, found) = call(
            &app,
            page(&format!("/dashboard/customers?q={}", urlencode(term)), Some(&cookie)),
        )
        .await;
        assert!(
            found.contains(&format!("/dashboard/customers/{customer}")),
            "{term}: {found}"
        );
    }
    let (_, _, none) = call(&app, page("/dashboard/customers?q=nobody%40example.com", Some(&cookie))).await;
    assert!(none.contains("No customers found."));

    let (status, _, profile) = call(&app, page(&format!("/dashboard/customers/{customer}"), Some(&cookie))).await;
    assert_eq!(status, StatusCode::OK);
    for seen in [email.as_str(), "Juan", "deposit", "100", "click", "lead", "rushbet"] {
        assert!(profile.contains(seen), "{seen} on the profile");
    }
    let today = time::OffsetDateTime::now_utc().date();
    let (lines, _) = app.state.store.audit_day(today, 50, None).await.unwrap();
    assert!(
        lines
            .iter()
            .any(|l| l.action == "customer.read" && l.target == customer && l.actor.name == owner)
    );

    let (_, cookie, _) = login(&app, &analyst, PASSWORD).await;
    let (status, _, masked) = call(
        &app,
        page(&format!("/dashboard/customers/{customer}"), cookie.as_deref()),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        !masked.contains(&email) && !masked.contains("+51999888777") && !masked.contains("Juan"),
        "{masked}"
    );
    assert!(
        masked.contains("deposit") && masked.contains(&click),
        "the rest is there"
    );
}

fn urlencode(s: &str) -> String {
    serde_urlencoded::to_string([("", s)]).unwrap()[1..].to_owned()
}

/// Seed §6.3 in the console: the influencer and its campaign are created on their pages,
/// and the pages show the traffic credited to them, as the JSON API counts it.
#[tokio::test]
async fn seed_6_3_influencers_and_campaigns_are_created_on_their_pages_and_credited() {
    let app = spawn().await;
    let owner = user(&app, Role::Owner).await;
    let (_, cookie, _) = login(&app, &owner, PASSWORD).await;
    let cookie = cookie.unwrap();
    let (_, _, list) = call(&app, page("/dashboard/influencers", Some(&cookie))).await;
    let token = csrf(&list);
    let influencer = unique("test-influencer");
    let fields = [
        ("name", "Test Influencer"),
        ("influencerId", influencer.as_str()),
        ("channel", "YouTube"),
        ("csrf", token.as_str()),
    ];
    let (status, _, body) = call(
        &app,
        form("/dashboard/influencers", Some(&cookie), &fields, "same-origin"),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    let campaign = unique("test-campaign");
    let fields = [
        ("name", campaign.as_str()),
        ("brand", "rushbet"),
        ("influencerId", influencer.as_str()),
        ("csrf", token.as_str()),
    ];
    let (status, _, body) = call(
        &app,
        form("/dashboard/campaigns", Some(&cookie), &fields, "same-origin"),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    let fields = [("name", ""), ("csrf", token.as_str())];
    let (status, _, body) = call(
        &app,
        form("/dashboard/campaigns", Some(&cookie), &fields, "same-origin"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("name is required"), "{body}");

    let click = unique("ATTR_TEST");
    app.post_json(
        "/api/ingest/click",
        serde_json::json!({"clickId": click, "campaign": campaign, "influencerId": influencer, "source": "youtube"}),
    )
    .await;
    app.drain().await;
    let (_, api) = app.admin(&format!("/api/influencers/{influencer}")).await;
    assert_eq!(api["stats"]["clicks"], 1, "{api}");
    for path in ["/dashboard/influencers", "/dashboard/campaigns"] {
        let (status, _, page_html) = call(&app, page(path, Some(&cookie))).await;
        assert_eq!(status, StatusCode::OK);
        let row = page_html
            .split("<tr>")
            .find(|r| r.contains(&influencer))
            .unwrap_or_else(|| panic!("{path}: no row: {page_html}"));
        assert!(
            row.contains("<td class=\"num\">1</td>"),
            "{path}: one click credited: {row}"
        );
    }
    let today = time::OffsetDateTime::now_utc().date();
    let (lines, _) = app.state.store.audit_day(today, 50, None).await.unwrap();
    assert!(
        lines
            .iter()
            .any(|l| l.action == "influencer.create" && l.target == influencer)
    );

    let analyst = user(&app, Role::Analyst).await;
    let (_, cookie, _) = login(&app, &analyst, PASSWORD).await;
    let cookie = cookie.unwrap();
    let (_, _, list) = call(&app, page("/dashboard/influencers", Some(&cookie))).await;
    assert!(!list.contains("Add an influencer"), "no form for an analyst");
    let token = csrf(&list);
    let fields = [("name", "Sneaky"), ("csrf", token.as_str())];
    let (status, _, _) = call(
        &app,
        form("/dashboard/influencers", Some(&cookie), &fields, "same-origin"),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

/// Seed §1.4 in the console: the welcome message scheduled after the lead, then sent with
/// the customer's name, on the journey automation page.
#[tokio::test]
async fn seed_1_4_journey_automation_shows_the_welcome_scheduled_then_sent_with_the_name() {
    let app = spawn().await;
    let owner = user(&app, Role::Owner).await;
    let (_, cookie, _) = login(&app, &owner, PASSWORD).await;
    let cookie = cookie.unwrap();
    let click = unique("TEST_CLICK");
    app.post_json(
        "/api/ingest/click",
        serde_json::json!({"clickId": click, "campaign": "test-campaign"}),
    )
    .await;
    let (_, lead) = app
        .post_json(
            "/api/ingest/lead",
            serde_json::json!({"clickId": click, "email": format!("{}@example.com", unique("juan")), "firstName": "Juan"}),
        )
        .await;
    let customer = lead["customerId"].as_str().unwrap().to_owned();
    app.drain().await;

    let (status, _, scheduled) = call(
        &app,
        page("/dashboard/journey-automation?brand=unbranded", Some(&cookie)),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        scheduled.contains("Journey of unbranded") && scheduled.contains("the default definition"),
        "{scheduled}"
    );
    let row = |html: &str| {
        html.split("<tr>")
            .find(|r| r.contains(&format!("/dashboard/customers/{customer}")))
            .map(str::to_owned)
            .unwrap_or_else(|| panic!("no message of the customer: {html}"))
    };
    assert!(row(&scheduled).contains("PENDING"), "{}", row(&scheduled));

    app.run_due(time::OffsetDateTime::now_utc() + time::Duration::minutes(1))
        .await;
    let (_, _, sent) = call(&app, page("/dashboard/journey-automation?status=sent", Some(&cookie))).await;
    let sent = row(&sent);
    assert!(
        sent.contains("SENT") && sent.contains("Juan"),
        "the subject names the customer: {sent}"
    );
}

/// Seed §6.5 in the console: a custom Rushbet welcome (the acquisition message a click or a
/// lead starts: stage -1 here, the seed's "welcome") written on the templates page,
/// previewed with the seed's customer, saved, then used: the SENT message on the customer's
/// timeline carries it with the name filled in.
#[tokio::test]
async fn seed_6_5_a_template_written_in_the_console_is_previewed_saved_and_sent() {
    let app = spawn().await;
    let owner = user(&app, Role::Owner).await;
    let (_, cookie, _) = login(&app, &owner, PASSWORD).await;
    let cookie = cookie.unwrap();
    let (_, _, list) = call(&app, page("/dashboard/message-templates", Some(&cookie))).await;
    assert!(list.contains("built-in"), "the built-in templates are listed");
    let token = csrf(&list);
    let template = |action: &'static str, body: &'static str| {
        vec![
            ("name", "Rushbet welcome"),
            ("brand", "rushbet"),
            ("journeyType", "acquisition"),
            ("stage", "-1"),
            ("channel", "email"),
            ("subject", "¡Bienvenido a Rushbet, {firstName}!"),
            ("body", body),
            ("do", action),
        ]
    };
    let with_token = |mut f: Vec<(&'static str, &'static str)>, t: &str| {
        let mut owned: Vec<(String, String)> = f.drain(..).map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
        owned.push(("csrf".into(), t.to_owned()));
        owned
    };
    let post = |fields: Vec<(String, String)>| {
        let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        form("/dashboard/message-templates", Some(&cookie), &pairs, "same-origin")
    };

    let (status, _, broken) = call(&app, post(with_token(template("preview", "Hola {% if %}"), &token))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        broken.contains("id=\"body-error\""),
        "the error is beside the body: {broken}"
    );

    let body = "<p>Hola {firstName}, tu bono te espera.</p>";
    let (status, _, preview) = call(&app, post(with_token(template("preview", body), &token))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        preview.contains("¡Bienvenido a Rushbet, Juan!") && preview.contains("Hola Juan, tu bono te espera."),
        "{preview}"
    );
    assert!(
        app.state.store.templates("").await.unwrap().is_empty(),
        "a preview saves nothing"
    );

    let (status, _, _) = call(&app, post(with_token(template("save", body), &token))).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(app.state.store.templates("").await.unwrap().len(), 1);

    let click = unique("TEST_CLICK");
    app.post_json(
        "/api/ingest/click",
        serde_json::json!({"clickId": click, "brand": "rushbet"}),
    )
    .await;
    let (_, lead) = app
        .post_json(
            "/api/ingest/lead",
            serde_json::json!({"clickId": click, "brand": "rushbet", "email": format!("{}@example.com", unique("juan")), "firstName": "Juan"}),
        )
        .await;
    let customer = lead["customerId"].as_str().unwrap().to_owned();
    app.run_due(time::OffsetDateTime::now_utc() + time::Duration::minutes(1))
        .await;
    let (_, _, profile) = call(&app, page(&format!("/dashboard/customers/{customer}"), Some(&cookie))).await;
    assert!(
        profile.contains("SENT") && profile.contains("¡Bienvenido a Rushbet, Juan!"),
        "{profile}"
    );
}

/// The reports page shows what the JSON API answers, to the cent, and its CSV is the API's.
#[tokio::test]
async fn a_report_in_the_console_equals_the_api_to_the_cent() {
    let app = spawn().await;
    let owner = user(&app, Role::Owner).await;
    let (_, cookie, _) = login(&app, &owner, PASSWORD).await;
    let cookie = cookie.unwrap();
    for (amount, brand) in [("100.10", "rushbet"), ("50.05", "rushbet"), ("20.00", "roobet")] {
        let click = unique("R");
        app.post_json(
            "/api/ingest/click",
            serde_json::json!({"clickId": click, "brand": brand}),
        )
        .await;
        app.post_json(
            "/api/postback",
            serde_json::json!({"eventType": "deposit", "clickId": click, "depositAmount": amount, "currency": "USD",
                               "operatorId": brand, "userId": unique("u")}),
        )
        .await;
    }
    app.drain().await;
    let query = "groupBy=brand";
    let (_, api) = app.admin(&format!("/api/reports?{query}")).await;
    assert_eq!(api["totals"]["revenueConverted"], "170.15", "{api}");
    let (status, _, html) = call(&app, page(&format!("/dashboard/reports?{query}"), Some(&cookie))).await;
    assert_eq!(status, StatusCode::OK);
    let total = html.split("<tfoot>").nth(1).expect("a totals row");
    assert!(total.contains("<td class=\"num\">170.15</td>"), "{total}");
    for item in api["items"].as_array().unwrap() {
        let brand = item["brand"].as_str().unwrap();
        let row = html
            .split("<tr>")
            .find(|r| r.contains(&format!(">{brand}<")))
            .expect("a row per brand");
        assert!(
            row.contains(&format!(">{}<", item["revenueConverted"].as_str().unwrap())),
            "{row}"
        );
    }

    let (status, headers, csv) = call(
        &app,
        page(&format!("/dashboard/reports?{query}&format=csv"), Some(&cookie)),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers[header::CONTENT_DISPOSITION]
            .to_str()
            .unwrap()
            .contains("report.csv")
    );
    let (_, _, api_csv) = call(
        &app,
        Request::get(format!("/api/reports?{query}&format=csv"))
            .header(header::AUTHORIZATION, format!("Bearer {}", crm_tests::ADMIN_KEY))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(csv, api_csv, "the CSV of what is shown is the API's");

    let (status, _, bad) = call(&app, page("/dashboard/reports?groupBy=nonsense", Some(&cookie))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(bad.contains("Group by:"), "{bad}");
}

/// The console's list and profile pages cost a bounded number of DynamoDB requests (the
/// session's read included), whatever the table holds, and none scans it.
#[tokio::test]
async fn list_and_profile_pages_cost_a_bounded_number_of_requests() {
    let app = spawn().await;
    let owner = user(&app, Role::Owner).await;
    let (_, cookie, _) = login(&app, &owner, PASSWORD).await;
    let cookie = cookie.unwrap();
    let mut customer = String::new();
    for _ in 0..3 {
        let click = unique("C");
        let (_, body) = app
            .post_json("/api/ingest/click", serde_json::json!({"clickId": click}))
            .await;
        customer = body["customerId"].as_str().unwrap().to_owned();
    }
    let profile = format!("/dashboard/customers/{customer}");
    assert_bounded(
        &app,
        &cookie,
        &[
            "/dashboard/customers",
            "/dashboard/customers?q=someone%40example.com",
            profile.as_str(),
            "/dashboard/clicks",
            "/dashboard/leads",
            "/dashboard/events",
            "/dashboard/journey-automation?brand=rushbet",
            "/dashboard/users",
            "/dashboard/audit",
            "/dashboard/message-templates",
        ],
    )
    .await;
}

/// Settings → Sources: a landing page's source created in the console, its key shown once
/// and working at once; rotated and revoked there too.
#[tokio::test]
async fn sources_are_created_rotated_and_revoked_in_the_console() {
    let app = crm_tests::spawn_with(&[("INGEST_AUTH", "required")]).await;
    let manager = user(&app, Role::Manager).await;
    let (_, cookie, _) = login(&app, &manager, PASSWORD).await;
    let cookie = cookie.unwrap();
    let (_, _, list) = call(&app, page("/dashboard/sources", Some(&cookie))).await;
    let token = csrf(&list);
    let fields = [
        ("name", "Rushbet LP"),
        ("kind", "landing"),
        ("brand", "rushbet"),
        ("allowedOrigins", "https://lp.rushbet.example\n"),
        ("decorateDomains", "rushbet.com"),
        ("decorateParam", "btag"),
        ("csrf", token.as_str()),
    ];
    let (status, _, created) = call(&app, form("/dashboard/sources", Some(&cookie), &fields, "same-origin")).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let key = created
        .split("<pre class=\"preview\">")
        .nth(1)
        .and_then(|k| k.split('<').next())
        .expect("the key, shown once")
        .to_owned();
    assert!(key.starts_with("crm_"), "{key}");
    let (_, _, again) = call(&app, page("/dashboard/sources", Some(&cookie))).await;
    assert!(!again.contains(&key), "never shown again");
    assert!(again.contains(&format!("…{}", &key[key.len() - 4..])));

    let lead = |key: String| {
        Request::post(format!("/api/ingest/lead?token={key}"))
            .header(header::ORIGIN, "https://lp.rushbet.example")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(
                serde_json::json!({"email": format!("{}@example.com", unique("v"))}).to_string(),
            ))
            .unwrap()
    };
    let (status, _, _) = call(&app, lead(key.clone())).await;
    assert_eq!(status, StatusCode::OK, "the key works at once");

    let sources = app.state.store.sources().await.unwrap();
    let id = sources[0].source.source_id.clone();
    assert_eq!(sources[0].source.rules.tag.decorate_param.as_str(), "btag");
    let path = format!("/dashboard/sources/{id}");
    let (status, _, _) = call(
        &app,
        form(
            &path,
            Some(&cookie),
            &[
                ("do", "revoke-key"),
                ("last4", &key[key.len() - 4..]),
                ("csrf", token.as_str()),
            ],
            "same-origin",
        ),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, _, _) = call(&app, lead(key.clone())).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a revoked key");

    let fields = [
        ("name", "Broken"),
        ("kind", "landing"),
        ("brand", "rushbet"),
        ("csrf", token.as_str()),
    ];
    let (status, _, body) = call(&app, form("/dashboard/sources", Some(&cookie), &fields, "same-origin")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("allowedOrigins:"), "{body}");

    let today = time::OffsetDateTime::now_utc().date();
    let (lines, _) = app.state.store.audit_day(today, 50, None).await.unwrap();
    assert!(
        lines
            .iter()
            .any(|l| l.action == "source.create" && l.target == id && l.actor.name == manager)
    );
    assert!(lines.iter().any(|l| l.action == "source.revoke-key" && l.target == id));
}

#[tokio::test]
async fn a_session_ends_when_its_user_is_disabled_or_given_another_role() {
    let app = spawn().await;
    let manager = user(&app, Role::Manager).await;
    let (_, cookie, _) = login(&app, &manager, PASSWORD).await;
    let cookie = cookie.unwrap();
    let (status, _, _) = call(&app, page("/dashboard", Some(&cookie))).await;
    assert_eq!(status, StatusCode::OK);
    // Changed in the store directly, as a change whose session clean-up missed would leave it.
    let mut u = app
        .state
        .store
        .users()
        .await
        .unwrap()
        .into_iter()
        .find(|u| u.email.as_str() == manager)
        .unwrap();
    u.role = Role::Analyst;
    app.state.store.update_user(&u, None, None).await.unwrap();
    let (status, _, _) = call(&app, page("/dashboard", Some(&cookie))).await;
    assert_eq!(
        status,
        StatusCode::SEE_OTHER,
        "the session carried the old role: it ended"
    );
}
