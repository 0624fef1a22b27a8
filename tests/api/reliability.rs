//! Twilio retries, races and half-answers: nothing lost, nothing sent or stored twice.

use crate::helpers::{Script, TestApp, new_sid};
use crate::on_both_backends;

on_both_backends! {
    identical_webhooks_at_the_same_instant_are_one_row_and_one_event: Simulator,
    a_lost_answer_is_reconciled_not_resent: FakeTwilio,
    rate_limited_sends_are_retried_after_retry_after: FakeTwilio,
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
