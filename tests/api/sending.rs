//! Sending: stored before the answer, one Twilio call per clientId, Twilio's refusals,
//! the retry route, and the simulator's magic numbers.

use serde_json::{Value, json};
use smsdesk::api::send::Queued;
use smsdesk::model::Status;
use smsdesk::twilio::TwilioError;

use crate::helpers::{Agent, Script, TestApp, new_sid};
use crate::on_both_backends;

on_both_backends! {
    send_is_stored_pending_then_goes_out_once: FakeTwilio,
    same_client_id_twice_is_one_message_and_one_call: FakeTwilio,
    twilio_21211_fails_the_message_with_its_code: FakeTwilio,
    twilio_21610_fails_and_opts_the_contact_out: FakeTwilio,
    retry_sends_a_failed_message_again_as_a_new_one: FakeTwilio,
    concurrent_retries_of_one_failed_message_send_it_once: FakeTwilio,
    simulator_walks_sent_then_delivered: Simulator,
    simulator_magic_numbers_fail_like_twilio: Simulator,
    send_to_a_new_number_opens_the_conversation: FakeTwilio,
    a_message_counts_the_segments_carriers_charge: FakeTwilio,
    live_mode_has_no_simulator_and_no_localhost_status_callback: FakeTwilio.env_remove("PUBLIC_URL"),
}

async fn live_mode_has_no_simulator_and_no_localhost_status_callback(app: TestApp) {
    let alice = app.agent("alice@example.com", &["+15550001000"]).await;
    let (status, _) = app.get("/dev/status", None).await;
    assert_eq!(status, 404);
    let (status, _) = app
        .post_json(
            "/dev/simulate/inbound",
            Some(&alice),
            json!({"from": "+14155550123", "to": "+15550001000", "body": "x"}),
        )
        .await;
    assert_eq!(status, 404);

    // Twilio rejects a localhost StatusCallback (21609): it is left out.
    let conversation = app.conversation(&alice, "+14155550123").await;
    let (_, body) = app.send(&alice, &conversation, "no callback", "c-1").await;
    app.wait_status(&alice, body["message"]["id"].as_str().unwrap(), "queued")
        .await;
    let sent = app
        .fake
        .as_ref()
        .unwrap()
        .state
        .sent
        .lock()
        .unwrap()
        .clone();
    assert_eq!(sent.len(), 1);
    assert!(!sent[0].contains_key("StatusCallback"), "{:?}", sent[0]);
}

async fn send_is_stored_pending_then_goes_out_once(app: TestApp) {
    let alice = app.agent("alice@example.com", &["+15550001000"]).await;
    let fake = app.fake.as_ref().unwrap();
    let mut socket = app.socket(&alice).await;
    let conversation = app.conversation(&alice, "(415) 555-0123").await;

    let (status, Queued { message }) = app
        .post_json_as(
            "/api/crm/sms/send",
            Some(&alice),
            json!({"conversationId": conversation, "body": "Hello from smsdesk", "clientId": "client-1"}),
        )
        .await;
    assert_eq!(status, 202, "{message:?}");
    assert_eq!(message.status, Status::Pending);
    assert_eq!(message.client_id.as_deref(), Some("client-1"));
    assert_eq!(message.to, "+14155550123");
    assert_eq!(message.from, "+15550001000");
    let id = message.id.to_string();

    assert_eq!(socket.next("message:new").await["id"], id.as_str());
    let accepted = socket
        .next_where("message:status", |s| s["status"] == "queued")
        .await;
    assert_eq!(accepted["id"], id.as_str());
    assert!(accepted["twilioSid"].as_str().unwrap().starts_with("SM"));

    let sent = fake.state.sent.lock().unwrap().clone();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["To"], "+14155550123");
    assert_eq!(sent[0]["From"], "+15550001000");
    assert_eq!(sent[0]["Body"], "Hello from smsdesk");
    assert_eq!(
        sent[0]["StatusCallback"],
        format!("https://smsdesk.test/api/crm/sms/status-webhook?mid={id}")
    );
}

