//! Twilio retries, races and half-answers: nothing lost, nothing sent or stored twice.

use crate::helpers::{Script, TestApp, new_sid};
use crate::on_both_backends;

on_both_backends! {
    identical_webhooks_at_the_same_instant_are_one_row_and_one_event: Simulator,
    a_lost_answer_is_reconciled_not_resent: FakeTwilio,
    rate_limited_sends_are_retried_after_retry_after: FakeTwilio,
    a_burst_from_one_number_is_paced_and_others_are_not_held_up: FakeTwilioPaced,
    sends_wait_out_an_unreachable_twilio_and_go_once: TwilioDown,
}

async fn sends_wait_out_an_unreachable_twilio_and_go_once(app: TestApp) {
    let alice = app.agent("alice@example.com", &["+15550001000"]).await;
    let fake = app.fake.as_ref().unwrap();
    let conversation = app.conversation(&alice, "+14155550123").await;
    let (status, body) = app.send(&alice, &conversation, "when you can", "c-1").await;
    assert_eq!(status, 202, "accepted while Twilio is unreachable");
    let id = body["message"]["id"].as_str().unwrap().to_owned();
    // A few attempts fail to connect; the message stays pending meanwhile.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(app.message(&alice, &id).await["status"], "pending");
    fake.come_up().await;
    let m = app.wait_status(&alice, &id, "queued").await;
    assert!(m["twilioSid"].is_string());
    assert_eq!(
        fake.sent_count(),
        1,
        "nothing reached Twilio before, once after"
    );
}

async fn a_burst_from_one_number_is_paced_and_others_are_not_held_up(app: TestApp) {
    let alice = app
        .agent("alice@example.com", &["+15550001000", "+15550002000"])
        .await;
    let busy = app.conversation(&alice, "+14155550123").await;
    for i in 0..8 {
        let (status, _) = app
            .send(&alice, &busy, &format!("burst {i}"), &format!("b-{i}"))
            .await;
        assert_eq!(status, 202);
    }
    let (status, body) = app
        .post_json(
            "/api/crm/sms/send",
            Some(&alice),
            serde_json::json!({"to": "+14155550123", "from": "+15550002000", "body": "other number", "clientId": "o-1"}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    app.wait_queue_empty().await;

    let fake = app.fake.as_ref().unwrap();
    let sent = fake.state.sent.lock().unwrap().clone();
    let at = fake.state.sent_at.lock().unwrap().clone();
    assert_eq!(sent.len(), 9, "each message once");
    let burst: Vec<_> = (0..9)
        .filter(|i| sent[*i]["From"] == "+15550001000")
        .map(|i| at[i])
        .collect();
    let other = (0..9).find(|i| sent[*i]["From"] == "+15550002000").unwrap();
    // 5 segments a second: 8 messages span at least 7 intervals of 200 ms.
    let span = *burst.last().unwrap() - burst[0];
    assert!(span >= std::time::Duration::from_millis(1300), "{span:?}");
    assert!(
        at[other] < *burst.last().unwrap(),
        "the other number did not wait behind the burst"
    );
}

async fn identical_webhooks_at_the_same_instant_are_one_row_and_one_event(app: TestApp) {
    let alice = app.agent("alice@example.com", &["+15550001000"]).await;
    let mut socket = app.socket(&alice).await;
    let sid = new_sid();
    let params = [
        ("MessageSid", sid.as_str()),
        ("From", "+14155550123"),
        ("To", "+15550001000"),
        ("Body", "at once"),
    ];
    let posts = (0..10).map(|_| app.post_webhook("/api/crm/sms/webhook", &params));
    for r in futures_util::future::join_all(posts).await {
        assert_eq!(r.status(), 200);
    }
    app.inbound("+14155550123", "+15550001000", "after").await;
    assert_eq!(socket.next("message:new").await["body"], "at once");
    assert_eq!(
        socket.next("message:new").await["body"],
        "after",
        "one event only"
    );
    let (_, list) = app.get("/api/crm/sms/conversations", Some(&alice)).await;
    assert_eq!(list["conversations"][0]["unreadCount"], 2);
}

async fn a_lost_answer_is_reconciled_not_resent(app: TestApp) {
    let alice = app.agent("alice@example.com", &["+15550001000"]).await;
    let fake = app.fake.as_ref().unwrap();
    fake.script(Script::LostAnswer);
    let conversation = app.conversation(&alice, "+14155550123").await;
    let (_, body) = app.send(&alice, &conversation, "exactly once", "c-1").await;
    let id = body["message"]["id"].as_str().unwrap();
    let m = app.wait_status(&alice, id, "sent").await;
    assert!(m["twilioSid"].as_str().unwrap().starts_with("SM"));
    assert_eq!(
        fake.sent_count(),
        1,
        "found in Twilio's list, not sent again"
    );
    assert_eq!(fake.accepted_count(), 1);
}

async fn rate_limited_sends_are_retried_after_retry_after(app: TestApp) {
    let alice = app.agent("alice@example.com", &["+15550001000"]).await;
    let fake = app.fake.as_ref().unwrap();
    fake.script(Script::RateLimited);
    let conversation = app.conversation(&alice, "+14155550123").await;
    let started = std::time::Instant::now();
    let (_, body) = app.send(&alice, &conversation, "patience", "c-1").await;
    let id = body["message"]["id"].as_str().unwrap();
    app.wait_status(&alice, id, "queued").await;
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(1),
        "Retry-After was honoured"
    );
    assert_eq!(fake.sent_count(), 2);
    assert_eq!(fake.accepted_count(), 1);
}
