//! Status callbacks: late, twice, out of order, or before the API call returned.

use smsdesk::model::Status;

use crate::helpers::{Script, TestApp};
use crate::on_both_backends;

on_both_backends! {
    out_of_order_and_duplicate_callbacks_keep_the_furthest_status: FakeTwilio,
    callback_before_the_api_response_is_not_lost: FakeTwilio,
    racing_callbacks_end_at_the_furthest_status: FakeTwilio,
    callback_for_an_unknown_sid_is_kept_until_the_sid_is: FakeTwilio,
    statuses_of_the_other_direction_are_ignored: FakeTwilio,
    early_statuses_of_the_other_direction_are_ignored: FakeTwilio,
}

async fn callback(app: &TestApp, mid: &str, sid: &str, status: &str, error: Option<&str>) {
    let mut params = vec![("MessageSid", sid), ("MessageStatus", status)];
    if let Some(code) = error {
        params.push(("ErrorCode", code));
    }
    let r = app
        .post_webhook(&format!("/api/crm/sms/status-webhook?mid={mid}"), &params)
        .await;
    assert_eq!(r.status(), 200, "{status}: {}", r.text().await.unwrap());
}

async fn sent_message(app: &TestApp, agent: &crate::helpers::Agent) -> (String, String) {
    let conversation = app.conversation(agent, "+14155550123").await;
    let (_, body) = app.send(agent, &conversation, "status test", "c-1").await;
    let id = body["message"]["id"].as_str().unwrap().to_owned();
    let m = app.wait_status(agent, &id, "queued").await;
    (id, m.twilio_sid.unwrap())
}

async fn out_of_order_and_duplicate_callbacks_keep_the_furthest_status(app: TestApp) {
    let alice = app.agent("alice@example.com", &["+15550001000"]).await;
    let (id, sid) = sent_message(&app, &alice).await;
    let mut socket = app.socket(&alice).await;

    callback(&app, &id, &sid, "delivered", None).await;
    let pushed = socket.next("message:status").await;
    assert_eq!(pushed["status"], "delivered");
    assert_eq!(pushed["id"], id.as_str());
    for late in [
        "sent",
        "sending",
        "queued",
        "delivered",
        "undelivered",
        "failed",
    ] {
        callback(&app, &id, &sid, late, Some("30003")).await;
    }
    let m = app.message(&alice, &id).await;
    assert_eq!(m.status, Status::Delivered);
    assert_eq!(m.error_code, None);

    // A later push proves no status event was emitted for the stale callbacks.
    app.inbound("+14155550123", "+15550001000", "thanks").await;
    assert_eq!(socket.next("message:new").await["body"], "thanks");
}

async fn callback_before_the_api_response_is_not_lost(app: TestApp) {
    let alice = app.agent("alice@example.com", &["+15550001000"]).await;
    app.fake
        .as_ref()
        .unwrap()
        .script(Script::CallbackFirst("sent"));
    let conversation = app.conversation(&alice, "+14155550123").await;
    let (_, body) = app.send(&alice, &conversation, "early bird", "c-1").await;
    let id = body["message"]["id"].as_str().unwrap();
    let m = app.wait_status(&alice, id, "sent").await;
    assert!(m.twilio_sid.as_deref().unwrap().starts_with("SM"));
    // The API's own "queued" came after "sent" and must not have moved it back.
    app.wait_queue_empty().await;
    assert_eq!(app.message(&alice, id).await.status, Status::Sent);
}

async fn racing_callbacks_end_at_the_furthest_status(app: TestApp) {
    let alice = app.agent("alice@example.com", &["+15550001000"]).await;
    let (id, sid) = sent_message(&app, &alice).await;
    let statuses = ["sending", "sent", "delivered", "sent", "queued", "sending"];
    let posts = statuses.iter().map(|s| callback(&app, &id, &sid, s, None));
    futures_util::future::join_all(posts).await;
    assert_eq!(app.message(&alice, &id).await.status, Status::Delivered);
}

async fn callback_for_an_unknown_sid_is_kept_until_the_sid_is(app: TestApp) {
    let alice = app.agent("alice@example.com", &["+15550001000"]).await;
    // A callback configured on the number in Twilio's console carries no message id of ours.
    let sid = crate::helpers::new_sid();
    let r = app
        .post_webhook(
            "/api/crm/sms/status-webhook",
            &[("MessageSid", &sid), ("MessageStatus", "delivered")],
        )
        .await;
    assert_eq!(r.status(), 200);
    let r = app
        .post_webhook(
            "/api/crm/sms/status-webhook",
            &[
                ("MessageSid", "SMnot-a-sid"),
                ("MessageStatus", "delivered"),
            ],
        )
        .await;
    assert_eq!(r.status(), 400);
    let (status, _) = app.get("/api/crm/sms/conversations", Some(&alice)).await;
    assert_eq!(status, 200);
}

async fn statuses_of_the_other_direction_are_ignored(app: TestApp) {
    let alice = app.agent("alice@example.com", &["+15550001000"]).await;
    let (id, sid) = sent_message(&app, &alice).await;
    callback(&app, &id, &sid, "sent", None).await;
    for inbound_status in ["received", "receiving"] {
        callback(&app, &id, &sid, inbound_status, None).await;
        let r = app
            .post_webhook(
                "/api/crm/sms/status-webhook",
                &[("MessageSid", &sid), ("MessageStatus", inbound_status)],
            )
            .await;
        assert_eq!(r.status(), 200);
    }
    assert_eq!(app.message(&alice, &id).await.status, Status::Sent);
    callback(&app, &id, &sid, "delivered", None).await;
    assert_eq!(app.message(&alice, &id).await.status, Status::Delivered);

    // And an inbound message takes no outbound status.
    let inbound_sid = app.inbound("+14155550123", "+15550001000", "hi").await;
    for outbound_status in ["read", "delivered", "failed", "sent"] {
        let r = app
            .post_webhook(
                "/api/crm/sms/status-webhook",
                &[
                    ("MessageSid", &inbound_sid),
                    ("MessageStatus", outbound_status),
                ],
            )
            .await;
        assert_eq!(r.status(), 200);
    }
    let (_, sync) = app.get("/api/crm/sms/sync?since=0", Some(&alice)).await;
    let inbound = sync["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["twilioSid"] == inbound_sid.as_str())
        .unwrap()
        .clone();
    assert_eq!(inbound["status"], "received", "{inbound}");
}

async fn early_statuses_of_the_other_direction_are_ignored(app: TestApp) {
    let alice = app.agent("alice@example.com", &["+15550001000"]).await;
    let fake = app.fake.as_ref().unwrap();
    let conversation = app.conversation(&alice, "+14155550123").await;
    // Kept for a sid not known yet, then met when the send is recorded.
    fake.script(Script::CallbackFirstWithoutId("received"));
    let (_, body) = app.send(&alice, &conversation, "first", "c-1").await;
    let first = body["message"]["id"].as_str().unwrap().to_owned();
    // The fake answers its scripts in order: the second send must not overtake the first.
    app.wait_status(&alice, &first, "queued").await;
    fake.script(Script::CallbackFirstWithoutId("sent"));
    let (_, body) = app.send(&alice, &conversation, "second", "c-2").await;
    let second = body["message"]["id"].as_str().unwrap().to_owned();
    app.wait_status(&alice, &second, "sent").await;
    app.wait_queue_empty().await;
    assert_eq!(app.message(&alice, &first).await.status, Status::Queued);
}