async fn same_client_id_twice_is_one_message_and_one_call(app: TestApp) {
    let alice = app.agent("alice@example.com", &["+15550001000"]).await;
    let fake = app.fake.as_ref().unwrap();
    let conversation = app.conversation(&alice, "+14155550123").await;

    let (first, a) = app.send(&alice, &conversation, "only once", "dup-1").await;
    let (second, b) = app.send(&alice, &conversation, "only once", "dup-1").await;
    assert_eq!((first, second), (202, 200));
    assert_eq!(a["message"]["id"], b["message"]["id"]);
    let id = a["message"]["id"].as_str().unwrap();
    app.wait_status(&alice, id, "queued").await;

    let (status, body) = app
        .send(&alice, &conversation, "something else", "dup-1")
        .await;
    assert_eq!(status, 409);
    assert_eq!(body["error"]["code"], "client_id_reused");
    assert_eq!(fake.sent_count(), 1);

    // Concurrent duplicates race to the database: still one message, one call.
    let sends = (0..8).map(|_| app.send(&alice, &conversation, "raced", "race-1"));
    let results = futures_util::future::join_all(sends).await;
    let created = results.iter().filter(|(s, _)| *s == 202).count();
    assert_eq!(created, 1, "{results:?}");
    assert!(
        results.iter().all(|(s, b)| (*s == 202 || *s == 200)
            && b["message"]["id"] == results[0].1["message"]["id"])
    );
    let id = results[0].1["message"]["id"].as_str().unwrap();
    app.wait_status(&alice, id, "queued").await;
    assert_eq!(fake.sent_count(), 2);
}

async fn twilio_21211_fails_the_message_with_its_code(app: TestApp) {
    let alice = app.agent("alice@example.com", &["+15550001000"]).await;
    let fake = app.fake.as_ref().unwrap();
    fake.script(Script::Error {
        status: 400,
        code: 21211,
        message: "The 'To' number is not a valid phone number.",
    });
    let mut socket = app.socket(&alice).await;
    let conversation = app.conversation(&alice, "+14155550123").await;
    let (status, body) = app.send(&alice, &conversation, "hello?", "c-1").await;
    assert_eq!(status, 202);
    let failed = socket
        .next_where("message:status", |s| s["status"] == "failed")
        .await;
    assert_eq!(failed["id"], body["message"]["id"]);
    assert_eq!(failed["errorCode"], 21211);
    assert!(
        failed["errorMessage"]
            .as_str()
            .unwrap()
            .contains("not a valid phone number")
    );
    assert_eq!(fake.sent_count(), 1, "a permanent error is not retried");
}

async fn twilio_21610_fails_and_opts_the_contact_out(app: TestApp) {
    let alice = app.agent("alice@example.com", &["+15550001000"]).await;
    let fake = app.fake.as_ref().unwrap();
    fake.script(Script::Error {
        status: 400,
        code: 21610,
        message: "Attempt to send to unsubscribed recipient",
    });
    let mut socket = app.socket(&alice).await;
    let conversation = app.conversation(&alice, "+14155550123").await;
    app.send(&alice, &conversation, "hello?", "c-1").await;
    let failed = socket
        .next_where("message:status", |s| s["status"] == "failed")
        .await;
    assert_eq!(failed["errorCode"], 21610);
    // Sending assigned the conversation to alice first; then the opt-out.
    let assigned = socket.next("conversation:updated").await;
    assert_eq!(assigned["assignee"]["id"], alice.id.as_str());
    let updated = socket.next("conversation:updated").await;
    assert_eq!(updated["contact"]["optedOut"], true);
    let (status, _) = app.send(&alice, &conversation, "again?", "c-2").await;
    assert_eq!(status, 409);
    assert_eq!(fake.sent_count(), 1);
}

async fn retry_sends_a_failed_message_again_as_a_new_one(app: TestApp) {
    let alice = app.agent("alice@example.com", &["+15550001000"]).await;
    let fake = app.fake.as_ref().unwrap();
    fake.script(Script::Error {
        status: 400,
        code: 21614,
        message: "not a mobile number",
    });
    let conversation = app.conversation(&alice, "+14155550123").await;
    let (_, body) = app.send(&alice, &conversation, "try me", "c-1").await;
    let failed_id = body["message"]["id"].as_str().unwrap().to_owned();
    app.wait_status(&alice, &failed_id, "failed").await;

    let (status, retried) = app
        .post_json(
            &format!("/api/crm/sms/messages/{failed_id}/retry"),
            Some(&alice),
            json!({"clientId": "c-2"}),
        )
        .await;
    assert_eq!(status, 202, "{retried}");
    let new_id = retried["message"]["id"].as_str().unwrap().to_owned();
    assert_ne!(new_id, failed_id);
    assert_eq!(retried["message"]["body"], "try me");
    app.wait_status(&alice, &new_id, "queued").await;
    assert_eq!(fake.sent_count(), 2);

    let (status, body) = app
        .post_json(
            &format!("/api/crm/sms/messages/{new_id}/retry"),
            Some(&alice),
            json!({"clientId": "c-3"}),
        )
        .await;
    assert_eq!(status, 409);
    assert_eq!(body["error"]["code"], "not_retryable");
}

