//! The messaging admin API: journey definitions and settings validated on save, templates
//! with syntax errors located, previews with SMS segment counts, the seed's test sends.

use crm_tests::mailbox::{emails_to, sms_to};
use crm_tests::{spawn, spawn_with};
use http::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn a_brand_without_a_definition_shows_the_default_and_a_bad_step_is_named() {
    let app = spawn().await;
    let (status, body) = app.admin("/api/brands/rushbet/journey").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["source"], "default");
    assert_eq!(body["definition"]["steps"][0]["id"], "welcome");

    let step = |id: &str, stage: i32, delay: &str, template: Option<&str>| json!({"id": id, "journeyType": "acquisition", "stage": stage, "channel": "email", "delay": delay, "templateId": template});
    for (steps, bad, code) in [
        (
            vec![step("hello", -1, "0", None), step("later", 5, "1h", None)],
            "later",
            "unknown_stage",
        ),
        (vec![step("hello", -1, "soon", None)], "hello", "invalid_step"),
        (
            vec![step("hello", -1, "0", Some("tpl_missing"))],
            "hello",
            "unknown_template",
        ),
    ] {
        let (status, body) = app
            .admin_send(Method::PUT, "/api/brands/rushbet/journey", json!({"steps": steps}))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(
            (body["error"]["step"].as_str(), body["error"]["code"].as_str()),
            (Some(bad), Some(code)),
            "{body}"
        );
    }
    let (status, body) = app
        .admin_send(
            Method::PUT,
            "/api/brands/rushbet/journey",
            json!({"steps": [step("hello", -1, "30m", None)], "advances": []}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, body) = app.admin("/api/brands/rushbet/journey").await;
    assert_eq!(
        (
            body["source"].as_str(),
            body["definition"]["steps"][0]["delay"].as_str()
        ),
        (Some("brand"), Some("30m"))
    );
}

