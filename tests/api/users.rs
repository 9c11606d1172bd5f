//! People in the admin API: owners manage users and their keys; a key acts with its user's
//! role (an analyst reads, masked, and changes nothing); every change and every read of a
//! profile is in the audit log under the authenticated actor; `ADMIN_API_KEY` stays the
//! break-glass owner.

use axum::body::Body;
use crm_tests::{TestApp, spawn, unique};
use http::{Method, Request, StatusCode, header};
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery staple";

async fn with_key(app: &TestApp, key: &str, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header(header::AUTHORIZATION, format!("Bearer {key}"))
        .header(header::CONTENT_TYPE, "application/json")
        .header("x-actor", "someone-else@example.com")
        .body(body.map_or(Body::empty(), |b| Body::from(b.to_string())))
        .unwrap();
    let (status, _, body) = app.send(req).await;
    (status, body)
}

/// A user of `role` and a key of theirs.
async fn user_with_key(app: &TestApp, role: &str) -> (String, String, String) {
    let email = format!("{}@example.com", unique(role));
    let (status, user) = app
        .admin_send(
            Method::POST,
            "/api/users",
            json!({"email": email, "role": role, "password": PASSWORD}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{user}");
    assert!(user.get("password").is_none() && !user.to_string().contains("argon2"));
    let id = user["id"].as_str().unwrap().to_owned();
    let (status, key) = app
        .admin_send(Method::POST, &format!("/api/users/{id}/keys"), json!({}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{key}");
    (id, email, key["key"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn a_key_acts_with_its_users_role_and_an_analyst_reads_masked() {
    let app = spawn().await;
    let email = format!("{}@example.com", unique("ana"));
    let (_, lead) = app
        .post_json(
            "/api/ingest/lead",
            json!({"email": email, "firstName": "Ana", "brand": "rushbet", "clickId": unique("rt")}),
        )
        .await;
    let customer = lead["customerId"].as_str().unwrap().to_owned();
    let (manager_id, manager, manager_key) = user_with_key(&app, "manager").await;
    let (_, _, analyst_key) = user_with_key(&app, "analyst").await;

    // The manager reads the profile unmasked and changes a setting.
    let (status, profile) = with_key(
        &app,
        &manager_key,
        Method::GET,
        &format!("/api/customers/{customer}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{profile}");
    assert!(profile.to_string().contains(&email));
    let (status, body) = with_key(
        &app,
        &manager_key,
        Method::PUT,
        "/api/brands/rushbet/settings",
        Some(json!({"displayName": "RushBet"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = with_key(&app, &manager_key, Method::GET, "/api/users", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "only owners manage users");

    // The analyst reads the same profile with the person masked, and changes nothing.
    let (status, masked) = with_key(
        &app,
        &analyst_key,
        Method::GET,
        &format!("/api/customers/{customer}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let text = masked.to_string();
    assert!(!text.contains(&email) && !text.contains("\"Ana\""), "{text}");
    assert_eq!(masked["customerId"], customer.as_str());
    let (status, _) = with_key(
        &app,
        &analyst_key,
        Method::PUT,
        "/api/brands/rushbet/settings",
        Some(json!({"displayName": "Hacked"})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = with_key(
        &app,
        &analyst_key,
        Method::GET,
        "/api/exports/leads?includePii=true",
        None,
    )
    .await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (StatusCode::FORBIDDEN, Some("includePii"))
    );
    let (_, settings) = app.admin("/api/brands/rushbet/settings").await;
    assert_eq!(settings["settings"]["displayName"], "RushBet", "{settings}");

    // The audit log names the authenticated actor, whatever X-Actor said.
    let today = time::OffsetDateTime::now_utc().date();
    let (lines, _) = app.state.store.audit_day(today, 100, None).await.unwrap();
    let change = lines
        .iter()
        .find(|l| l.action == "PUT /api/brands/{brand}/settings")
        .expect("the change is audited");
    assert_eq!(change.actor.name, manager);
    assert_eq!(change.actor.user_id.as_deref(), Some(manager_id.as_str()));
    assert!(
        lines
            .iter()
            .any(|l| l.action == "GET /api/customers/{id}" && l.actor.name == manager)
    );
    assert!(!lines.iter().any(|l| l.actor.name.contains("someone-else")));
    assert!(
        !lines.iter().any(|l| l.actor.role == crm_core::access::Role::Analyst),
        "a masked read or a refused change is not a line"
    );
}

#[tokio::test]
async fn keys_and_users_end_and_the_last_owner_stays() {
    let app = spawn().await;
    let (id, _, key) = user_with_key(&app, "manager").await;
    let (status, user) = app.admin(&format!("/api/users/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    let last4 = user["keys"][0]["last4"].as_str().unwrap().to_owned();
    assert_eq!(key[key.len() - 4..], last4);

    let (status, _) = app
        .admin_send(Method::DELETE, &format!("/api/users/{id}/keys/{last4}"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = with_key(&app, &key, Method::GET, "/api/clicks", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a revoked key");

    let (_, _, key2) = user_with_key(&app, "analyst").await;
    let (status, _) = with_key(&app, &key2, Method::GET, "/api/clicks", None).await;
    assert_eq!(status, StatusCode::OK);
    let analyst = app
        .state
        .store
        .users()
        .await
        .unwrap()
        .into_iter()
        .find(|u| u.role == crm_core::access::Role::Analyst)
        .unwrap();
    let (status, _) = app
        .admin_send(
            Method::PUT,
            &format!("/api/users/{}", analyst.user_id),
            json!({"disabled": true}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = with_key(&app, &key2, Method::GET, "/api/clicks", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a disabled user's key");

    let (status, body) = app
        .admin_send(
            Method::POST,
            "/api/users",
            json!({"email": "x@example.com", "role": "boss", "password": PASSWORD}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("role"))
    );
    let (status, body) = app
        .admin_send(
            Method::POST,
            "/api/users",
            json!({"email": "x@example.com", "role": "owner", "password": "short"}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("password"))
    );

    let (status, owner) = app
        .admin_send(
            Method::POST,
            "/api/users",
            json!({"email": unique("o") + "@example.com", "role": "owner", "password": PASSWORD}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = app
        .admin_send(
            Method::DELETE,
            &format!("/api/users/{}", owner["id"].as_str().unwrap()),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
}

#[tokio::test]
async fn an_analyst_finds_no_address_in_a_sub_id_report_or_a_suppression_cursor() {
    let app = spawn().await;
    let email = format!("{}@example.com", unique("victim"));
    app.post_json(
        "/api/ingest/click",
        json!({"clickId": unique("rt"), "brand": "rushbet", "sub1": email}),
    )
    .await;
    app.drain().await;
    for i in 0..2 {
        let (status, _) = app
            .admin_send(
                Method::POST,
                "/api/suppressions",
                json!({"channel": "email", "address": format!("s{i}-{email}")}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let (_, _, analyst) = user_with_key(&app, "analyst").await;
    for path in ["/api/reports?groupBy=sub1", "/api/reports?groupBy=sub1&format=csv"] {
        let req = Request::get(path)
            .header(header::AUTHORIZATION, format!("Bearer {analyst}"))
            .body(Body::empty())
            .unwrap();
        let (status, _, body) = app.send(req).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(!body.to_string().contains(&email), "{path}: {body}");
    }
    let (_, page) = with_key(
        &app,
        &analyst,
        Method::GET,
        "/api/suppressions?channel=email&limit=1",
        None,
    )
    .await;
    let cursor = page["nextCursor"].as_str().expect("a next page");
    let decoded =
        String::from_utf8(base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, cursor).unwrap())
            .unwrap();
    assert!(!decoded.contains(&email), "{decoded}");
    let (status, next) = with_key(
        &app,
        &analyst,
        Method::GET,
        &format!("/api/suppressions?channel=email&limit=1&cursor={cursor}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "the cursor still pages: {next}");
    assert_eq!(next["items"].as_array().unwrap().len(), 1);
}