async fn retry(app: &TestApp, alice: &Agent, id: &str, client_id: String) -> (u16, Value) {
    app.post_json(
        &format!("/api/crm/sms/messages/{id}/retry"),
        Some(alice),
        json!({"clientId": client_id}),
    )
    .await
}

async fn concurrent_retries_of_one_failed_message_send_it_once(app: TestApp) {
    let alice = app.agent("alice@example.com", &["+15550001000"]).await;
    let fake = app.fake.as_ref().unwrap();
    let not_a_mobile = || Script::Error {
        status: 400,
        code: 21614,
        message: "not a mobile number",
    };
    // The message fails, and so does its first retry.
    fake.script(not_a_mobile());
    fake.script(not_a_mobile());
    let conversation = app.conversation(&alice, "+14155550123").await;
    let (_, body) = app.send(&alice, &conversation, "once please", "c-1").await;
    let failed = body["message"]["id"].as_str().unwrap().to_owned();
    app.wait_status(&alice, &failed, "failed").await;

    // Eight tabs retry it at once, each with a clientId of its own.
    let retries = (0..8).map(|i| retry(&app, &alice, &failed, format!("r-{i}")));
    let answers = futures_util::future::join_all(retries).await;
    let statuses: Vec<u16> = answers.iter().map(|(s, _)| *s).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 202).count(),
        1,
        "{answers:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        7,
        "{answers:?}"
    );
    let again = answers[0].1["message"]["id"].as_str().unwrap().to_owned();
    assert!(
        answers
            .iter()
            .all(|(_, b)| b["message"]["id"] == again.as_str()),
        "one new message: {answers:?}"
    );
    assert_ne!(again, failed);
    app.wait_status(&alice, &again, "failed").await;

    // Later retries of the same message, whatever their clientId, give that message back;
    // a clientId that named another message is refused.
    let (status, body) = retry(&app, &alice, &failed, "r-late".into()).await;
    assert_eq!(
        (status, body["message"]["id"].as_str()),
        (200, Some(again.as_str()))
    );
    let (status, body) = retry(&app, &alice, &failed, "c-1".into()).await;
    assert_eq!(
        (status, body["message"]["id"].as_str()),
        (200, Some(again.as_str()))
    );
    let (status, body) = retry(&app, &alice, &again, "c-1".into()).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "client_id_reused");

    // The retry failed too: retrying it is a new message, made once however often it is asked.
    let retries = (0..4).map(|i| retry(&app, &alice, &again, format!("s-{i}")));
    let answers = futures_util::future::join_all(retries).await;
    assert_eq!(
        answers.iter().filter(|(s, _)| *s == 202).count(),
        1,
        "{answers:?}"
    );
    let third = answers[0].1["message"]["id"].as_str().unwrap().to_owned();
    assert!(
        answers
            .iter()
            .all(|(_, b)| b["message"]["id"] == third.as_str())
    );
    app.wait_status(&alice, &third, "queued").await;
    app.wait_queue_empty().await;
    assert_eq!(
        fake.sent_count(),
        3,
        "the message, its retry, the retry's retry"
    );
    let (_, changes) = app.get("/api/crm/sms/sync?since=0", Some(&alice)).await;
    assert_eq!(
        changes["messages"].as_array().unwrap().len(),
        3,
        "{changes}"
    );
}

