//! The local emulator behaves like DynamoDB where this project depends on it (see
//! `infra/emulator.py`): a cancelled transaction undoes exactly its own writes, a repeated
//! ClientRequestToken applies once, and DynamoDB writes do not pile up tracked objects.

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use crm_tests::spawn;
use serde_json::json;

fn key(pk: &str) -> std::collections::HashMap<String, AttributeValue> {
    [("PK", pk), ("SK", "X")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), AttributeValue::S(v.to_owned())))
        .collect()
}

fn add_one(table: &str, pk: &str) -> TransactWriteItem {
    let update = Update::builder()
        .table_name(table)
        .set_key(Some(key(pk)))
        .update_expression("ADD n :one")
        .expression_attribute_values(":one", AttributeValue::N("1".into()))
        .build()
        .unwrap();
    TransactWriteItem::builder().update(update).build()
}

fn put_new(table: &str, pk: &str) -> TransactWriteItem {
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(key(pk)))
        .condition_expression("attribute_not_exists(PK)")
        .build()
        .unwrap();
    TransactWriteItem::builder().put(put).build()
}

async fn counter(app: &crm_tests::TestApp, pk: &str) -> Option<String> {
    let out = app
        .state
        .store
        .client()
        .get_item()
        .table_name(app.state.store.table())
        .set_key(Some(key(pk)))
        .send()
        .await
        .unwrap();
    out.item.and_then(|i| i.get("n").and_then(|n| n.as_n().ok().cloned()))
}

#[tokio::test]
async fn a_cancelled_transaction_undoes_exactly_its_own_writes() {
    let app = spawn().await;
    let (client, table) = (app.state.store.client(), app.state.store.table());
    client
        .transact_write_items()
        .transact_items(add_one(table, "C"))
        .transact_items(put_new(table, "TAKEN"))
        .send()
        .await
        .unwrap();
    client
        .transact_write_items()
        .transact_items(add_one(table, "OTHER"))
        .send()
        .await
        .unwrap();
    // Updates C in place and creates NEW, then fails on TAKEN: both must be undone.
    let cancelled = client
        .transact_write_items()
        .transact_items(add_one(table, "C"))
        .transact_items(put_new(table, "NEW"))
        .transact_items(put_new(table, "TAKEN"))
        .send()
        .await;
    assert!(cancelled.is_err());
    assert_eq!(
        counter(&app, "C").await.as_deref(),
        Some("1"),
        "the in-place update is undone"
    );
    assert_eq!(
        counter(&app, "OTHER").await.as_deref(),
        Some("1"),
        "other items are untouched"
    );
    let new = client
        .get_item()
        .table_name(table)
        .set_key(Some(key("NEW")))
        .send()
        .await
        .unwrap();
    assert!(new.item.is_none(), "the created item is removed");
}

#[tokio::test]
async fn a_repeated_client_request_token_applies_the_transaction_once() {
    let app = spawn().await;
    let (client, table) = (app.state.store.client(), app.state.store.table());
    let token = uuid::Uuid::new_v4().to_string();
    for _ in 0..2 {
        client
            .transact_write_items()
            .transact_items(add_one(table, "T"))
            .client_request_token(&token)
            .send()
            .await
            .unwrap();
    }
    assert_eq!(counter(&app, "T").await.as_deref(), Some("1"));
    let mismatch = client
        .transact_write_items()
        .transact_items(add_one(table, "U"))
        .client_request_token(&token)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        mismatch.into_service_error().meta().code(),
        Some("IdempotentParameterMismatchException")
    );
}

#[tokio::test]
async fn ingests_do_not_grow_the_emulators_tracked_objects() {
    let app = spawn().await;
    // Sent emails and SMS (other tests send them meanwhile) are kept on purpose.
    let stats = || {
        let s = crm_local::emulator_stats(crm_tests::endpoint()).expect("our emulator's stats");
        s["trackedByService"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(service, _)| !["ses", "sesv2", "sns"].contains(&service.as_str()))
            .map(|(_, n)| n.as_u64().unwrap())
            .sum::<u64>()
    };
    app.post_json("/api/ingest/click", json!({"clickId": "WARM"})).await;
    let before = stats();
    for i in 0..30 {
        app.post_json("/api/ingest/click", json!({"clickId": format!("TRACK_{i}")}))
            .await;
        app.post_json(
            "/api/ingest/lead",
            json!({"clickId": format!("TRACK_{i}"), "email": format!("t{i}@example.com")}),
        )
        .await;
    }
    assert_eq!(stats(), before, "60 ingests, hundreds of items");
}
