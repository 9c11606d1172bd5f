//! The DynamoDB adapter's conditions, directly against the emulator.

use crm_core::plan::{DedupeClaim, Write};
use crm_core::values::CustomerId;
use crm_platform::store::CommitError;
use crm_tests::spawn;
use time::{Duration, OffsetDateTime};

fn claim(key: &str, record: &str, at: OffsetDateTime, expires_at: Option<OffsetDateTime>) -> Write {
    Write::ClaimDedupe(DedupeClaim {
        key: key.into(),
        record_id: record.into(),
        customer: CustomerId::parse("0192f0c1-7b7e-7cc0-9b1a-3c3f2d6e8a10").unwrap(),
        at,
        expires_at,
    })
}

#[tokio::test]
async fn a_dedupe_claim_holds_until_it_expires_then_can_be_taken_over() {
    let app = spawn().await;
    let store = &app.state.store;
    let t0 = OffsetDateTime::now_utc();
    let window = Duration::hours(24);
    store
        .commit(&[claim("FP#k", "first", t0, Some(t0 + window))])
        .await
        .unwrap();

    // Within the window: the condition fails on that write.
    let inside = store
        .commit(&[claim(
            "FP#k",
            "second",
            t0 + Duration::hours(23),
            Some(t0 + Duration::hours(47)),
        )])
        .await;
    assert!(
        matches!(inside, Err(CommitError::Conflict { ref failed }) if failed == &[0]),
        "{inside:?}"
    );
    assert_eq!(store.dedupe_hit("FP#k").await.unwrap().unwrap().0, "first");

    // After the window, before TTL deletion has run: the claim is taken over.
    let later = t0 + Duration::hours(25);
    store
        .commit(&[claim("FP#k", "third", later, Some(later + window))])
        .await
        .unwrap();
    assert_eq!(store.dedupe_hit("FP#k").await.unwrap().unwrap().0, "third");

    // A transaction id claim never expires.
    store.commit(&[claim("TXN#b#1", "tx", t0, None)]).await.unwrap();
    let years_later = store
        .commit(&[claim("TXN#b#1", "again", t0 + Duration::days(3650), None)])
        .await;
    assert!(matches!(years_later, Err(CommitError::Conflict { .. })));
}