async fn simulator_walks_sent_then_delivered(app: TestApp) {
    let alice = app.agent("alice@example.com", &["+15550001000"]).await;
    let mut socket = app.socket(&alice).await;
    let conversation = app.conversation(&alice, "+14155550123").await;
    let (_, body) = app
        .send(&alice, &conversation, "through the simulator", "c-1")
        .await;
    let id = body["message"]["id"].as_str().unwrap().to_owned();
    let mut seen = Vec::new();
    loop {
        let s = socket.next("message:status").await;
        assert_eq!(s["id"], id.as_str());
        seen.push(s["status"].as_str().unwrap().to_owned());
        if s["status"] == "delivered" {
            break;
        }
    }
    assert_eq!(seen, ["queued", "sent", "delivered"]);

    // It answers a fetch of the message as Twilio would, and 404 for one it never sent; a
    // sid that is not one is refused before any request.
    let twilio = &app.state.services.twilio;
    let sid = app.message(&alice, &id).await.twilio_sid.unwrap();
    let fetched = twilio.fetch(&sid).await.unwrap();
    assert_eq!((fetched.sid, fetched.status.as_str()), (sid, "delivered"));
    let unknown = twilio.fetch(&new_sid()).await;
    assert!(
        matches!(unknown, Err(TwilioError::Api { status: 404, .. })),
        "{unknown:?}"
    );
    let not_a_sid = twilio.fetch("SM/../../Calls").await;
    assert!(
        matches!(not_a_sid, Err(TwilioError::NotSent(_))),
        "{not_a_sid:?}"
    );

    // The simulator answers the Messages list too.
    let (status, _) = app.get("/dev/status", None).await;
    assert_eq!(status, 200);
}

async fn simulator_magic_numbers_fail_like_twilio(app: TestApp) {
    let alice = app.agent("alice@example.com", &["+15550001000"]).await;
    let invalid = app.conversation(&alice, "+15005550001").await;
    let (_, body) = app.send(&alice, &invalid, "x", "c-1").await;
    let m = app
        .wait_status(&alice, body["message"]["id"].as_str().unwrap(), "failed")
        .await;
    assert_eq!(m.error_code, Some(21211));

    let unreachable = app.conversation(&alice, "+15005550007").await;
    let (_, body) = app.send(&alice, &unreachable, "x", "c-2").await;
    let m = app
        .wait_status(
            &alice,
            body["message"]["id"].as_str().unwrap(),
            "undelivered",
        )
        .await;
    assert_eq!(m.error_code, Some(30003));
    assert!(m.error_message.as_deref().unwrap().contains("unreachable"));

    let unsubscribed = app.conversation(&alice, "+15005550004").await;
    let (_, body) = app.send(&alice, &unsubscribed, "x", "c-3").await;
    app.wait_status(&alice, body["message"]["id"].as_str().unwrap(), "failed")
        .await;
    let (_, c) = app
        .get("/api/crm/sms/conversations?limit=10", Some(&alice))
        .await;
    let opted = c["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == unsubscribed.as_str())
        .unwrap();
    assert_eq!(opted["contact"]["optedOut"], true);
}

async fn send_to_a_new_number_opens_the_conversation(app: TestApp) {
    let alice = app
        .agent("alice@example.com", &["+15550001000", "+15550001001"])
        .await;
    let (status, body) = app
        .post_json(
            "/api/crm/sms/send",
            Some(&alice),
            json!({"to": "415-555-0123", "from": "+1 555 000 1001", "body": "hi", "clientId": "c-1"}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["message"]["to"], "+14155550123");
    assert_eq!(body["message"]["from"], "+15550001001");
    let (status, body) = app
        .post_json(
            "/api/crm/sms/send",
            Some(&alice),
            json!({"to": "415-555-0123", "from": "+15550009999", "body": "hi", "clientId": "c-2"}),
        )
        .await;
    assert_eq!(status, 422, "a number that is not hers: {body}");
}

/// The rule itself is tested against tests/fixtures/segments.json (src/sms.rs); this is where a
/// message carries its count, which pacing charges.
async fn a_message_counts_the_segments_carriers_charge(app: TestApp) {
    let alice = app.agent("alice@example.com", &["+15550001000"]).await;
    let conversation = app.conversation(&alice, "(415) 555-0123").await;
    // 306 septets, but the € (an escape pair) cannot be split after septet 152: 152 + 153 + 1.
    let body = format!("{}€{}", "a".repeat(152), "a".repeat(152));
    let (status, Queued { message }) = app
        .post_json_as(
            "/api/crm/sms/send",
            Some(&alice),
            json!({"conversationId": conversation, "body": body, "clientId": "c-1"}),
        )
        .await;
    assert_eq!(status, 202, "{message:?}");
    assert_eq!(message.segments, 3);
    assert_eq!(
        app.message(&alice, &message.id.to_string()).await.segments,
        3
    );
}
