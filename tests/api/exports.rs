//! Exports: every record of a period, page by page, masked unless personal data is asked for.

use axum::body::Body;
use crm_tests::{ADMIN_KEY, TestApp, spawn, unique};
use http::{HeaderMap, Request, StatusCode, header};
use serde_json::{Value, json};

async fn export(app: &TestApp, path: &str) -> (StatusCode, HeaderMap, String) {
    let req = Request::get(path)
        .header(header::AUTHORIZATION, format!("Bearer {ADMIN_KEY}"))
        .header("x-actor", "test-suite")
        .body(Body::empty())
        .unwrap();
    let (status, headers, body) = app.send(req).await;
    let text = match body {
        Value::String(s) => s,
        Value::Null => String::new(),
        // A one-line JSONL export parses as JSON.
        other => format!("{other}\n"),
    };
    (status, headers, text)
}

#[tokio::test]
async fn exports_mask_personal_data_unless_asked_and_page_through_every_record() {
    let app = spawn().await;
    let brand = "exportbet";
    let mut emails = Vec::new();
    for i in 0..5 {
        let email = format!("{}@example.com", unique(&format!("exp{i}")));
        let (status, _) = app
            .post_json(
                "/api/ingest/lead",
                json!({"email": email, "phone": crm_tests::phone(), "firstName": "Ana", "brand": brand}),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        emails.push(email);
    }

    let (status, headers, csv) = export(&app, "/api/exports/leads").await;
    assert_eq!(status, StatusCode::OK, "{csv}");
    assert_eq!(headers[header::CONTENT_TYPE], "text/csv; charset=utf-8");
    assert!(
        headers[header::CONTENT_DISPOSITION]
            .to_str()
            .unwrap()
            .starts_with("attachment; filename=\"leads-")
    );
    let lines: Vec<&str> = csv.trim_end().split("\r\n").collect();
    assert_eq!(lines.len(), 6, "a header and five leads: {csv}");
    assert!(lines[0].starts_with("leadId,customerId,brand,at,clickId,email,phone"));
    for email in &emails {
        assert!(!csv.contains(email.as_str()), "masked by default");
    }
    assert!(!csv.contains("Ana,"), "names are masked too");
    assert!(csv.contains("***@example.com"));

    let (_, _, full) = export(&app, "/api/exports/leads?includePii=true").await;
    for email in &emails {
        assert!(full.contains(email.as_str()));
    }

    // Pages of two: 2, 2, 1, each naming the next, together every lead once.
    let mut seen = Vec::new();
    let mut path = "/api/exports/leads?format=jsonl&limit=2".to_owned();
    let mut pages = 0;
    loop {
        let (status, headers, body) = export(&app, &path).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(headers[header::CONTENT_TYPE], "application/x-ndjson");
        pages += 1;
        for line in body.lines() {
            let lead: Value = serde_json::from_str(line).unwrap();
            seen.push(lead["leadId"].as_str().unwrap().to_owned());
        }
        match headers.get("x-next-cursor") {
            Some(c) => path = format!("/api/exports/leads?format=jsonl&limit=2&cursor={}", c.to_str().unwrap()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let mut unique_ids = seen.clone();
    unique_ids.sort();
    unique_ids.dedup();
    assert_eq!((seen.len(), unique_ids.len()), (5, 5), "{seen:?}");

    let (_, _, customers) = export(&app, "/api/exports/customers?format=jsonl&includePii=true").await;
    assert_eq!(customers.lines().count(), 5, "{customers}");
    assert!(customers.contains(emails[0].as_str()));
}

#[tokio::test]
async fn export_parameters_are_checked() {
    let app = spawn().await;
    let (status, _, _) = export(&app, "/api/exports/planets").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    for (query, field) in [
        ("format=xlsx", "format"),
        ("includePii=yes", "includePii"),
        ("limit=0", "limit"),
        ("cursor=nonsense", "cursor"),
        ("from=yesterday", "from"),
    ] {
        let (status, _, body) = export(&app, &format!("/api/exports/clicks?{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["error"]["field"], field, "{query}");
    }
}
