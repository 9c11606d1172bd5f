//! Deliverability and compliance end to end: unsubscribe links in mails actually sent
//! through the emulator's SES, STOP by SMS, SNS's opt-out list, consent, frequency caps
//! under concurrent senders, quiet hours.

use aws_sdk_dynamodb::types::AttributeValue;
use crm_core::message::SendJob;
use crm_messaging::sender::{Delivered, deliver};
use crm_tests::mailbox::{emails_to, sms_to};
use crm_tests::{PUBLIC_BASE_URL, TestApp, phone, spawn, spawn_with, unique};
use http::{Method, Request, StatusCode, header};
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};

fn step<'a>(messages: &'a [Value], brand: &str, step_id: &str) -> &'a Value {
    messages
        .iter()
        .find(|m| m["stepId"] == step_id && m["brand"] == brand)
        .unwrap_or_else(|| panic!("no {brand} {step_id} message in {messages:?}"))
}

async fn post(app: &TestApp, path: &str, body: Value) -> Value {
    let (status, body) = app.post_json(path, body).await;
    assert_eq!(status, StatusCode::OK, "{path}: {body}");
    body
}

/// A raw request to the app; the body as text (pages are HTML).
async fn raw(app: &TestApp, method: Method, path: &str, content_type: &str, body: &str) -> (StatusCode, String) {
    let (status, _, body) = raw_with_headers(app, method, path, content_type, body).await;
    (status, body)
}

async fn raw_with_headers(
    app: &TestApp,
    method: Method,
    path: &str,
    content_type: &str,
    body: &str,
) -> (StatusCode, http::HeaderMap, String) {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header(header::CONTENT_TYPE, content_type)
        .header(header::ACCEPT, "text/html")
        .body(axum::body::Body::from(body.to_owned()))
        .unwrap();
    let res = tower::ServiceExt::oneshot(app.app.clone(), req).await.unwrap();
    let (status, headers) = (res.status(), res.headers().clone());
    let bytes = http_body_util::BodyExt::collect(res.into_body())
        .await
        .unwrap()
        .to_bytes();
    (status, headers, String::from_utf8_lossy(&bytes).into_owned())
}

/// The path of the link a header or body names (`https://crm.test/u/…` → `/u/…`).
fn link_path(url: &str) -> String {
    url.trim_matches(['<', '>'])
        .strip_prefix(PUBLIC_BASE_URL)
        .unwrap_or_else(|| panic!("{url} is not on {PUBLIC_BASE_URL}"))
        .to_owned()
}

