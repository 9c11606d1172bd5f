//! The DynamoDB adapter's conditions and retries, directly against the emulator.

use std::time::{Duration as StdDuration, Instant};

use crm_core::plan::{DedupeClaim, DedupeKey, Write};
use crm_core::values::CustomerId;
use crm_store::{CommitError, Store, StoreError};
use crm_tests::spawn;
use time::{Duration, OffsetDateTime};

fn claim(key: &DedupeKey, record: &str, at: OffsetDateTime, expires_at: Option<OffsetDateTime>) -> Write {
    Write::ClaimDedupe(DedupeClaim {
        key: key.clone(),
        record_id: record.into(),
        customer: CustomerId::parse("0192f0c1-7b7e-7cc0-9b1a-3c3f2d6e8a10").unwrap(),
        at,
        expires_at,
    })
}

fn soon() -> Instant {
    Instant::now() + StdDuration::from_secs(5)
}

#[tokio::test]
async fn a_dedupe_claim_holds_until_it_expires_then_can_be_taken_over() {
    let app = spawn().await;
    let store = &app.state.store;
    let t0 = OffsetDateTime::now_utc();
    let window = Duration::hours(24);
    let fp = DedupeKey::Postback("k".into());
    store
        .commit(&[claim(&fp, "first", t0, Some(t0 + window))], soon())
        .await
        .unwrap();

    // Within the window: the condition fails on that write.
    let inside = store
        .commit(
            &[claim(
                &fp,
                "second",
                t0 + Duration::hours(23),
                Some(t0 + Duration::hours(47)),
            )],
            soon(),
        )
        .await;
    assert!(
        matches!(inside, Err(CommitError::Conflict { ref failed }) if failed == &[0]),
        "{inside:?}"
    );
    assert_eq!(store.dedupe_hit(&fp).await.unwrap().unwrap().0, "first");

    // After the window, before TTL deletion has run: the claim is taken over.
    let later = t0 + Duration::hours(25);
    store
        .commit(&[claim(&fp, "third", later, Some(later + window))], soon())
        .await
        .unwrap();
    assert_eq!(store.dedupe_hit(&fp).await.unwrap().unwrap().0, "third");

    // A transaction id claim never expires.
    let txn = DedupeKey::Transaction {
        operator: crm_core::values::Brand::parse("b").unwrap(),
        id: crm_core::values::TransactionId::parse("1").unwrap(),
    };
    store.commit(&[claim(&txn, "tx", t0, None)], soon()).await.unwrap();
    let years_later = store
        .commit(&[claim(&txn, "again", t0 + Duration::days(3650), None)], soon())
        .await;
    assert!(matches!(years_later, Err(CommitError::Conflict { .. })));
}

#[tokio::test]
async fn a_transaction_whose_outcome_is_unknown_is_resent_until_the_deadline() {
    // Nothing listens on this port: every attempt fails before reaching DynamoDB.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = crm_tests::sdk_config(&format!("http://127.0.0.1:{port}"))
        .await
        .into_builder()
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .build();
    let store = Store::from_sdk_config(&config, "unreachable");
    let t0 = OffsetDateTime::now_utc();
    let result = store
        .commit(
            &[claim(&DedupeKey::Lead("x".into()), "r", t0, None)],
            Instant::now() + StdDuration::from_secs(1),
        )
        .await;
    assert!(
        matches!(result, Err(CommitError::Store(StoreError::Unavailable(_)))),
        "{result:?}"
    );
    let sent = store.calls().snapshot()["TransactWriteItems"];
    assert!(
        sent >= 3,
        "one attempt per send (SDK retries off here), sent again and again: {sent}"
    );
}

#[tokio::test]
async fn the_first_deposit_claim_keeps_its_first_event_even_when_delivered_again() {
    let app = spawn().await;
    let store = &app.state.store;
    let customer = CustomerId::parse("0192f0c1-7b7e-7cc0-9b1a-3c3f2d6e8a12").unwrap();
    assert!(store.claim_first_deposit(&customer, "rushbet", "ev_1").await.unwrap());
    assert!(
        !store.claim_first_deposit(&customer, "rushbet", "ev_2").await.unwrap(),
        "same millisecond, second"
    );
    assert!(
        store.claim_first_deposit(&customer, "rushbet", "ev_1").await.unwrap(),
        "redelivered: same answer"
    );
    assert!(
        store.claim_first_deposit(&customer, "betano", "ev_3").await.unwrap(),
        "per brand"
    );
}
