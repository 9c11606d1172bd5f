//! Journeys and messaging end to end: ingest → table stream → journey function → due index →
//! scheduler → queue → sender → the emulator's SES and SNS (read back from its data.json)
//! or the fake Laaffic server.

use crm_core::message::SendJob;
use crm_messaging::sender::{Delivered, deliver};
use crm_tests::laaffic::{Answer, FakeLaaffic};
use crm_tests::mailbox::{emails_to, sms_to};
use crm_tests::{TestApp, rand_digits, spawn, spawn_with, unique};
use http::{Method, StatusCode};
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};

/// A message of the customer by step id.
fn step<'a>(messages: &'a [Value], step_id: &str) -> &'a Value {
    messages
        .iter()
        .find(|m| m["stepId"] == step_id)
        .unwrap_or_else(|| panic!("no {step_id} message in {messages:?}"))
}

async fn cron(app: &TestApp) -> Value {
    let (status, body) = app.get("/api/cron/process-messages").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// Seed §1.1 and §1.2 for a fresh click id, email and phone; returns (customer, email).
async fn click_and_lead(app: &TestApp) -> (String, String) {
    let click = unique("TEST_CLICK");
    let email = format!("{}@example.com", unique("juan"));
    let phone = format!("+5199{:07}", rand_digits());
    let (status, body) = app
        .post_json(
            "/api/ingest/click",
            json!({"clickId": click, "ip": "192.168.1.100", "userAgent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64)",
                   "campaign": "test-campaign", "source": "youtube", "medium": "carlos-gaming",
                   "landingPage": "https://rushbet.com/register", "referrer": "https://youtube.com"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let customer = body["customerId"].as_str().unwrap().to_owned();
    let (status, body) = app
        .post_json(
            "/api/ingest/lead",
            json!({"clickId": click, "email": email, "phone": phone, "firstName": "Juan", "lastName": "Pérez", "campaign": "test-campaign"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    (customer, email)
}

async fn deposit(app: &TestApp, email: &str, brand: &str, user: &str) {
    let (status, body) = app
        .post_json(
            "/api/postback",
            json!({"eventType": "deposit", "email": email, "depositAmount": 100, "currency": "USD", "operatorId": brand, "userId": user}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn seed_flow_sends_a_personal_welcome_then_a_thank_you_after_the_deposit() {
    let app = spawn().await;
    let (customer, email) = click_and_lead(&app).await;
    app.drain().await;

    let ticked = cron(&app).await;
    assert_eq!(ticked["enqueued"], 1, "{ticked}");
    app.drain().await;
    let welcome = emails_to(&email);
    assert_eq!(welcome.len(), 1, "one welcome email");
    assert!(welcome[0].subject.contains("Juan"), "{}", welcome[0].subject);
    assert!(welcome[0].html.contains("Juan") && welcome[0].text.contains("Juan"));
    assert_eq!(welcome[0].from, crm_tests::FROM_EMAIL);
    let messages = app.messages(&customer).await;
    let sent = step(&messages, "welcome");
    assert_eq!(
        (sent["status"].as_str(), sent["dryRun"].as_bool()),
        (Some("SENT"), Some(false))
    );
    assert!(sent["providerMessageId"].as_str().is_some_and(|id| !id.is_empty()));
    assert!(sent["body"].as_str().unwrap().contains("Juan"));

    deposit(&app, &email, "rushbet", &unique("rush")).await;
    app.drain().await;
    let ticked = cron(&app).await;
    assert_eq!(ticked["enqueued"], 1, "{ticked}");
    app.drain().await;
    let emails = emails_to(&email);
    assert_eq!(emails.len(), 2, "welcome and thank-you, nothing else");
    assert!(emails[1].subject.contains("Juan") && emails[1].subject.to_lowercase().contains("thank"));
    let messages = app.messages(&customer).await;
    assert_eq!(step(&messages, "deposit-thanks")["status"], "SENT");
    assert_eq!(step(&messages, "deposit-thanks")["brand"], "rushbet");
    // Nothing of acquisition is left to go out.
    assert!(
        messages
            .iter()
            .filter(|m| m["journeyType"] == "acquisition")
            .all(|m| m["status"] == "SENT" || m["status"] == "CANCELLED"),
        "{messages:?}"
    );
}

#[tokio::test]
async fn a_stage_left_before_its_messages_go_is_cancelled_and_one_never_entered_schedules_nothing() {
    let app = spawn().await;
    let (customer, email) = click_and_lead(&app).await;
    app.drain().await;
    assert_eq!(step(&app.messages(&customer).await, "welcome")["status"], "PENDING");
    deposit(&app, &email, "rushbet", &unique("rush")).await;
    app.drain().await;
    let messages = app.messages(&customer).await;
    let welcome = step(&messages, "welcome");
    assert_eq!(
        (welcome["status"].as_str(), welcome["reason"].as_str()),
        (Some("CANCELLED"), Some("brand_assigned"))
    );
    cron(&app).await;
    app.drain().await;
    let emails = emails_to(&email);
    assert_eq!(emails.len(), 1, "only the thank-you");
    assert!(emails[0].subject.to_lowercase().contains("thank"));

    // Click, lead and deposit committed before the journey function ran: the customer is
    // already in retention, so no acquisition message is ever scheduled.
    let (customer, email) = click_and_lead(&app).await;
    deposit(&app, &email, "rushbet", &unique("rush")).await;
    app.drain().await;
    let messages = app.messages(&customer).await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(messages[0]["stepId"], "deposit-thanks");

    // A registration's nudges are cancelled by the deposit that follows, with stage_left.
    let (customer, email) = click_and_lead(&app).await;
    let (status, _) = app
        .post_json(
            "/api/postback",
            json!({"event": "registration", "email": email, "operatorId": "rushbet"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    app.drain().await;
    deposit(&app, &email, "rushbet", &unique("rush")).await;
    app.drain().await;
    let messages = app.messages(&customer).await;
    for nudge in ["registered-nudge-email", "registered-nudge-sms"] {
        let m = step(&messages, nudge);
        assert_eq!(
            (m["status"].as_str(), m["reason"].as_str()),
            (Some("CANCELLED"), Some("stage_left")),
            "{m}"
        );
    }
}

#[tokio::test]
async fn one_customer_gets_each_brands_own_journey_messages() {
    let app = spawn().await;
    let email = format!("{}@example.com", unique("multi"));
    for brand in ["rushbet", "roobet"] {
        let (status, body) = app
            .post_json(
                "/api/ingest/click",
                json!({"clickId": unique("CLK"), "email": email, "operatorId": brand}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    deposit(&app, &email, "rushbet", &unique("rush")).await;
    app.drain().await;
    cron(&app).await;
    app.drain().await;
    let (_, profile) = app.admin(&format!("/api/customers?email={email}")).await;
    let customer = profile["customerId"].as_str().unwrap();
    let messages = app.messages(customer).await;
    let of = |brand: &str| -> Vec<(String, String)> {
        let mut v: Vec<_> = messages
            .iter()
            .filter(|m| m["brand"] == brand)
            .map(|m| {
                (
                    m["stepId"].as_str().unwrap().to_owned(),
                    m["status"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        v.sort();
        v
    };
    assert_eq!(of("roobet"), [("welcome".to_owned(), "SENT".to_owned())]);
    let rushbet = of("rushbet");
    assert!(
        rushbet.contains(&("deposit-thanks".to_owned(), "SENT".to_owned())),
        "{rushbet:?}"
    );
    assert!(
        !rushbet.contains(&("welcome".to_owned(), "SENT".to_owned())),
        "{rushbet:?}"
    );
    let subjects: Vec<String> = emails_to(&email).into_iter().map(|e| e.subject).collect();
    assert_eq!(subjects.len(), 2, "{subjects:?}");
}

#[tokio::test]
async fn a_brands_custom_template_with_seed_placeholders_is_used_and_personalised() {
    let app = spawn().await;
    let (status, created) = app
        .admin_send(
            Method::POST,
            "/api/templates",
            json!({"name": "Rushbet welcome", "brand": "rushbet", "journeyType": "acquisition", "stage": 0,
                   "channel": "email", "language": "en", "subject": "Bienvenido {firstName}",
                   "body": "<p>Hola {firstName}, tu cuenta Rushbet está lista.</p>"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert!(created["templateId"].as_str().unwrap().starts_with("tpl_"));

    let (customer, email) = click_and_lead(&app).await;
    let (status, body) = app
        .post_json(
            "/api/postback",
            json!({"event": "registration", "email": email, "operatorId": "rushbet"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    app.drain().await;
    // The registration nudge email goes 24 h after registering.
    let report = app.tick_at(OffsetDateTime::now_utc() + Duration::hours(25)).await;
    assert!(report.enqueued >= 1, "{report:?}");
    app.drain().await;
    let nudge: Vec<_> = emails_to(&email)
        .into_iter()
        .filter(|e| e.subject.starts_with("Bienvenido"))
        .collect();
    assert_eq!(nudge.len(), 1);
    assert_eq!(nudge[0].subject, "Bienvenido Juan");
    assert!(
        nudge[0].html.contains("Hola Juan, tu cuenta Rushbet está lista."),
        "{}",
        nudge[0].html
    );
    let messages = app.messages(&customer).await;
    assert_eq!(
        step(&messages, "registered-nudge-email")["templateId"],
        created["templateId"]
    );
}

/// The tag names in `html` (`a`, `/p` …), lowercased.
fn tags(html: &str) -> Vec<String> {
    html.split('<')
        .skip(1)
        .map(|t| {
            t.chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '/' || *c == '!')
                .collect::<String>()
                .to_ascii_lowercase()
        })
        .collect()
}

#[tokio::test]
async fn hostile_values_in_every_field_a_template_can_use_arrive_as_text_never_as_markup() {
    let app = spawn().await;
    let brand = format!("b{}", rand_digits());
    let (status, body) = app
        .admin_send(
            Method::PUT,
            &format!("/api/brands/{brand}/settings"),
            json!({"displayName": "Rush & <Bet>"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let every_variable = crm_render::VARIABLES
        .iter()
        .map(|(camel, _)| format!("{{{{ {camel} }}}}"))
        .collect::<Vec<_>>()
        .join("|");
    let (status, created) = app
        .admin_send(
            Method::POST,
            "/api/templates",
            json!({"name": "everything", "brand": brand, "journeyType": "acquisition", "stage": 0,
                   "channel": "email", "language": "en", "subject": "Hi {firstName} {lastName} {clickId} {userId}",
                   "body": format!("<p>{every_variable}</p><p><a href=\"{{{{ unsubscribeUrl }}}}\">bye</a></p>")}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");

    let click = format!("<img/src=x/onerror=alert(1)>{}", unique("c"));
    let email = format!("o'neil&{{x}}{}@example.com", rand_digits());
    let user = format!("<script>alert(1)</script>{}", rand_digits());
    let (status, body) = app.post_json("/api/ingest/click", json!({"clickId": click})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app
        .post_json(
            "/api/ingest/lead",
            json!({"clickId": click, "email": email, "firstName": "<a href=\"https://evil.example/x\">Claim bonus</a>",
                   "lastName": "O'Brien & \"Sons\""}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["warnings"][0]["field"], "firstName", "{body}");
    let (status, body) = app
        .post_json(
            "/api/postback",
            json!({"event": "registration", "email": email, "operatorId": brand, "userId": user}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    app.drain().await;
    app.tick_at(OffsetDateTime::now_utc() + Duration::hours(25)).await;
    app.drain().await;

    let sent: Vec<_> = emails_to(&email)
        .into_iter()
        .filter(|e| e.subject.starts_with("Hi"))
        .collect();
    assert_eq!(sent.len(), 1, "{sent:?}");
    let html = &sent[0].html;
    // Only the template's own tags survive; every link is the template's.
    let tags = tags(html);
    assert!(
        tags.iter().all(|t| ["p", "/p", "a", "/a"].contains(&t.as_str())),
        "{tags:?} in {html}"
    );
    assert_eq!(tags.iter().filter(|t| *t == "a").count(), 1, "{html}");
    assert!(
        !html.contains("evil.example") && !html.contains("<script") && !html.contains("<img"),
        "{html}"
    );
    // What was kept appears as text.
    for kept in [
        "O&#39;Brien &amp; &quot;Sons&quot;".to_owned(),
        "&lt;img/src=x/onerror=alert(1)&gt;".to_owned(),
        "&lt;script&gt;alert(1)&lt;/script&gt;".to_owned(),
        email.replace('&', "&amp;").replace('\'', "&#39;"),
        "Rush &amp; &lt;Bet&gt;".to_owned(),
    ] {
        assert!(html.contains(&kept), "{kept} not in {html}");
    }
    assert!(
        html.contains(&format!("href=\"{}/u/", crm_tests::PUBLIC_BASE_URL)),
        "{html}"
    );
    // The subject is plain text: the values as written, the dropped name absent.
    assert_eq!(sent[0].subject, format!("Hi  O'Brien & \"Sons\" {click} {user}"));
    assert!(
        sent[0].text.contains("O'Brien & \"Sons\"") && sent[0].text.contains(&user),
        "{}",
        sent[0].text
    );
}

#[tokio::test]
async fn an_address_posted_later_with_the_victims_click_id_receives_nothing() {
    let app = spawn().await;
    let click = unique("VICTIM_CLICK");
    let victim = format!("zz.maria.{}@example.com", rand_digits());
    let attacker = format!("aaa{}@attacker.test", rand_digits());
    let (status, body) = app.post_json("/api/ingest/click", json!({"clickId": click})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let customer = body["customerId"].as_str().unwrap().to_owned();
    let (status, body) = app
        .post_json(
            "/api/ingest/lead",
            json!({"clickId": click, "email": victim, "firstName": "María"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    app.drain().await;
    cron(&app).await;
    app.drain().await;
    // Anyone who reads the landing URL posts the same click id with their own address, which
    // sorts first.
    let (status, body) = app
        .post_json("/api/ingest/lead", json!({"clickId": click, "email": attacker}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["customerId"], customer.as_str());
    let (status, body) = app
        .post_json(
            "/api/postback",
            json!({"eventType": "deposit", "clickId": click, "depositAmount": 50, "currency": "USD",
                   "operatorId": "rushbet", "userId": unique("u")}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    app.drain().await;
    cron(&app).await;
    app.drain().await;

    let to_victim = emails_to(&victim);
    assert_eq!(to_victim.len(), 2, "the welcome and the thank-you: {to_victim:?}");
    assert!(to_victim[1].subject.to_lowercase().contains("thank") && to_victim[1].subject.contains("María"));
    assert!(
        emails_to(&attacker).is_empty(),
        "the attacker's address receives nothing"
    );
    let messages = app.messages(&customer).await;
    assert_eq!(step(&messages, "deposit-thanks")["to"], victim.as_str());
    // The profile shows both addresses, where each came from, and which one is primary.
    let profile = app.customer(&customer).await;
    let shown = |value: &str| {
        profile["identifiers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["value"] == value)
            .cloned()
            .unwrap_or_else(|| panic!("{value} not in {profile}"))
    };
    assert_eq!(shown(&victim)["primary"], true);
    assert_eq!(shown(&attacker)["primary"], false);
    assert!(shown(&attacker)["addedAt"].is_string() && shown(&attacker)["confirmedAt"].is_null());

    // Changing the primary is an explicit act, recorded on the timeline; only a listed
    // address can be chosen.
    let path = format!("/api/customers/{customer}/contacts/primary");
    let (status, body) = app
        .admin_send(
            Method::PUT,
            &path,
            json!({"channel": "email", "address": "nobody@example.com"}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("address")),
        "{body}"
    );
    let (status, body) = app
        .admin_send(Method::PUT, &path, json!({"channel": "email", "address": attacker}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, timeline) = app.admin(&format!("/api/customers/{customer}/timeline")).await;
    let change = timeline["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == "contact")
        .unwrap_or_else(|| panic!("no contact change in {timeline}"));
    assert_eq!(
        (
            change["channel"].as_str(),
            change["address"].as_str(),
            change["previous"].as_str()
        ),
        (Some("email"), Some(attacker.as_str()), Some(victim.as_str()))
    );
    assert_eq!(
        app.customer(&customer).await["identifiers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["primary"] == true)
            .unwrap()["value"],
        attacker.as_str()
    );
}

#[tokio::test]
async fn replayed_and_concurrent_postbacks_schedule_nothing_twice() {
    let app = spawn().await;
    let (customer, email) = click_and_lead(&app).await;
    let user = unique("rush");
    let postback = json!({"eventType": "deposit", "email": email, "depositAmount": 100, "currency": "USD",
                          "operatorId": "rushbet", "userId": user, "transactionId": unique("T")});
    let sends = (0..8).map(|_| app.post_json("/api/postback", postback.clone()));
    for (status, body) in futures::future::join_all(sends).await {
        assert!(
            status == StatusCode::OK || status == StatusCode::SERVICE_UNAVAILABLE,
            "{body}"
        );
    }
    app.post_json("/api/postback", postback).await;
    app.drain().await;
    let messages = app.messages(&customer).await;
    let thanks = messages.iter().filter(|m| m["stepId"] == "deposit-thanks").count();
    assert_eq!(thanks, 1, "{messages:?}");
    // The same stream records again (a redelivered batch) change nothing either.
    let before = app.messages(&customer).await.len();
    let mut fresh = app.fresh_stream().await;
    assert!(
        fresh
            .pump(async |e| crm_journey::handle(&app.messaging, e).await)
            .await
            .unwrap()
            > 0
    );
    assert_eq!(app.messages(&customer).await.len(), before);
    cron(&app).await;
    app.drain().await;
    assert_eq!(emails_to(&email).len(), 1, "one thank-you email");
}

#[tokio::test]
async fn two_ticks_at_once_enqueue_each_message_once() {
    let app = spawn().await;
    let mut emails = Vec::new();
    for _ in 0..12 {
        emails.push(click_and_lead(&app).await.1);
    }
    app.drain().await;
    let now = OffsetDateTime::now_utc();
    let (a, b) = tokio::join!(app.tick_at(now), app.tick_at(now));
    assert_eq!(a.enqueued + b.enqueued, 12, "{a:?} {b:?}");
    assert_eq!(a.already_claimed + b.already_claimed, a.due + b.due - 12);
    app.drain().await;
    for email in &emails {
        assert_eq!(emails_to(email).len(), 1);
    }
    assert_eq!(app.tick_at(now).await.enqueued, 0, "nothing left");
}

/// The one queued job of a customer, as the sender would receive it.
async fn queued_job(app: &TestApp, customer: &str) -> SendJob {
    app.tick_at(OffsetDateTime::now_utc()).await;
    let messages = app.messages(customer).await;
    let m = messages
        .iter()
        .find(|m| m["status"] == "QUEUED")
        .expect("a queued message");
    SendJob {
        customer_id: crm_core::values::CustomerId::parse(m["customerId"].as_str().unwrap()).unwrap(),
        message_id: m["messageId"].as_str().unwrap().to_owned(),
    }
}

#[tokio::test]
async fn a_redelivered_job_or_a_second_sender_never_sends_twice() {
    let app = spawn().await;
    let (customer, email) = click_and_lead(&app).await;
    app.drain().await;
    let job = queued_job(&app, &customer).await;
    let now = OffsetDateTime::now_utc();
    let (first, second) = tokio::join!(
        deliver(&app.messaging, &job, "receive-1", now),
        deliver(&app.messaging, &job, "receive-2", now)
    );
    let outcomes = [first.unwrap(), second.unwrap()];
    assert_eq!(
        outcomes.iter().filter(|o| matches!(o, Delivered::Settled(_))).count(),
        1
    );
    assert!(matches!(
        deliver(&app.messaging, &job, "receive-3", now).await.unwrap(),
        Delivered::NotMine
    ));
    app.drain().await; // the queued copy of the job, delivered again
    assert_eq!(emails_to(&email).len(), 1);
}

#[tokio::test]
async fn a_sender_killed_after_its_claim_leaves_a_failed_message_never_a_second_send() {
    let app = spawn().await;
    let (customer, email) = click_and_lead(&app).await;
    app.drain().await;
    let job = queued_job(&app, &customer).await;
    let now = OffsetDateTime::now_utc();
    // The claim lands, then the sender dies before calling the provider. Its redelivered
    // job (another receive) finds the message SENDING and leaves it.
    let claimed_again = |claim: &'static str| deliver(&app.messaging, &job, claim, now);
    let claimed = app
        .state
        .store
        .claim_message(
            &job.customer_id,
            &job.message_id,
            "receive-1",
            now + crm_messaging::sender::SEND_LEASE,
            now,
        )
        .await
        .unwrap();
    assert!(claimed.is_some());
    // The same receive claiming again (an SDK retry whose first answer was lost) still has it.
    let retried = app
        .state
        .store
        .claim_message(
            &job.customer_id,
            &job.message_id,
            "receive-1",
            now + crm_messaging::sender::SEND_LEASE,
            now,
        )
        .await
        .unwrap();
    assert!(retried.is_some());
    assert!(matches!(claimed_again("receive-2").await.unwrap(), Delivered::NotMine));
    let report = app.tick_at(now + Duration::minutes(3)).await;
    assert_eq!(report.interrupted, 1, "{report:?}");
    let messages = app.messages(&customer).await;
    let m = step(&messages, "welcome");
    assert_eq!(
        (m["status"].as_str(), m["reason"].as_str()),
        (Some("FAILED"), Some("send_interrupted"))
    );
    app.drain().await;
    assert!(matches!(claimed_again("receive-3").await.unwrap(), Delivered::NotMine));
    assert!(emails_to(&email).is_empty());
}

#[tokio::test]
async fn dry_run_renders_and_records_but_sends_nothing() {
    let app = spawn_with(&[("ENABLE_REAL_SENDING", "false")]).await;
    let (customer, email) = click_and_lead(&app).await;
    app.drain().await;
    cron(&app).await;
    app.drain().await;
    let messages = app.messages(&customer).await;
    let m = step(&messages, "welcome");
    assert_eq!(
        (m["status"].as_str(), m["dryRun"].as_bool()),
        (Some("SENT"), Some(true))
    );
    assert!(m["body"].as_str().unwrap().contains("Juan"));
    assert!(m.get("providerMessageId").is_none());
    assert!(emails_to(&email).is_empty());
}

/// A customer registered with `brand` whose SMS nudge (48 h after registering) is due.
async fn registered_with_phone(app: &TestApp, brand: &str, phone: &str) -> String {
    let email = format!("{}@example.com", unique("sms"));
    let (status, body) = app
        .post_json(
            "/api/ingest/lead",
            json!({"email": email, "phone": phone, "firstName": "Ana", "operatorId": brand}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app
        .post_json(
            "/api/postback",
            json!({"event": "registration", "email": email, "operatorId": brand}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    app.drain().await;
    body["customerId"].as_str().unwrap().to_owned()
}

fn vars(fake: &FakeLaaffic) -> Vec<(&'static str, String)> {
    fake.vars()
}

#[tokio::test]
async fn sms_goes_through_sns_by_default_and_laaffic_when_the_brand_says_so() {
    let fake = FakeLaaffic::start(Answer::Sent).await;
    let owned = vars(&fake);
    let refs: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let app = spawn_with(&refs).await;
    let (status, body) = app
        .admin_send(
            Method::PUT,
            "/api/brands/luckybet/settings",
            json!({"smsProvider": "laaffic", "laafficSenderId": "LUCKY"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let sns_phone = format!("+5199{:07}", rand_digits());
    let laaffic_phone = format!("+5198{:07}", rand_digits());
    registered_with_phone(&app, "rushbet", &sns_phone).await;
    let customer = registered_with_phone(&app, "luckybet", &laaffic_phone).await;
    app.tick_at(OffsetDateTime::now_utc() + Duration::hours(49)).await;
    app.drain().await;

    let sns = sms_to(&sns_phone);
    assert_eq!(sns.len(), 1, "{sns:?}");
    assert!(sns[0].contains("Ana") && sns[0].contains("Rushbet"), "{}", sns[0]);
    let received = fake.received();
    assert_eq!(received.len(), 1);
    assert!(received[0].problems.is_empty(), "{:?}", received[0].problems);
    assert_eq!(received[0].body["numbers"], laaffic_phone.trim_start_matches('+'));
    assert_eq!(received[0].body["senderId"], "LUCKY");
    assert!(received[0].body["content"].as_str().unwrap().contains("Ana"));
    let messages = app.messages(&customer).await;
    let m = step(&messages, "registered-nudge-sms");
    assert_eq!(m["status"], "SENT");
    assert_eq!(m["provider"], "laaffic");
    assert_eq!(
        m["providerMessageId"],
        format!("laaffic-{}", m["messageId"].as_str().unwrap())
    );
}

#[tokio::test]
async fn sms_pumping_finds_nothing_to_pump_premium_lines_other_countries_and_past_the_budget() {
    let app = spawn().await;
    let brand = format!("pump{}", rand_digits());
    let (status, body) = app
        .admin_send(
            Method::PUT,
            &format!("/api/brands/{brand}/settings"),
            json!({"smsCountries": ["PE", "MX"], "dailyBudget": {"sms": 1}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["settings"]["dailyBudget"]["sms"], 1, "{body}");
    let premium = format!("+44909{:07}", rand_digits());
    let far_away = format!("+447400{:06}", rand_digits() % 1_000_000);
    let (first, second) = (
        format!("+5199{:07}", rand_digits()),
        format!("+5198{:07}", rand_digits()),
    );
    let mut customers = Vec::new();
    for phone in [&premium, &far_away, &first, &second] {
        customers.push(registered_with_phone(&app, &brand, phone).await);
    }
    let report = app.tick_at(OffsetDateTime::now_utc() + Duration::hours(49)).await;
    assert!(report.enqueued >= 4, "{report:?}");
    app.drain().await;

    let nudge = |i: usize| {
        let customer = customers[i].clone();
        let app = &app;
        async move { step(&app.messages(&customer).await, "registered-nudge-sms").clone() }
    };
    let m = nudge(0).await;
    assert_eq!(
        (m["status"].as_str(), m["reason"].as_str()),
        (Some("SKIPPED"), Some("number_type")),
        "{m}"
    );
    let m = nudge(1).await;
    assert_eq!(
        (m["status"].as_str(), m["reason"].as_str()),
        (Some("SKIPPED"), Some("country_not_allowed")),
        "{m}"
    );
    let (a, b) = (nudge(2).await, nudge(3).await);
    let mut statuses = [
        (
            a["status"].as_str().unwrap().to_owned(),
            a["reason"].as_str().map(str::to_owned),
        ),
        (
            b["status"].as_str().unwrap().to_owned(),
            b["reason"].as_str().map(str::to_owned),
        ),
    ];
    statuses.sort();
    assert_eq!(
        statuses,
        [
            ("PENDING".to_owned(), Some("budget".to_owned())),
            ("SENT".to_owned(), None)
        ],
        "one within the budget, the other deferred to the next day"
    );
    let deferred = if a["status"] == "PENDING" { &a } else { &b };
    // The sender ran at the real time: deferred to the next UTC midnight, spread by minutes.
    let due = OffsetDateTime::parse(
        deferred["dueAt"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let midnight = OffsetDateTime::now_utc()
        .date()
        .next_day()
        .unwrap()
        .midnight()
        .assume_utc();
    assert!(due >= midnight && due < midnight + Duration::minutes(10), "{deferred}");
    assert!(sms_to(&premium).is_empty() && sms_to(&far_away).is_empty());
    assert_eq!(sms_to(&first).len() + sms_to(&second).len(), 1);
    // On call, the budget alarm's first look: today's messages held by the budget.
    let (status, held) = app.admin("/api/messages?reason=budget").await;
    assert_eq!(status, StatusCode::OK, "{held}");
    let ids: Vec<&str> = held["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["messageId"].as_str())
        .collect();
    assert_eq!(ids, [deferred["messageId"].as_str().unwrap()], "{held}");
    let (status, body) = app.admin("/api/messages?reason=cheap").await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("reason")),
        "{body}"
    );
}

#[tokio::test]
async fn a_burst_of_new_public_addresses_holds_the_welcomes_past_the_brands_hourly_limit() {
    let app = spawn().await;
    let brand = format!("burst{}", rand_digits());
    let (status, body) = app
        .admin_send(
            Method::PUT,
            &format!("/api/brands/{brand}/settings"),
            json!({"newAddressesPerHour": 2}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut customers = Vec::new();
    for _ in 0..3 {
        let email = format!("{}@example.com", unique("flood"));
        let (status, body) = app
            .post_json("/api/ingest/lead", json!({"email": email, "operatorId": brand}))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        customers.push(body["customerId"].as_str().unwrap().to_owned());
    }
    app.drain().await;
    cron(&app).await;
    app.drain().await;
    let mut outcomes = Vec::new();
    for c in &customers {
        let m = step(&app.messages(c).await, "welcome").clone();
        outcomes.push((
            m["status"].as_str().unwrap().to_owned(),
            m["reason"].as_str().map(str::to_owned),
        ));
    }
    outcomes.sort();
    assert_eq!(
        outcomes,
        [
            ("PENDING".to_owned(), Some("velocity".to_owned())),
            ("SENT".to_owned(), None),
            ("SENT".to_owned(), None)
        ]
    );
}

#[tokio::test]
async fn provider_errors_are_retried_then_fail_and_a_timeout_is_never_retried() {
    let fake = FakeLaaffic::start(Answer::ServerError).await;
    let owned = vars(&fake);
    let mut refs: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
    refs.push(("SMS_PROVIDER", "laaffic"));
    let app = spawn_with(&refs).await;
    let customer = registered_with_phone(&app, "rushbet", &format!("+5197{:07}", rand_digits())).await;
    let mut at = OffsetDateTime::now_utc() + Duration::hours(49);
    for attempt in 1..=crm_messaging::sender::MAX_ATTEMPTS {
        app.tick_at(at).await;
        app.drain().await;
        let messages = app.messages(&customer).await;
        let m = step(&messages, "registered-nudge-sms");
        if attempt < crm_messaging::sender::MAX_ATTEMPTS {
            assert_eq!(
                (m["status"].as_str(), m["reason"].as_str()),
                (Some("PENDING"), Some("retrying")),
                "{m}"
            );
            assert_eq!(m["attempts"], attempt);
        } else {
            assert_eq!(
                (m["status"].as_str(), m["reason"].as_str()),
                (Some("FAILED"), Some("provider_error")),
                "{m}"
            );
            assert!(m["error"].as_str().unwrap().contains("500"), "{m}");
        }
        at += Duration::hours(2);
    }
    assert_eq!(fake.received().len() as u32, crm_messaging::sender::MAX_ATTEMPTS);

    // A provider that does not answer in time may have sent: failed, never retried.
    fake.set(Answer::Slow(std::time::Duration::from_secs(3)));
    let customer = registered_with_phone(&app, "rushbet", &format!("+5196{:07}", rand_digits())).await;
    app.tick_at(at).await;
    app.drain().await;
    let messages = app.messages(&customer).await;
    let m = step(&messages, "registered-nudge-sms");
    assert_eq!(
        (m["status"].as_str(), m["reason"].as_str()),
        (Some("FAILED"), Some("provider_timeout")),
        "{m}"
    );
    let calls = fake.received().len();
    app.tick_at(at + Duration::hours(2)).await;
    app.drain().await;
    assert_eq!(fake.received().len(), calls, "not retried");
}

#[tokio::test]
async fn messages_of_a_day_are_listed_newest_first_filtered_by_status_and_paged() {
    let app = spawn().await;
    for _ in 0..3 {
        click_and_lead(&app).await;
    }
    app.drain().await;
    let today = OffsetDateTime::now_utc().date().to_string();
    let (status, all) = app.admin(&format!("/api/messages?day={today}&limit=2")).await;
    assert_eq!(status, StatusCode::OK, "{all}");
    assert_eq!(all["items"].as_array().unwrap().len(), 2);
    let cursor = all["nextCursor"].as_str().expect("a third message").to_owned();
    let (_, rest) = app.admin(&format!("/api/messages?limit=2&cursor={cursor}")).await;
    assert_eq!(rest["items"].as_array().unwrap().len(), 1);
    assert!(rest["nextCursor"].is_null());
    let first = all["items"][0]["createdAt"].as_str().unwrap();
    let second = all["items"][1]["createdAt"].as_str().unwrap();
    assert!(first >= second, "newest first");

    cron(&app).await;
    app.drain().await;
    let (_, sent) = app.admin(&format!("/api/messages?day={today}&status=SENT")).await;
    assert_eq!(sent["items"].as_array().unwrap().len(), 3);
    let (_, pending) = app.admin(&format!("/api/messages?day={today}&status=pending")).await;
    assert_eq!(pending["items"].as_array().unwrap().len(), 0);
    let (status, body) = app.admin("/api/messages?status=LOST").await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("status"))
    );
    // The customer timeline shows messages beside clicks and leads.
    let customer = sent["items"][0]["customerId"].as_str().unwrap();
    let (_, timeline) = app.admin(&format!("/api/customers/{customer}/timeline")).await;
    let types: Vec<&str> = timeline["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["type"].as_str().unwrap())
        .collect();
    assert!(types.contains(&"message") && types.contains(&"click"), "{types:?}");
}

#[tokio::test]
async fn a_depositor_without_a_deposit_for_thirty_days_goes_dormant_and_gets_the_reactivation_email() {
    let app = spawn().await;
    let (customer, email) = click_and_lead(&app).await;
    deposit(&app, &email, "rushbet", &unique("rush")).await;
    app.drain().await;
    let now = OffsetDateTime::now_utc();
    assert_eq!(app.advance_at(now + Duration::days(29)).await.due, 0, "not due yet");

    let report = app.advance_at(now + Duration::days(31)).await;
    assert_eq!((report.due, report.advanced), (1, 1), "{report:?}");
    let profile = app.customer(&customer).await;
    let journey = crm_tests::journey(&profile, "rushbet");
    assert_eq!(
        (journey["type"].as_str(), journey["stage"].as_i64()),
        (Some("retention"), Some(2))
    );
    app.drain().await;
    app.tick_at(now + Duration::days(31)).await;
    app.drain().await;
    let reactivation: Vec<_> = emails_to(&email)
        .into_iter()
        .filter(|e| e.subject.starts_with("We miss you"))
        .collect();
    assert_eq!(reactivation.len(), 1);
    assert!(reactivation[0].subject.contains("Juan"));
    assert_eq!(app.advance_at(now + Duration::days(32)).await.due, 0, "applied once");

    // A deposit after dormancy makes the customer active again, and restarts the timer.
    let event = crm_core::records::EventRecord {
        event_id: unique("ev"),
        customer_id: crm_core::values::CustomerId::parse(&customer).unwrap(),
        brand: "rushbet".into(),
        event_type: "deposit".into(),
        amount: Some("50".into()),
        currency: Some("USD".into()),
        transaction_id: None,
        click_id: None,
        user_id: None,
        occurred_at: None,
        identified_by: Vec::new(),
        attribution: None,
        counted: None,
        source_id: None,
        client_ip: None,
        test: false,
        unlisted_identifiers: Vec::new(),
        counted_rows: Vec::new(),
        voided: None,
        at: now + Duration::days(40),
    };
    let done = crm_messaging::advance::record_deposit(&app.messaging, &event, now + Duration::days(40))
        .await
        .unwrap();
    assert!(done.reactivated && done.timer_moved, "{done:?}");
    let profile = app.customer(&customer).await;
    assert_eq!(crm_tests::journey(&profile, "rushbet")["stage"], 1);
    assert_eq!(app.advance_at(now + Duration::days(65)).await.advanced, 0);
    assert_eq!(app.advance_at(now + Duration::days(71)).await.advanced, 1);
    // Dormant again: the reactivation step of this second entry is scheduled too.
    app.drain().await;
    let reactivations = app
        .messages(&customer)
        .await
        .into_iter()
        .filter(|m| m["stepId"] == "reactivation")
        .count();
    assert_eq!(reactivations, 2);
}

#[tokio::test]
async fn a_merge_keeps_one_welcome_and_sends_it_to_the_survivor() {
    let app = spawn().await;
    let (a, b) = (unique("MERGE_A"), unique("MERGE_B"));
    for click in [&a, &b] {
        let (status, body) = app
            .post_json("/api/ingest/click", json!({"clickId": click, "operatorId": "rushbet"}))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    app.drain().await;
    // Two customers, each with a welcome waiting for an address; the email joins the first,
    // then a lead with the second click and the same email merges them.
    let email = format!("{}@example.com", unique("merged"));
    for lead in [
        json!({"clickId": a, "email": email, "firstName": "Eva"}),
        json!({"clickId": b, "email": email}),
    ] {
        let (status, body) = app.post_json("/api/ingest/lead", lead).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (_, profile) = app.admin(&format!("/api/customers?email={email}")).await;
    assert_eq!(profile["mergedFrom"].as_array().map(Vec::len), Some(1), "{profile}");
    let survivor = profile["customerId"].as_str().unwrap().to_owned();
    app.drain().await;
    let messages = app.messages(&survivor).await;
    let welcomes: Vec<&Value> = messages.iter().filter(|m| m["stepId"] == "welcome").collect();
    assert_eq!(
        welcomes.len(),
        2,
        "both customers' welcomes, listed under the survivor: {messages:?}"
    );
    let live: Vec<&&Value> = welcomes.iter().filter(|m| m["status"] != "CANCELLED").collect();
    assert_eq!(live.len(), 1, "{welcomes:?}");
    assert!(welcomes.iter().any(|m| m["reason"] == "duplicate"));
    cron(&app).await;
    app.drain().await;
    let received = emails_to(&email);
    assert_eq!(received.len(), 1);
    assert!(received[0].subject.contains("Eva"));
}