#[tokio::test]
async fn one_click_on_a_sent_mail_stops_that_brand_and_only_that_brand() {
    let app = spawn().await;
    let email = format!("{}@example.com", unique("ana"));
    let lead = post(
        &app,
        "/api/ingest/lead",
        json!({"email": email, "firstName": "Ana", "operatorId": "rushbet"}),
    )
    .await;
    let customer = lead["customerId"].as_str().unwrap().to_owned();
    app.run_due(OffsetDateTime::now_utc()).await;

    let mails = emails_to(&email);
    assert_eq!(mails.len(), 1, "the welcome");
    let welcome = &mails[0];
    let list_unsubscribe = welcome.header("List-Unsubscribe").expect("List-Unsubscribe").trim();
    assert_eq!(
        welcome.header("List-Unsubscribe-Post").map(str::trim),
        Some("List-Unsubscribe=One-Click")
    );
    // Not folded: the whole header on one line of the raw message.
    assert!(
        welcome
            .raw
            .contains(&format!("List-Unsubscribe: {list_unsubscribe}\r\n")),
        "{}",
        welcome.raw
    );
    let path = link_path(list_unsubscribe);
    assert!(
        !path.contains('@') && !path.contains("ana"),
        "the link carries no address: {path}"
    );
    let url = list_unsubscribe.trim_matches(['<', '>']);
    assert!(
        welcome.html.contains(url) && welcome.text.contains(url),
        "footer link in both parts"
    );

    // The page changes nothing; the one-click POST unsubscribes at once.
    let (status, page) = raw(&app, Method::GET, &path, "text/plain", "").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("<form method=\"post\"") && page.contains("all brands"),
        "{page}"
    );
    // It names the brand that sent the mail and the address, masked; the mail's footer too.
    assert!(
        page.contains("Rushbet") && page.contains(&crm_core::values::mask(&email)) && !page.contains(&email),
        "{page}"
    );
    assert!(
        welcome.text.contains("You receive this email from Rushbet."),
        "{}",
        welcome.text
    );
    let (status, done) = raw(
        &app,
        Method::POST,
        &path,
        "application/x-www-form-urlencoded",
        "List-Unsubscribe=One-Click",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert!(
        done.contains("You are unsubscribed from") && done.contains("Subscribe again"),
        "{done}"
    );

    // The next rushbet email is skipped; betano's goes.
    post(
        &app,
        "/api/postback",
        json!({"event": "registration", "email": email, "operatorId": "rushbet"}),
    )
    .await;
    post(
        &app,
        "/api/postback",
        json!({"event": "registration", "email": email, "operatorId": "betano"}),
    )
    .await;
    app.run_due(OffsetDateTime::now_utc() + Duration::hours(25)).await;
    let messages = app.messages(&customer).await;
    let rushbet = step(&messages, "rushbet", "registered-nudge-email");
    assert_eq!(
        (rushbet["status"].as_str(), rushbet["reason"].as_str()),
        (Some("SKIPPED"), Some("suppressed")),
        "{rushbet}"
    );
    assert_eq!(step(&messages, "betano", "registered-nudge-email")["status"], "SENT");
    assert_eq!(emails_to(&email).len(), 2, "the welcome and betano's nudge");

    // The suppression is on the list, found by the address.
    let (status, list) = app
        .admin(&format!("/api/suppressions?channel=email&address={email}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list["items"][0]["scope"], "rushbet");
    assert_eq!(list["items"][0]["reason"], "unsubscribed");
    assert_eq!(list["items"][0]["source"], "one_click");

    // Resubscribing from the page lifts it.
    let (status, page) = raw(
        &app,
        Method::POST,
        &path,
        "application/x-www-form-urlencoded",
        "action=resubscribe",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let (_, list) = app
        .admin(&format!("/api/suppressions?channel=email&address={email}"))
        .await;
    assert_eq!(list["items"].as_array().unwrap().len(), 0, "{list}");

    // A forged token is refused.
    // (The signature's last hex digit changed: to 1 if it was 0, else to 0.)
    let flipped = if path.ends_with('0') { '1' } else { '0' };
    let forged = format!("{}{flipped}", &path[..path.len() - 1]);
    let (status, _) = raw(
        &app,
        Method::POST,
        &forged,
        "application/x-www-form-urlencoded",
        "List-Unsubscribe=One-Click",
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn baja_by_sms_opts_out_and_alta_opts_back_in() {
    let app = spawn().await;
    let phone = phone();
    let email = format!("{}@example.com", unique("sms"));
    let lead = post(
        &app,
        "/api/ingest/lead",
        json!({"email": email, "phone": phone, "firstName": "Ana", "operatorId": "rushbet"}),
    )
    .await;
    let customer = lead["customerId"].as_str().unwrap().to_owned();
    post(
        &app,
        "/api/postback",
        json!({"event": "registration", "email": email, "operatorId": "rushbet"}),
    )
    .await;
    app.drain().await;

    let (status, err) = app
        .post_json("/api/webhooks/sms-inbound", json!({"text": "BAJA"}))
        .await;
    assert_eq!(
        (status, err["error"]["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("from")),
        "{err}"
    );
    let (status, err) = app
        .post_json(
            "/api/webhooks/sms-inbound",
            json!({"from": "not a phone", "text": "BAJA"}),
        )
        .await;
    assert_eq!(
        (status, err["error"]["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("from")),
        "{err}"
    );
    // Twilio-style form fields, Spanish keyword with an accent.
    let (status, out) = app
        .post_form(
            "/api/webhooks/sms-inbound",
            &format!("From={}&Body=B%C3%A1ja", phone.replace('+', "%2B")),
        )
        .await;
    assert_eq!(
        (status, out["status"].as_str()),
        (StatusCode::OK, Some("opted_out")),
        "{out}"
    );

    app.tick_at(OffsetDateTime::now_utc() + Duration::hours(49)).await;
    app.drain().await;
    let messages = app.messages(&customer).await;
    let sms = step(&messages, "rushbet", "registered-nudge-sms");
    assert_eq!(
        (sms["status"].as_str(), sms["reason"].as_str()),
        (Some("SKIPPED"), Some("suppressed")),
        "{sms}"
    );
    assert!(sms_to(&phone).is_empty());

    let out = post(
        &app,
        "/api/webhooks/sms-inbound",
        json!({"from": phone, "text": "alta"}),
    )
    .await;
    assert_eq!(out["status"], "opted_in");
    let (_, list) = app
        .admin(&format!(
            "/api/suppressions?channel=sms&address={}",
            phone.replace('+', "%2B")
        ))
        .await;
    assert_eq!(list["items"].as_array().unwrap().len(), 0, "{list}");
    let out = post(
        &app,
        "/api/webhooks/sms-inbound",
        json!({"from": phone, "text": "hola"}),
    )
    .await;
    assert_eq!(out["status"], "ignored");
}

#[tokio::test]
async fn marketing_sms_carry_the_opt_out_line_and_sns_opted_out_numbers_are_suppressed() {
    let app = spawn().await;
    let ok = phone();
    // The emulator's SNS reports every number ending in 99 as opted out.
    let opted_out = format!("{}99", &phone()[..10]);
    let mut customers = Vec::new();
    for p in [&ok, &opted_out] {
        let email = format!("{}@example.com", unique("sms"));
        let lead = post(
            &app,
            "/api/ingest/lead",
            json!({"email": email, "phone": p, "firstName": "Ana", "operatorId": "rushbet"}),
        )
        .await;
        customers.push(lead["customerId"].as_str().unwrap().to_owned());
        post(
            &app,
            "/api/postback",
            json!({"event": "registration", "email": email, "operatorId": "rushbet"}),
        )
        .await;
    }
    app.run_due(OffsetDateTime::now_utc() + Duration::hours(49)).await;

    let sent = sms_to(&ok);
    assert_eq!(sent.len(), 1);
    assert!(sent[0].ends_with("Reply STOP to opt out"), "{}", sent[0]);
    let messages = app.messages(&customers[1]).await;
    let sms = step(&messages, "rushbet", "registered-nudge-sms");
    assert_eq!(
        (sms["status"].as_str(), sms["reason"].as_str()),
        (Some("SKIPPED"), Some("suppressed")),
        "{sms}"
    );
    assert!(sms_to(&opted_out).is_empty());
    let (_, list) = app
        .admin(&format!(
            "/api/suppressions?channel=sms&address={}",
            opted_out.replace('+', "%2B")
        ))
        .await;
    assert_eq!(list["items"][0]["source"], "sns_opt_out", "{list}");
}

#[tokio::test]
async fn consent_is_required_where_the_brand_says_so_and_a_refusal_always_counts() {
    let app = spawn().await;
    let (status, body) = app
        .admin_send(
            Method::PUT,
            "/api/brands/strictbet/settings",
            json!({"requireConsent": true}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut customers = Vec::new();
    for (brand, consent) in [("strictbet", None), ("strictbet", Some("on")), ("rushbet", Some("no"))] {
        let email = format!("{}@example.com", unique("consent"));
        let mut lead = json!({"email": email, "firstName": "Ana", "operatorId": brand});
        if let Some(c) = consent {
            lead["marketingOptIn"] = json!(c);
        }
        let body = post(&app, "/api/ingest/lead", lead).await;
        customers.push((brand, body["customerId"].as_str().unwrap().to_owned()));
    }
    app.run_due(OffsetDateTime::now_utc()).await;
    let mut outcomes = Vec::new();
    for (brand, customer) in &customers {
        let messages = app.messages(customer).await;
        let m = step(&messages, brand, "welcome");
        outcomes.push((
            m["status"].as_str().unwrap().to_owned(),
            m["reason"].as_str().map(str::to_owned),
        ));
    }
    assert_eq!(
        outcomes,
        [
            ("SKIPPED".to_owned(), Some("no_consent".to_owned())),
            ("SENT".to_owned(), None),
            ("SKIPPED".to_owned(), Some("no_consent".to_owned())),
        ]
    );
    let profile = app.customer(&customers[1].1).await;
    assert_eq!(profile["consents"]["strictbet"]["email"]["granted"], true, "{profile}");
    assert_eq!(profile["consents"]["strictbet"]["email"]["source"], "lead", "{profile}");
}

#[tokio::test]
async fn two_senders_at_once_cannot_both_pass_a_cap_of_one() {
    let app = spawn_with(&[("CROSS_BRAND_CAPS_EMAIL", "1/24h")]).await;
    let email = format!("{}@example.com", unique("cap"));
    let mut customer = String::new();
    for brand in ["rushbet", "betano"] {
        let body = post(
            &app,
            "/api/ingest/lead",
            json!({"email": email, "firstName": "Ana", "operatorId": brand}),
        )
        .await;
        customer = body["customerId"].as_str().unwrap().to_owned();
    }
    app.drain().await;
    let now = OffsetDateTime::now_utc();
    app.tick_at(now).await;
    let jobs: Vec<SendJob> = app
        .messages(&customer)
        .await
        .iter()
        .filter(|m| m["status"] == "QUEUED")
        .map(|m| SendJob {
            customer_id: crm_core::values::CustomerId::parse(m["customerId"].as_str().unwrap()).unwrap(),
            message_id: m["messageId"].as_str().unwrap().to_owned(),
        })
        .collect();
    assert_eq!(jobs.len(), 2, "both welcomes queued");
    let (a, b) = tokio::join!(
        deliver(&app.messaging, &jobs[0], "receive-a", now),
        deliver(&app.messaging, &jobs[1], "receive-b", now)
    );
    let settled: Vec<_> = [a.unwrap(), b.unwrap()]
        .into_iter()
        .map(|d| match d {
            Delivered::Settled(m) => *m,
            Delivered::NotMine => panic!("both jobs were ours"),
        })
        .collect();
    let sent: Vec<_> = settled.iter().filter(|m| m.status.as_str() == "SENT").collect();
    let capped: Vec<_> = settled.iter().filter(|m| m.status.as_str() == "PENDING").collect();
    assert_eq!((sent.len(), capped.len()), (1, 1), "{settled:?}");
    assert_eq!(capped[0].reason.map(|r| r.as_str()), Some("frequency_cap"));
    let frees = capped[0].due_at - sent[0].sent_at.unwrap();
    assert!(
        frees >= Duration::hours(24) - Duration::seconds(1) && frees <= Duration::hours(24),
        "{frees}"
    );
    app.drain().await; // the queue's copies of both jobs
    assert_eq!(emails_to(&email).len(), 1);
}

#[tokio::test]
async fn sms_in_the_recipients_night_wait_for_the_morning() {
    let app = spawn_with(&[("QUIET_HOURS_SMS", "21:00-08:00")]).await;
    // A fixed-offset zone where it is now 03:00-03:59 (Etc/GMT+N is UTC-N).
    let now = OffsetDateTime::now_utc();
    let offset = (3 - i32::from(now.hour()) + 24 + 12) % 24 - 12;
    let zone = match offset {
        0 => "Etc/GMT".to_owned(),
        o if o > 0 => format!("Etc/GMT-{o}"),
        o => format!("Etc/GMT+{}", -o),
    };
    let mut definition = json!({"steps": [{"id": "night-sms", "journeyType": "acquisition", "stage": 0, "channel": "sms", "delay": "0"}]});
    definition["advances"] = json!([]);
    let (status, body) = app
        .admin_send(Method::PUT, "/api/brands/nightbet/journey", definition)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let phone = phone();
    let lead = post(
        &app,
        "/api/postback",
        json!({"event": "registration", "phone": phone, "operatorId": "nightbet", "timezone": zone}),
    )
    .await;
    let customer = lead["customerId"].as_str().unwrap().to_owned();
    app.run_due(OffsetDateTime::now_utc()).await;
    let messages = app.messages(&customer).await;
    let m = step(&messages, "nightbet", "night-sms");
    assert_eq!(
        (m["status"].as_str(), m["reason"].as_str()),
        (Some("PENDING"), Some("quiet_hours")),
        "{m}"
    );
    let due = crm_core::values::parse_ts(m["dueAt"].as_str().unwrap()).unwrap();
    let local = due.to_offset(time::UtcOffset::from_hms(offset as i8, 0, 0).unwrap());
    assert_eq!(
        (local.hour(), local.minute() < 10),
        (8, true),
        "08:00 local plus a spread of minutes: {local}"
    );
    assert!(sms_to(&phone).is_empty());
}

#[tokio::test]
async fn a_self_exclusion_postback_cancels_the_brands_pending_messages_at_once() {
    let app = spawn().await;
    let (status, body) = app
        .admin_send(
            Method::PUT,
            "/api/brands/coolbet/settings",
            json!({"responsibleGambling": {"allBrands": true}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut people = Vec::new();
    for (excluding, other) in [("rushbet", "betano"), ("coolbet", "betano")] {
        let email = format!("{}@example.com", unique("rg"));
        let mut customer = String::new();
        for brand in [excluding, other] {
            let body = post(&app, "/api/ingest/lead", json!({"email": email, "operatorId": brand})).await;
            customer = body["customerId"].as_str().unwrap().to_owned();
        }
        app.drain().await;
        people.push((excluding, email, customer));
    }
    // Operators' names for the events vary: both are recognised.
    post(
        &app,
        "/api/postback",
        json!({"event": "self_exclusion", "email": people[0].1, "operatorId": "rushbet"}),
    )
    .await;
    post(
        &app,
        "/api/postback",
        json!({"eventType": "Cooling-Off", "email": people[1].1, "operatorId": "coolbet"}),
    )
    .await;
    app.drain().await;

    let messages = app.messages(&people[0].2).await;
    let own = step(&messages, "rushbet", "welcome");
    assert_eq!(
        (own["status"].as_str(), own["reason"].as_str()),
        (Some("CANCELLED"), Some("self_excluded")),
        "{own}"
    );
    assert_eq!(
        step(&messages, "betano", "welcome")["status"],
        "PENDING",
        "rushbet's exclusion is rushbet's"
    );
    let messages = app.messages(&people[1].2).await;
    for brand in ["coolbet", "betano"] {
        let m = step(&messages, brand, "welcome");
        assert_eq!(
            (m["status"].as_str(), m["reason"].as_str()),
            (Some("CANCELLED"), Some("self_excluded")),
            "{m}"
        );
    }
    let profile = app.customer(&people[0].2).await;
    assert_eq!(profile["exclusions"]["rushbet"]["kind"], "self_exclusion", "{profile}");
    let (_, timeline) = app.admin(&format!("/api/customers/{}/timeline", people[0].2)).await;
    assert!(timeline.to_string().contains("self_exclusion"), "{timeline}");

    // Reactivation does not lift it unless the brand allows; a later stage schedules nothing.
    post(
        &app,
        "/api/postback",
        json!({"event": "reactivated", "email": people[0].1, "operatorId": "rushbet"}),
    )
    .await;
    post(
        &app,
        "/api/postback",
        json!({"event": "registration", "email": people[0].1, "operatorId": "rushbet"}),
    )
    .await;
    app.drain().await;
    let messages = app.messages(&people[0].2).await;
    assert!(
        !messages
            .iter()
            .any(|m| m["brand"] == "rushbet" && m["stepId"] == "registered-nudge-email"),
        "{messages:?}"
    );
}

/// Whether a captured metric document has `name` and `key` = `value` (a dimension, or
/// another value of the document, as text).
fn metric_written(name: &str, key: &str, value: &str) -> bool {
    crm_app::metrics::captured().iter().any(|doc| {
        doc.get(name).is_some()
            && match &doc[key] {
                Value::String(s) => s == value,
                Value::Number(n) => n.as_f64().is_some_and(|n| n.to_string() == value),
                _ => false,
            }
    })
}

/// A sample SES notification from `events/ses-events/`, about `message` of `customer` sent
/// to `to`, fed through the function's entry path.
async fn ses_notification(app: &TestApp, sample: &str, message: &Value, to: &str, feedback_id: &str) -> usize {
    let mut event: Value = serde_json::from_str(sample).unwrap();
    let mut inner: Value = serde_json::from_str(event["Records"][0]["Sns"]["Message"].as_str().unwrap()).unwrap();
    inner["mail"]["messageId"] = message["providerMessageId"].clone();
    inner["mail"]["tags"]["crm_customer"] = json!([message["customerId"]]);
    inner["mail"]["tags"]["crm_message"] = json!([message["messageId"]]);
    for (kind, list) in [("bounce", "bouncedRecipients"), ("complaint", "complainedRecipients")] {
        if inner.get(kind).is_some() {
            inner[kind][list] = json!([{"emailAddress": to}]);
            inner[kind]["feedbackId"] = json!(feedback_id);
        }
    }
    event["Records"][0]["Sns"]["Message"] = json!(inner.to_string());
    let event = serde_json::from_value(event).expect("an SNS event");
    crm_ses_events::handle(&app.messaging, event).await.expect("recorded")
}

/// A customer of `brand` whose welcome went out; returns (customer, the welcome).
async fn welcomed(app: &TestApp, email: &str, brand: &str) -> (String, Value) {
    let body = post(app, "/api/ingest/lead", json!({"email": email, "operatorId": brand})).await;
    let customer = body["customerId"].as_str().unwrap().to_owned();
    app.run_due(OffsetDateTime::now_utc()).await;
    let messages = app.messages(&customer).await;
    let welcome = step(&messages, brand, "welcome").clone();
    assert_eq!(welcome["status"], "SENT", "{welcome}");
    (customer, welcome)
}

#[tokio::test]
async fn bounces_and_complaints_suppress_the_address_for_every_brand() {
    crm_app::metrics::capture();
    let app = spawn().await;
    let bounced = format!("{}@example.com", unique("bounce"));
    let (customer, welcome) = welcomed(&app, &bounced, "rushbet").await;
    let sample = include_str!("../../events/ses-events/permanent-bounce.json");
    for _ in 0..2 {
        // SNS may deliver it twice: the same outcome.
        assert_eq!(ses_notification(&app, sample, &welcome, &bounced, "fb-1").await, 1);
    }
    let messages = app.messages(&customer).await;
    assert_eq!(step(&messages, "rushbet", "welcome")["status"], "BOUNCED");
    assert!(
        metric_written("EmailBounces", "Permanent", "true"),
        "the dashboard's bounce rate"
    );
    let (_, list) = app.admin(&format!("/api/suppressions?address={bounced}")).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");
    assert_eq!(
        (list["items"][0]["reason"].as_str(), list["items"][0]["scope"].as_str()),
        (Some("bounced"), Some("all"))
    );
    // Another brand's next mail to the address is skipped.
    post(
        &app,
        "/api/postback",
        json!({"event": "registration", "email": bounced, "operatorId": "betano"}),
    )
    .await;
    app.run_due(OffsetDateTime::now_utc() + Duration::hours(25)).await;
    let messages = app.messages(&customer).await;
    let nudge = step(&messages, "betano", "registered-nudge-email");
    assert_eq!(
        (nudge["status"].as_str(), nudge["reason"].as_str()),
        (Some("SKIPPED"), Some("suppressed")),
        "{nudge}"
    );
    assert_eq!(emails_to(&bounced).len(), 1);

    let complained = format!("{}@example.com", unique("complaint"));
    let (customer, welcome) = welcomed(&app, &complained, "rushbet").await;
    let sample = include_str!("../../events/ses-events/complaint.json");
    ses_notification(&app, sample, &welcome, &complained, "fb-2").await;
    let messages = app.messages(&customer).await;
    assert_eq!(step(&messages, "rushbet", "welcome")["status"], "COMPLAINED");
    let (_, list) = app.admin(&format!("/api/suppressions?address={complained}")).await;
    assert_eq!(list["items"][0]["reason"], "complained", "{list}");
    assert!(metric_written("EmailComplaints", "AddressesSuppressed", "1"));

    // Transient bounces: counted once per notification; the third in a week suppresses.
    let full = format!("{}@example.com", unique("full"));
    let (_, welcome) = welcomed(&app, &full, "rushbet").await;
    let sample = include_str!("../../events/ses-events/transient-bounce.json");
    for (i, feedback) in ["t1", "t1", "t2"].iter().enumerate() {
        ses_notification(&app, sample, &welcome, &full, feedback).await;
        let (_, list) = app.admin(&format!("/api/suppressions?address={full}")).await;
        assert!(
            list["items"].as_array().unwrap().is_empty(),
            "after {} notifications: {list}",
            i + 1
        );
    }
    ses_notification(&app, sample, &welcome, &full, "t3").await;
    let (_, list) = app.admin(&format!("/api/suppressions?address={full}")).await;
    assert_eq!(list["items"][0]["source"], "ses_transient_bounces", "{list}");
    let messages = app.messages(welcome["customerId"].as_str().unwrap()).await;
    assert_eq!(
        step(&messages, "rushbet", "welcome")["status"],
        "SENT",
        "a transient bounce leaves the message"
    );
}

/// SES's delivery, reject and rendering-failure events move a sent message forward only:
/// a late or repeated delivery never hides a complaint, and a reject fails the message with
/// SES's reason.
#[tokio::test]
async fn deliveries_rejects_and_rendering_failures_mark_the_message() {
    crm_app::metrics::capture();
    let app = spawn().await;
    let delivery = include_str!("../../events/ses-events/delivery.json");
    let to = format!("{}@example.com", unique("delivered"));
    let (customer, welcome) = welcomed(&app, &to, "rushbet").await;
    for _ in 0..2 {
        ses_notification(&app, delivery, &welcome, &to, "").await;
    }
    let messages = app.messages(&customer).await;
    let marked = step(&messages, "rushbet", "welcome");
    assert_eq!(
        (marked["status"].as_str(), marked["deliveredAt"].as_str()),
        (Some("DELIVERED"), Some("2026-11-22T10:00:02.133Z")),
        "{marked}"
    );
    assert!(metric_written("EmailDeliveries", "EmailDeliveries", "1"));
    let complaint = include_str!("../../events/ses-events/complaint.json");
    ses_notification(&app, complaint, &welcome, &to, "fb-d").await;
    ses_notification(&app, delivery, &welcome, &to, "").await;
    let messages = app.messages(&customer).await;
    assert_eq!(step(&messages, "rushbet", "welcome")["status"], "COMPLAINED");

    for (sample, reason, error) in [
        (
            include_str!("../../events/ses-events/reject.json"),
            "provider_error",
            "SES rejected it: Bad content",
        ),
        (
            include_str!("../../events/ses-events/rendering-failure.json"),
            "render_failed",
            "SES rendering failure: Attribute 'firstName' is not present in the rendering data.",
        ),
    ] {
        let to = format!("{}@example.com", unique("failed"));
        let (customer, welcome) = welcomed(&app, &to, "rushbet").await;
        ses_notification(&app, sample, &welcome, &to, "").await;
        ses_notification(&app, delivery, &welcome, &to, "").await;
        let messages = app.messages(&customer).await;
        let failed = step(&messages, "rushbet", "welcome");
        assert_eq!(
            (
                failed["status"].as_str(),
                failed["reason"].as_str(),
                failed["error"].as_str()
            ),
            (Some("FAILED"), Some(reason), Some(error)),
            "{failed}"
        );
    }
    // Another message's id in the tags: nothing of this customer moves.
    let to = format!("{}@example.com", unique("other"));
    let (customer, mut welcome) = welcomed(&app, &to, "rushbet").await;
    welcome["providerMessageId"] = json!("someone-elses-ses-id");
    ses_notification(&app, delivery, &welcome, &to, "").await;
    let messages = app.messages(&customer).await;
    assert_eq!(step(&messages, "rushbet", "welcome")["status"], "SENT");
}

/// Every item of the app's table, as text (keys and GSI keys are attributes too).
async fn table_dump(app: &TestApp) -> Vec<String> {
    table_items(app).await.iter().map(|i| format!("{i:?}")).collect()
}

/// Every item of the app's table.
async fn table_items(app: &TestApp) -> Vec<std::collections::HashMap<String, AttributeValue>> {
    let store = &app.state.store;
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let out = store
            .client()
            .scan()
            .table_name(store.table())
            .set_exclusive_start_key(start)
            .send()
            .await
            .unwrap();
        items.extend(out.items.unwrap_or_default());
        start = out.last_evaluated_key;
        if start.is_none() {
            return items;
        }
    }
}

#[tokio::test]
async fn records_messages_and_send_logs_carry_their_kinds_removal_time() {
    let app = spawn_with(&[("RETENTION_DAYS_CLICKS", "30"), ("RETENTION_DAYS_LEADS", "off")]).await;
    let email = format!("{}@example.com", unique("kept"));
    let (customer, _) = welcomed(&app, &email, "rushbet").await;
    let click = unique("KEEP_CLICK");
    post(
        &app,
        "/api/ingest/click",
        json!({"clickId": click, "operatorId": "rushbet"}),
    )
    .await;
    post(
        &app,
        "/api/postback",
        json!({"event": "registration", "clickId": click, "email": email, "operatorId": "rushbet"}),
    )
    .await;
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let items = table_items(&app).await;
    let removal = |entity: &str| -> Vec<Option<i64>> {
        items
            .iter()
            .filter(|i| i.get("entityType").and_then(|v| v.as_s().ok()).map(String::as_str) == Some(entity))
            .map(|i| i.get("removeAt").map(|v| v.as_n().unwrap().parse::<i64>().unwrap()))
            .collect()
    };
    let days = |n: i64| now + n * 86_400;
    let near = |at: &Option<i64>, want: i64| at.is_some_and(|at| (at - want).abs() < 600);
    let clicks = removal("CLICK");
    assert!(
        !clicks.is_empty() && clicks.iter().all(|at| near(at, days(30))),
        "clicks: {clicks:?}"
    );
    let leads = removal("LEAD");
    assert!(
        !leads.is_empty() && leads.iter().all(Option::is_none),
        "leads kept: {leads:?}"
    );
    let events = removal("EVENT");
    assert!(
        !events.is_empty() && events.iter().all(|at| near(at, days(1825))),
        "events: {events:?}"
    );
    let sent: Vec<_> = removal("MESSAGE");
    assert!(sent.iter().any(|at| near(at, days(395))), "the sent welcome: {sent:?}");
    let logs = removal("SEND_LOG");
    assert!(
        !logs.is_empty() && logs.iter().all(|at| near(at, days(32))),
        "send logs: {logs:?}"
    );
    // The profile and its identifiers are kept: erasure, not TTL, removes a person.
    let (_, profile) = app.admin(&format!("/api/customers/{customer}")).await;
    assert_eq!(profile["customerId"], customer.as_str(), "{profile}");
    assert!(removal("CUSTOMER").iter().all(Option::is_none));
}

fn erase_request(customer: &str, actor: Option<&str>) -> Request<axum::body::Body> {
    let mut req = Request::builder()
        .method(Method::DELETE)
        .uri(format!("/api/customers/{customer}"))
        .header(header::AUTHORIZATION, format!("Bearer {}", crm_tests::ADMIN_KEY));
    if let Some(a) = actor {
        req = req.header("x-actor", a);
    }
    req.body(axum::body::Body::empty()).unwrap()
}

#[tokio::test]
async fn erasure_leaves_no_email_or_phone_and_keeps_totals_and_suppression() {
    let app = spawn().await;
    let email = format!("{}@example.com", unique("erase"));
    let phone = phone();
    let name = unique("Zoe");
    let click = unique("ERASE_CLICK");
    // Trackers put whatever they like in sub-ids: a per-person id, even an address.
    let (sub_id, sub_email) = (unique("person"), format!("{}@sub.example", unique("s")));
    post(
        &app,
        "/api/ingest/click",
        json!({"clickId": click, "ip": "203.0.113.9", "userAgent": "Mozilla/5.0", "operatorId": "erasebet",
               "sub1": sub_id, "sub2": sub_email}),
    )
    .await;
    let lead = post(
        &app,
        "/api/ingest/lead",
        json!({"clickId": click, "email": email, "phone": phone, "firstName": name, "lastName": "Pérez", "operatorId": "erasebet", "consent": "yes"}),
    )
    .await;
    let customer = lead["customerId"].as_str().unwrap().to_owned();
    // A second lead adds a device id; a postback adds a user id and revenue.
    let device = unique("dev");
    post(
        &app,
        "/api/ingest/lead",
        json!({"email": email, "deviceId": device, "operatorId": "erasebet"}),
    )
    .await;
    post(&app, "/api/postback", json!({"event": "deposit", "email": email, "userId": unique("u"), "amount": "125.50", "currency": "USD", "operatorId": "erasebet"})).await;
    app.run_due(OffsetDateTime::now_utc()).await;
    assert!(!emails_to(&email).is_empty(), "a message went out first");
    assert!(
        table_dump(&app).await.iter().any(|i| i.contains(&email)),
        "the dump sees the address"
    );
    let (_, stats_before) = app.admin("/api/brands/erasebet").await;
    assert!(
        table_dump(&app)
            .await
            .iter()
            .any(|i| i.contains("STATS#sub1") && i.contains(&sub_id)),
        "a counter row is keyed by the sub-id"
    );

    // Lambda parked notifications it could not handle in a dead-letter queue: a bounce
    // naming the address (in another case), an SMS reply from the number, and someone else's.
    let sqs = aws_sdk_sqs::Client::new(&crm_tests::sdk_config(crm_tests::endpoint()).await);
    let parked = sqs
        .get_queue_url()
        .queue_name(format!("{}-parked", app.state.store.table()))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let bounce = include_str!("../../events/ses-events/permanent-bounce.json");
    let reply = include_str!("../../events/sms-replies/stop.json");
    for body in [
        bounce.replace("bounce@simulator.amazonses.com", &email.to_uppercase()),
        reply.replace("+51987654321", &phone),
        bounce.to_owned(),
    ] {
        sqs.send_message()
            .queue_url(&parked)
            .message_body(body)
            .send()
            .await
            .unwrap();
    }

    let (status, _, erased) = app.send(erase_request(&customer, Some("dpo@example.com"))).await;
    assert_eq!(status, StatusCode::OK, "{erased}");
    assert_eq!(erased["erased"]["parkedNotifications"], 2, "{erased}");
    let left = sqs
        .receive_message()
        .queue_url(&parked)
        .max_number_of_messages(10)
        .send()
        .await
        .unwrap()
        .messages
        .unwrap_or_default();
    assert_eq!(left.len(), 1, "someone else's notification stays, visible at once");
    assert!(left[0].body().unwrap().contains("bounce@simulator.amazonses.com"));
    assert_eq!(erased["erased"]["emails"], 1, "{erased}");
    assert_eq!(erased["erased"]["phones"], 1, "{erased}");
    assert_eq!(erased["erased"]["names"], 1, "{erased}");
    assert!(erased["erased"]["leads"].as_u64().unwrap() >= 2, "{erased}");
    assert_eq!(
        erased["erasedBy"], "ADMIN_API_KEY",
        "the authenticated actor, never X-Actor"
    );

    let dump = table_dump(&app).await;
    let e164 = phone.trim_start_matches('+');
    for needle in [
        email.as_str(),
        e164,
        name.as_str(),
        "Pérez",
        "203.0.113.9",
        device.as_str(),
        sub_id.as_str(),
        sub_email.as_str(),
    ] {
        let found: Vec<&String> = dump.iter().filter(|i| i.contains(needle)).collect();
        assert!(found.is_empty(), "{needle} is still in {found:?}");
    }
    let (_, stats_after) = app.admin("/api/brands/erasebet").await;
    assert_eq!(stats_after, stats_before, "brand totals are kept");
    let (status, _) = app.admin(&format!("/api/customers/{customer}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The same request again answers the same erasure.
    let (status, _, again) = app.send(erase_request(&customer, None)).await;
    assert_eq!(
        (status, &again["erasedAt"]),
        (StatusCode::OK, &erased["erasedAt"]),
        "{again}"
    );

    // A later lead with the same email is a new customer, and stays suppressed.
    let lead = post(
        &app,
        "/api/ingest/lead",
        json!({"email": email, "firstName": "Zoe", "operatorId": "erasebet"}),
    )
    .await;
    let newcomer = lead["customerId"].as_str().unwrap().to_owned();
    assert_ne!(newcomer, customer);
    app.run_due(OffsetDateTime::now_utc()).await;
    let messages = app.messages(&newcomer).await;
    let welcome = step(&messages, "erasebet", "welcome");
    assert_eq!(
        (welcome["status"].as_str(), welcome["reason"].as_str()),
        (Some("SKIPPED"), Some("suppressed")),
        "{welcome}"
    );
    let (_, list) = app.admin(&format!("/api/suppressions?address={email}")).await;
    assert_eq!(list["items"][0]["reason"], "erased", "{list}");
    assert!(list["items"][0].get("address").is_none(), "{list}");
    let (status, _) = app
        .admin_send(Method::DELETE, &format!("/api/suppressions/email/{email}"), json!({}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "an erased person's entry stays");
}

/// Two-way SMS through SNS (`events/sms-replies/`): BAJA suppresses the number's marketing
/// SMS for the brand whose number was texted, ALTA lifts it; a reply to a number of no brand
/// covers every brand; a repeat changes nothing.
#[tokio::test]
async fn sns_delivered_sms_replies_change_the_opt_out_of_the_numbers_brand() {
    let app = spawn().await;
    let deps = crm_sms_replies::Deps {
        store: app.state.store.clone(),
        keys: crm_core::unsubscribe::Keys::derive(crm_tests::UNSUBSCRIBE_SECRET.as_bytes()),
        brands: crm_sms_replies::brands(Some("+12125550101=rushbet")).unwrap(),
    };
    let event = |raw: &str| serde_json::from_str::<aws_lambda_events::sns::SnsEvent>(raw).unwrap();
    let stop = event(include_str!("../../events/sms-replies/stop.json"));
    let start = event(include_str!("../../events/sms-replies/start.json"));
    let scopes = async || {
        let (_, list) = app.admin("/api/suppressions?channel=sms&address=%2B51987654321").await;
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["scope"].clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(crm_sms_replies::handle(&deps, stop.clone()).await.unwrap(), 1);
    assert_eq!(crm_sms_replies::handle(&deps, stop.clone()).await.unwrap(), 1);
    assert_eq!(scopes().await, [json!("rushbet")], "the brand's own number, once");
    crm_sms_replies::handle(&deps, start).await.unwrap();
    assert!(scopes().await.is_empty(), "ALTA lifts it");

    let anywhere = crm_sms_replies::Deps {
        brands: Default::default(),
        ..deps
    };
    crm_sms_replies::handle(&anywhere, stop).await.unwrap();
    assert_eq!(scopes().await, [json!("all")], "a number of no brand: every brand");
    assert!(crm_sms_replies::brands(Some("+1 212=not a brand")).is_err());
}

#[tokio::test]
async fn double_opt_in_mails_one_confirmation_and_no_marketing_until_the_address_is_confirmed() {
    let app = spawn().await;
    let brand = format!("doi{}", crm_tests::rand_digits());
    let (status, body) = app
        .admin_send(
            Method::PUT,
            &format!("/api/brands/{brand}/settings"),
            json!({"emailOptIn": "double", "displayName": "Rush & Bet", "language": "es"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let email = format!("{}@example.com", unique("tina"));
    let lead = post(
        &app,
        "/api/ingest/lead",
        json!({"email": email, "firstName": "Tina", "operatorId": brand}),
    )
    .await;
    let customer = lead["customerId"].as_str().unwrap().to_owned();
    app.run_due(OffsetDateTime::now_utc()).await;
    // Due again (another step, a retry): still one confirmation.
    app.run_due(OffsetDateTime::now_utc() + Duration::hours(25)).await;

    let mails = emails_to(&email);
    assert_eq!(mails.len(), 1, "only the confirmation: {mails:?}");
    assert_eq!(mails[0].subject, "Confirma tu correo para Rush & Bet");
    assert!(mails[0].html.contains("Rush &amp; Bet"), "{}", mails[0].html);
    let welcome = step(&app.messages(&customer).await, &brand, "welcome").clone();
    assert_eq!(
        (welcome["status"].as_str(), welcome["reason"].as_str()),
        (Some("PENDING"), Some("unconfirmed"))
    );
    let url = mails[0]
        .text
        .split_whitespace()
        .find(|w| w.contains("/confirm/"))
        .expect("the confirmation link")
        .to_owned();
    let path = link_path(&url);

    // Following the link (as a mail scanner does) changes nothing; the page names the brand
    // and the masked address, and sends the headers of a careful page.
    let (status, headers, page) = raw_with_headers(&app, Method::GET, &path, "text/plain", "").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(
        page.contains("Rush &amp; Bet") && page.contains(&crm_core::values::mask(&email)) && !page.contains(&email),
        "{page}"
    );
    let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    let profile = app.customer(&customer).await;
    assert!(
        profile["identifiers"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["confirmedAt"].is_null()),
        "{profile}"
    );
    // A forged link is refused.
    let (status, _) = raw(
        &app,
        Method::POST,
        &format!("{path}0"),
        "application/x-www-form-urlencoded",
        "",
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, page) = raw(&app, Method::POST, &path, "application/x-www-form-urlencoded", "").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("confirmado"), "{page}");
    let profile = app.customer(&customer).await;
    let confirmed = profile["identifiers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["value"] == email.as_str())
        .unwrap()
        .clone();
    assert!(confirmed["confirmedAt"].is_string(), "{confirmed}");
    // Confirming wakes the welcome: it goes at once.
    app.run_due(OffsetDateTime::now_utc()).await;
    let mails = emails_to(&email);
    assert_eq!(mails.len(), 2, "{mails:?}");
    assert!(mails[1].subject.contains("Tina"), "{}", mails[1].subject);
    assert_eq!(
        step(&app.messages(&customer).await, &brand, "welcome")["status"],
        "SENT"
    );
}