#[tokio::test]
async fn templates_are_validated_listed_replaced_and_deleted() {
    let app = spawn().await;
    let template = |body: &str| {
        json!({"name": "Nudge", "brand": "rushbet", "journeyType": "acquisition", "stage": 0, "channel": "email",
               "language": "es", "subject": "Hola {firstName}", "body": body})
    };
    let (status, body) = app
        .admin_send(
            Method::POST,
            "/api/templates",
            template("<p>Hola</p>\n<p>{{ firstName </p>"),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["field"], "body");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("line 2, column 7"),
        "{body}"
    );
    let (status, body) = app
        .admin_send(
            Method::POST,
            "/api/templates",
            template("{% for i in (1..1000000) %}x{% endfor %}"),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "loops are not part of the language: {body}"
    );

    let (status, created) = app
        .admin_send(Method::POST, "/api/templates", template("<p>Hola {firstName}</p>"))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["templateId"].as_str().unwrap();
    let (_, list) = app.admin("/api/templates?brand=rushbet&channel=email").await;
    let ids: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["templateId"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&id) && ids.contains(&"builtin-welcome-es"), "{ids:?}");
    assert!(!ids.contains(&"builtin-registered-nudge-sms-en"), "filtered by channel");

    let (status, body) = app
        .admin_send(
            Method::PUT,
            &format!("/api/templates/{id}"),
            template("<p>Buenas {firstName}</p>"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, got) = app.admin(&format!("/api/templates/{id}")).await;
    assert_eq!(got["body"], "<p>Buenas {firstName}</p>");
    let (status, _) = app
        .admin_send(Method::DELETE, "/api/templates/builtin-welcome-en", json!({}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "built-in templates stay");
    let (status, _) = app
        .admin_send(Method::DELETE, &format!("/api/templates/{id}"), json!({}))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = app.admin(&format!("/api/templates/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn preview_renders_for_a_customer_and_counts_sms_segments() {
    let app = spawn().await;
    let (_, lead) = app
        .post_json(
            "/api/ingest/lead",
            json!({"email": "preview@example.com", "firstName": "José", "operatorId": "rushbet"}),
        )
        .await;
    let customer = lead["customerId"].as_str().unwrap();
    let (status, body) = app
        .admin_send(
            Method::POST,
            "/api/templates/preview",
            json!({"customerId": customer, "name": "x", "journeyType": "acquisition", "stage": -1, "channel": "sms",
                   "body": "Hola {firstName}, {{ lastName | default: \"amigo\" }} 🎰"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["body"], "Hola José, amigo 🎰");
    assert_eq!(body["sms"]["encoding"], "UCS-2");
    assert_eq!(body["sms"]["segments"], 1);
    let (status, body) = app
        .admin_send(
            Method::POST,
            "/api/templates/preview",
            json!({"customerId": customer, "templateId": "builtin-welcome-es"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["subject"], "¡Bienvenido, José!");
    assert!(body["text"].as_str().unwrap().contains("Rushbet"));
}

#[tokio::test]
async fn seed_test_sends_go_through_the_real_adapters() {
    let app = spawn().await;
    let to = format!("{}@example.com", uuid::Uuid::new_v4().simple());
    let (status, body) = app
        .admin_send(
            Method::POST,
            "/api/test/send-email",
            json!({"to": to, "subject": "Test Email", "html": "<h1>Hello from CRM!</h1>"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["provider"], "ses");
    let received = emails_to(&to);
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].subject, "Test Email");
    assert!(received[0].text.contains("Hello from CRM!"));

    let (status, body) = app
        .admin_send(
            Method::POST,
            "/api/test/send-sms",
            json!({"to": "+51999888777", "message": "Test SMS from CRM"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["provider"], "sns");
    assert!(sms_to("+51999888777").iter().any(|m| m == "Test SMS from CRM"));

    let (status, body) = app
        .admin_send(
            Method::POST,
            "/api/test/send-email",
            json!({"to": "nope", "subject": "x", "html": "x"}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("to"))
    );
    let (status, _) = app
        .post_json("/api/test/send-sms", json!({"to": "+51999888777", "message": "x"}))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "admin bearer required");
}

#[tokio::test]
async fn test_sends_obey_suppression_line_types_and_enable_real_sending() {
    let app = spawn().await;
    let to = format!("{}@example.com", uuid::Uuid::new_v4().simple());
    let (status, body) = app
        .admin_send(
            Method::POST,
            "/api/suppressions",
            json!({"channel": "email", "address": to, "scope": "rushbet", "reason": "manual"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let send = |brand: Option<&str>| {
        let mut body = json!({"to": to, "subject": "Test Email", "html": "<p>x</p>"});
        if let Some(b) = brand {
            body["brand"] = json!(b);
        }
        body
    };
    // Suppressed for rushbet: refused for rushbet, and when no brand is named.
    for body in [send(Some("rushbet")), send(None)] {
        let (status, answer) = app.admin_send(Method::POST, "/api/test/send-email", body).await;
        assert_eq!(
            (
                status,
                answer["error"]["code"].as_str(),
                answer["error"]["field"].as_str()
            ),
            (StatusCode::BAD_REQUEST, Some("suppressed"), Some("to")),
            "{answer}"
        );
    }
    let (status, answer) = app
        .admin_send(Method::POST, "/api/test/send-email", send(Some("betano")))
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(emails_to(&to).len(), 1);
    // A premium-rate line is never texted, not even as a test.
    let (status, answer) = app
        .admin_send(
            Method::POST,
            "/api/test/send-sms",
            json!({"to": "+449012345678", "message": "x"}),
        )
        .await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("number_type")),
        "{answer}"
    );

    // With real sending off, nothing leaves: the answer says what would have gone.
    let dry = spawn_with(&[("ENABLE_REAL_SENDING", "false")]).await;
    let other = format!("{}@example.com", uuid::Uuid::new_v4().simple());
    let (status, answer) = dry
        .admin_send(
            Method::POST,
            "/api/test/send-email",
            json!({"to": other, "subject": "Test Email", "html": "<p>x</p>"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(
        (answer["status"].as_str(), answer["to"].as_str()),
        (Some("dry_run"), Some(crm_core::values::mask(&other).as_str()))
    );
    assert!(emails_to(&other).is_empty());
}
