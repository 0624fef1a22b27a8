//! Statuses that never arrive: a sent message whose status is not final is fetched from
//! Twilio some time after it was sent, a bounded number of times, paced, and the answer is
//! applied by the same rules as a callback; instances sharing a database fetch each message
//! once.

use std::time::Duration;

use serde_json::Value;
use smsdesk::config::{Settings, StatusChecks};
use smsdesk::model::Status;

use crate::helpers::{
    Agent, Backend, FAKE_ACCOUNT, Mode, PUBLIC_URL, TestApp, wait_until, with_database,
};
use crate::on_both_backends;

/// Three checks, the first a second after Twilio took the message; fetches 50 ms apart.
const PACE: Duration = Duration::from_millis(50);

fn quick_checks(settings: &mut Settings) {
    let ms = Duration::from_millis;
    settings.status_checks = StatusChecks {
        after: vec![ms(1000), ms(1400), ms(1800)],
        pace: PACE,
    };
}

on_both_backends! {
    statuses_that_never_arrive_are_fetched_a_bounded_number_of_times: FakeTwilio.settings(quick_checks),
}

const PENDING_CHECKS: &str = "SELECT COUNT(*) FROM status_checks";

/// Sends `body` and waits until Twilio took it: its id and sid.
async fn sent(app: &TestApp, alice: &Agent, conversation: &str, body: &str) -> (String, String) {
    let (status, answer) = app.send(alice, conversation, body, body).await;
    assert_eq!(status, 202, "{answer}");
    let id = answer["message"]["id"].as_str().unwrap().to_owned();
    let m = app.wait_status(alice, &id, "queued").await;
    (id, m.twilio_sid.unwrap())
}

/// Posts the callback Twilio would for the message sent `nth`, to its `StatusCallback`.
async fn callback(app: &TestApp, nth: usize, sid: &str, status: &str) {
    let fake = app.fake.as_ref().unwrap();
    let url: String = fake.state.sent.lock().unwrap()[nth]["StatusCallback"].clone();
    let path = url.trim_start_matches(PUBLIC_URL).to_owned();
    let params = [
        ("MessageSid", sid),
        ("MessageStatus", status),
        ("AccountSid", FAKE_ACCOUNT),
    ];
    assert_eq!(app.post_webhook(&path, &params).await.status(), 200);
}

async fn statuses_that_never_arrive_are_fetched_a_bounded_number_of_times(app: TestApp) {
    let alice = app.agent("alice@example.com", &["+15550001000"]).await;
    let fake = app.fake.as_ref().unwrap();
    let conversation = app.conversation(&alice, "+14155550123").await;
    // Twilio moves them on, but no callback arrives, except for "told".
    fake.set_status("lost", "delivered", None);
    fake.set_status("failed", "undelivered", Some(30003));
    fake.set_status("stuck", "sent", None);
    fake.set_status("told", "delivered", None);
    // An inbound status for an outbound message, and a message Twilio no longer knows.
    fake.set_status("odd", "received", None);
    fake.forget("gone");
    let (lost, lost_sid) = sent(&app, &alice, &conversation, "lost").await;
    let (failed, failed_sid) = sent(&app, &alice, &conversation, "failed").await;
    let (stuck, stuck_sid) = sent(&app, &alice, &conversation, "stuck").await;
    let (told, told_sid) = sent(&app, &alice, &conversation, "told").await;
    callback(&app, 3, &told_sid, "delivered").await;
    let (odd, odd_sid) = sent(&app, &alice, &conversation, "odd").await;
    let (gone, gone_sid) = sent(&app, &alice, &conversation, "gone").await;

    // The page hears of the fetched statuses as of callbacks.
    app.wait_status(&alice, &lost, "delivered").await;
    let m = app.wait_status(&alice, &failed, "undelivered").await;
    assert_eq!(m.error_code, Some(30003));
    assert!(m.error_message.unwrap().contains("unreachable"));

    wait_until("every status check to be done", async || {
        app.scalar(PENDING_CHECKS).await == 0
    })
    .await;
    // Final at the first check: fetched once. Never final: fetched at each of the three
    // checks, then no more. Final by its callback: never fetched. Unknown to Twilio: once.
    for (sid, fetches) in [
        (&lost_sid, 1),
        (&failed_sid, 1),
        (&stuck_sid, 3),
        (&told_sid, 0),
        (&odd_sid, 3),
        (&gone_sid, 1),
    ] {
        assert_eq!(fake.fetch_count(sid), fetches, "{sid}");
    }
    assert_eq!(app.message(&alice, &stuck).await.status, Status::Sent);
    assert_eq!(app.message(&alice, &told).await.status, Status::Delivered);
    assert_eq!(app.message(&alice, &odd).await.status, Status::Queued);
    assert_eq!(app.message(&alice, &gone).await.status, Status::Queued);

    // One fetch at a time, paced: each comes at least PACE after the one before.
    let mut at: Vec<_> = fake
        .state
        .fetched
        .lock()
        .unwrap()
        .iter()
        .map(|(_, t)| *t)
        .collect();
    at.sort();
    for pair in at.windows(2) {
        assert!(pair[1] - pair[0] >= PACE, "{:?}", pair[1] - pair[0]);
    }
}

/// Two instances, one database and one Twilio: every message is fetched once, by one of
/// them, and each instance shows the status the other fetched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_fetch_each_message_once_on_postgres() {
    with_database(Backend::Postgres, async |url| {
        let one_check = |s: &mut Settings| {
            s.status_checks = StatusChecks {
                after: vec![Duration::from_millis(300)],
                pace: Duration::from_millis(5),
            }
        };
        let a = TestApp::builder()
            .mode(Mode::FakeTwilio)
            .settings(one_check)
            .spawn(&url)
            .await;
        let fake = a.fake.as_ref().unwrap();
        *fake.state.fetched_status.lock().unwrap() = Some("delivered");
        let b = TestApp::builder()
            .mode(Mode::FakeTwilio)
            .env("TWILIO_API_BASE", fake.url.clone())
            .settings(one_check)
            .spawn(&url)
            .await;
        let alice = a.agent("alice@example.com", &["+15550001000"]).await;
        let conversation = a.conversation(&alice, "+14155550123").await;
        const SENDS: usize = 16;
        for i in 0..SENDS {
            let through = if i % 2 == 0 { &a } else { &b };
            let (status, body) = through
                .send(&alice, &conversation, &format!("m {i}"), &format!("m-{i}"))
                .await;
            assert_eq!(status, 202, "{body}");
        }
        for app in [&a, &b] {
            wait_until("every message delivered", async || {
                let (_, changes) = app
                    .get("/api/crm/sms/sync?since=0&limit=1000", Some(&alice))
                    .await;
                let messages = changes["messages"].as_array().cloned().unwrap_or_default();
                let delivered = messages.iter().filter(|m| m["status"] == "delivered");
                (delivered.count() == SENDS)
                    .then_some(())
                    .ok_or(Value::from(messages.len()))
            })
            .await;
        }
        wait_until("every status check to be done", async || {
            a.scalar(PENDING_CHECKS).await == 0
        })
        .await;
        let accepted = fake.state.accepted.lock().unwrap().clone();
        assert_eq!(accepted.len(), SENDS);
        for (sid, _) in &accepted {
            assert_eq!(fake.fetch_count(sid), 1, "{sid}");
        }
    })
    .await
}
