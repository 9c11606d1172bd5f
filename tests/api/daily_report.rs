//! The daily report email, through the emulator's SES.

use crm_tests::mailbox::emails_to;
use crm_tests::{spawn_with, unique};
use serde_json::json;
use time::{Duration, OffsetDateTime};

#[tokio::test]
async fn the_daily_report_emails_yesterdays_totals_once() {
    let recipient = format!("{}@example.com", unique("ops"));
    let app = spawn_with(&[("REPORT_RECIPIENTS", recipient.as_str())]).await;
    let brand = unique("reportbet").to_lowercase();
    let click = unique("rc");
    app.post_json(
        "/api/ingest/click",
        json!({"clickId": click, "brand": brand, "influencerId": "report-inf"}),
    )
    .await;
    app.post_json(
        "/api/postback",
        json!({"event": "deposit", "clickId": click, "operator": brand, "amount": "250.75"}),
    )
    .await;
    app.drain().await;

    // The schedule fires tomorrow morning: "yesterday" is today.
    let tomorrow = OffsetDateTime::now_utc() + Duration::days(1);
    let tick: crm_messaging::Tick =
        serde_json::from_value(json!({"scheduledTime": crm_core::values::format_ts(tomorrow)})).unwrap();
    let deps = crm_daily_report::Deps {
        messaging: app.messaging.clone(),
        reporting: app.state.config.reporting.clone(),
    };
    let first = crm_daily_report::handle(&deps, tick.clone()).await.unwrap();
    let today = OffsetDateTime::now_utc().date().to_string();
    assert_eq!(
        first,
        crm_daily_report::DailyReport::Sent {
            day: today.clone(),
            recipients: 1
        }
    );
    let again = crm_daily_report::handle(&deps, tick).await.unwrap();
    assert_eq!(again, crm_daily_report::DailyReport::AlreadySent { day: today.clone() });

    let mails = emails_to(&recipient);
    assert_eq!(mails.len(), 1, "sent once");
    assert_eq!(mails[0].subject, format!("CRM daily report {today}"));
    assert!(mails[0].text.contains(&brand), "{}", mails[0].text);
    assert!(mails[0].text.contains("250.75 USD"));
    assert!(mails[0].html.contains("report-inf"), "top influencers");
}

#[test]
fn the_sample_tick_is_a_morning_schedule() {
    let tick: crm_messaging::Tick = serde_json::from_str(include_str!("../../events/daily-report/tick.json")).unwrap();
    assert_eq!(tick.scheduled_time.as_deref(), Some("2026-11-22T07:00:00Z"));
}
