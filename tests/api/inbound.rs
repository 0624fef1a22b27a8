//! Inbound webhooks: stored once, pushed to the right agents, opt-out keywords, MMS.

use serde_json::json;
use smsdesk::api::conversations::ConversationPage;
use smsdesk::api::sync::Changes;
use smsdesk::store::NewInbound;
use sqlx::Connection;

use crate::helpers::{FAKE_TOKEN, PUBLIC_URL_WITH_PORT, TestApp, new_sid};
use crate::on_both_backends;

on_both_backends! {
    inbound_reaches_its_agent_and_no_other: Simulator,
    duplicate_message_sid_is_one_row_and_one_event: Simulator,
    a_late_retry_announces_what_a_dead_instance_stored_unannounced: Simulator,
    shared_number_reaches_every_agent_who_has_it: Simulator,
    forged_or_missing_signature_is_403_and_stores_nothing: Simulator,
    stop_opts_out_and_start_opts_back_in: FakeTwilio,
    mms_media_is_kept_and_proxied_with_credentials: FakeTwilio,
    messages_to_an_unassigned_number_wait_for_their_agent: Simulator,
    webhook_get_describes_the_endpoint: Simulator,
    webhook_signed_without_the_public_url_port_is_accepted: FakeTwilio.env("PUBLIC_URL", PUBLIC_URL_WITH_PORT),
    a_nul_in_an_inbound_body_is_stored_replaced: Simulator,
}

async fn a_nul_in_an_inbound_body_is_stored_replaced(app: TestApp) {
    let alice = app.agent("alice@example.com", &["+15550001000"]).await;
    // PostgreSQL's TEXT refuses NUL: refusing it would make Twilio retry a 500 forever.
    app.inbound("+14155550123", "+15550001000", "nul\0here\0")
        .await;
    let (_, sync) = app.get("/api/crm/sms/sync?since=0", Some(&alice)).await;
    assert_eq!(sync["messages"][0]["body"], "nul\u{FFFD}here\u{FFFD}");
}

async fn inbound_reaches_its_agent_and_no_other(app: TestApp) {
    let alice = app.agent("alice@example.com", &["+15550001000"]).await;
    let bob = app.agent("bob@example.com", &["+15550002000"]).await;
    let mut alice_socket = app.socket(&alice).await;
    let mut bob_socket = app.socket(&bob).await;

    app.inbound("+14155550123", "+15550001000", "Hi Alice")
        .await;
    let got = alice_socket.next("message:new").await;
    assert_eq!(got["body"], "Hi Alice");
    assert_eq!(got["direction"], "inbound");
    assert_eq!(got["status"], "received");
    assert_eq!(got["from"], "+14155550123");

    // Bob's own message is the first one his socket sees: Alice's never reached him.
    app.inbound("+14155550123", "+15550002000", "Hi Bob").await;
    assert_eq!(bob_socket.next("message:new").await["body"], "Hi Bob");

    let (_, list) = app
        .get_as::<ConversationPage>("/api/crm/sms/conversations", Some(&alice))
        .await;
    assert_eq!(list.conversations.len(), 1);
    assert_eq!(list.next_cursor, None);
    assert_eq!(list.conversations[0].unread_count, 1);
    let last = list.conversations[0].last_message.as_ref().unwrap();
    assert_eq!(last.body, "Hi Alice");
}

async fn duplicate_message_sid_is_one_row_and_one_event(app: TestApp) {
    let alice = app.agent("alice@example.com", &["+15550001000"]).await;
    let mut socket = app.socket(&alice).await;
    let sid = new_sid();
    let params = [
        ("MessageSid", sid.as_str()),
        ("From", "+14155550123"),
        ("To", "+15550001000"),
        ("Body", "once"),
    ];
    for _ in 0..3 {
        let r = app.post_webhook("/api/crm/sms/webhook", &params).await;
        assert_eq!(r.status(), 200);
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/xml")
        );
        assert!(r.text().await.unwrap().contains("<Response/>"));
    }
    app.inbound("+14155550123", "+15550001000", "twice").await;
    assert_eq!(socket.next("message:new").await["body"], "once");
    assert_eq!(socket.next("message:new").await["body"], "twice");

    let (_, sync) = app
        .get_as::<Changes>("/api/crm/sms/sync?since=0", Some(&alice))
        .await;
    let bodies: Vec<_> = sync.messages.iter().map(|m| m.body.as_str()).collect();
    assert_eq!(bodies, ["once", "twice"]);
    assert!(!sync.has_more);
    let (_, list) = app.get("/api/crm/sms/conversations", Some(&alice)).await;
    assert_eq!(list["conversations"][0]["unreadCount"], 2);
}

/// An instance killed between its commit and its `message:new` leaves the message stored and
/// never announced; Twilio, answered `502` by the balancer, retries a while later, and the
/// instance that takes the retry must announce it, or live pages never hear of it.
async fn a_late_retry_announces_what_a_dead_instance_stored_unannounced(app: TestApp) {
    let alice = app.agent("alice@example.com", &["+15550001000"]).await;
    let mut socket = app.socket(&alice).await;
    let sid = new_sid();
    // The dead instance's write: through the store, which announces nothing itself.
    app.store
        .insert_inbound(
            NewInbound {
                twilio_sid: sid.clone(),
                from: "+14155550123".into(),
                to: "+15550001000".into(),
                body: "lost".into(),
                media: Vec::new(),
                segments: 1,
                opt_change: None,
            },
            app.store.inbound_arrival(),
        )
        .await
        .unwrap()
        .expect("stored");
    // Twilio's retry comes a while after: the row is that much older when it does.
    let then = smsdesk::model::now() - chrono::TimeDelta::seconds(30);
    let age = "UPDATE messages SET created_at = $1 WHERE twilio_sid = $2";
    if app.database_url.starts_with("sqlite:") {
        let mut db = sqlx::SqliteConnection::connect(&app.database_url)
            .await
            .unwrap();
        sqlx::query(age)
            .bind(then)
            .bind(&sid)
            .execute(&mut db)
            .await
            .unwrap();
    } else {
        let mut db = sqlx::PgConnection::connect(&app.database_url)
            .await
            .unwrap();
        sqlx::query(age)
            .bind(then)
            .bind(&sid)
            .execute(&mut db)
            .await
            .unwrap();
    }

    let params = [
        ("MessageSid", sid.as_str()),
        ("From", "+14155550123"),
        ("To", "+15550001000"),
        ("Body", "lost"),
    ];
    let r = app.post_webhook("/api/crm/sms/webhook", &params).await;
    assert_eq!(r.status(), 200);
    let announced = socket.next("message:new").await;
    assert_eq!(announced["body"], "lost");
    app.inbound("+14155550123", "+15550001000", "next").await;
    assert_eq!(
        socket.next("message:new").await["body"],
        "next",
        "the retry announced the message once"
    );

    let (_, sync) = app
        .get_as::<Changes>("/api/crm/sms/sync?since=0", Some(&alice))
        .await;
    let stored = &sync.messages[0];
    assert_eq!(sync.messages.len(), 2, "stored once");
    assert_eq!(
        (&announced["id"], &announced["seq"]),
        (&json!(stored.id), &json!(stored.seq)),
        "announced as stored: same id and seq"
    );
    let (_, list) = app.get("/api/crm/sms/conversations", Some(&alice)).await;
    assert_eq!(list["conversations"][0]["unreadCount"], 2);
}

async fn shared_number_reaches_every_agent_who_has_it(app: TestApp) {
    let alice = app.agent("alice@example.com", &["+15550001000"]).await;
    let bob = app
        .agent("bob@example.com", &["+15550001000", "+15550002000"])
        .await;
    let mut a = app.socket(&alice).await;
    let mut b = app.socket(&bob).await;
    app.inbound("+14155550123", "+15550001000", "for the team")
        .await;
    assert_eq!(a.next("message:new").await["body"], "for the team");
    assert_eq!(b.next("message:new").await["body"], "for the team");
}

async fn forged_or_missing_signature_is_403_and_stores_nothing(app: TestApp) {
    let alice = app.agent("alice@example.com", &["+15550001000"]).await;
    let form = [
        ("MessageSid", new_sid()),
        ("From", "+14155550123".to_string()),
        ("To", "+15550001000".to_string()),
        ("Body", "forged".to_string()),
    ];
    let unsigned = app
        .http
        .post(app.url("/api/crm/sms/webhook"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 403);
    let forged = app
        .http
        .post(app.url("/api/crm/sms/webhook"))
        .header("X-Twilio-Signature", "RSOYDt4T1cUTdK1PDd93/VVr8B8=")
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    let body: serde_json::Value = forged.json().await.unwrap();
    assert_eq!(body["error"]["code"], "forbidden");

    // Signed for another URL (replayed to us): refused too.
    let params: Vec<(String, String)> = form
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    let sig = smsdesk::twilio::signature::sign(
        &app.twilio_token,
        &format!("{}/api/crm/sms/status-webhook", app.public_url),
        &params,
    );
    let replayed = app
        .http
        .post(app.url("/api/crm/sms/webhook"))
        .header("X-Twilio-Signature", sig)
        .form(&params)
        .send()
        .await
        .unwrap();
    assert_eq!(replayed.status(), 403);

    let (_, sync) = app.get("/api/crm/sms/sync?since=0", Some(&alice)).await;
    assert_eq!(sync["messages"], json!([]));
}

async fn stop_opts_out_and_start_opts_back_in(app: TestApp) {
    let alice = app.agent("alice@example.com", &["+15550001000"]).await;
    let fake = app.fake.as_ref().unwrap();
    let mut socket = app.socket(&alice).await;

    app.inbound("+14155550123", "+15550001000", "Stop please")
        .await;
    let c = socket.next("conversation:updated").await;
    assert_eq!(
        c["contact"]["optedOut"], false,
        "'Stop please' is not a keyword"
    );
    let conversation = c["id"].as_str().unwrap().to_owned();

    app.inbound("+14155550123", "+15550001000", "  stop ").await;
    let c = socket.next("conversation:updated").await;
    assert_eq!(c["contact"]["optedOut"], true);

    let (status, body) = app
        .send(&alice, &conversation, "are you there?", "c-1")
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "opted_out");
    assert_eq!(fake.sent_count(), 0, "nothing reached Twilio");

    app.inbound("+14155550123", "+15550001000", "START").await;
    let c = socket
        .next_where("conversation:updated", |c| {
            c["contact"]["optedOut"] == false
        })
        .await;
    assert_eq!(c["id"], conversation.as_str());
    let (status, _) = app.send(&alice, &conversation, "welcome back", "c-2").await;
    assert_eq!(status, 202);
}

async fn mms_media_is_kept_and_proxied_with_credentials(app: TestApp) {
    let alice = app.agent("alice@example.com", &["+15550001000"]).await;
    let bob = app.agent("bob@example.com", &["+15550002000"]).await;
    let fake = app.fake.as_ref().unwrap();
    let png = b"\x89PNG\r\n\x1a\nfake image bytes";
    let url0 = fake.media_url("cat.png", "image/png", png);
    let url1 = fake.media_url("doc.pdf", "application/pdf", b"%PDF-1.4");
    let sid = new_sid().replacen("SM", "MM", 1);
    let r = app
        .post_webhook(
            "/api/crm/sms/webhook",
            &[
                ("MessageSid", &sid),
                ("From", "+14155550123"),
                ("To", "+15550001000"),
                ("Body", ""),
                ("NumMedia", "2"),
                ("MediaUrl0", &url0),
                ("MediaContentType0", "image/png"),
                ("MediaUrl1", &url1),
                ("MediaContentType1", "application/pdf"),
            ],
        )
        .await;
    assert_eq!(r.status(), 200);
    let (_, sync) = app.get("/api/crm/sms/sync?since=0", Some(&alice)).await;
    let m = &sync["messages"][0];
    assert_eq!(m["media"].as_array().unwrap().len(), 2);
    assert_eq!(m["media"][1]["contentType"], "application/pdf");
    let id = m["id"].as_str().unwrap();

    let r = app
        .http
        .get(app.url(&format!("/api/crm/sms/messages/{id}/media/0")))
        .bearer_auth(&alice.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/png");
    assert_eq!(r.bytes().await.unwrap().as_ref(), png);

    let (status, _) = app
        .get(&format!("/api/crm/sms/messages/{id}/media/2"), Some(&alice))
        .await;
    assert_eq!(status, 404);
    let (status, _) = app
        .get(&format!("/api/crm/sms/messages/{id}/media/0"), Some(&bob))
        .await;
    assert_eq!(status, 404, "another agent's media is not theirs to see");
}

async fn messages_to_an_unassigned_number_wait_for_their_agent(app: TestApp) {
    app.inbound("+14155550123", "+15550009999", "anyone there?")
        .await;
    let late = app.agent("late@example.com", &["+15550009999"]).await;
    let (_, list) = app.get("/api/crm/sms/conversations", Some(&late)).await;
    assert_eq!(
        list["conversations"][0]["lastMessage"]["body"],
        "anyone there?"
    );
}

async fn webhook_get_describes_the_endpoint(app: TestApp) {
    let (status, body) = app.get("/api/crm/sms/status-webhook", None).await;
    assert_eq!(status, 200);
    assert_eq!(body["success"], true);
    assert_eq!(body["message"], "Twilio Status Callback Webhook Endpoint");
    assert!(body["instructions"].is_array());
    let (status, body) = app.get("/api/crm/sms/webhook", None).await;
    assert_eq!(status, 200);
    assert_eq!(body["success"], true);
}

/// Twilio drops the port of some https callbacks: with `PUBLIC_URL=https://host:8443`, a
/// signature over `https://host/…` is Twilio's too (docs/api.md, "Twilio's webhooks").
async fn webhook_signed_without_the_public_url_port_is_accepted(app: TestApp) {
    let alice = app.agent("alice@example.com", &["+15550001000"]).await;
    assert_eq!(app.public_url, PUBLIC_URL_WITH_PORT);
    let path = "/api/crm/sms/webhook";
    let signed_over = [
        ("https://smsdesk.test", 200),
        ("https://smsdesk.test:8443", 200),
        ("https://smsdesk.test:8444", 403),
        ("https://other.test", 403),
        ("http://smsdesk.test:8443", 403),
    ];
    for (i, (base, want)) in signed_over.iter().enumerate() {
        let params: Vec<(String, String)> = [
            ("MessageSid", new_sid()),
            ("From", "+14155550123".to_owned()),
            ("To", "+15550001000".to_owned()),
            ("Body", format!("message {i}")),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let signature =
            smsdesk::twilio::signature::sign(FAKE_TOKEN, &format!("{base}{path}"), &params);
        let r = app
            .http
            .post(app.url(path))
            .header("X-Twilio-Signature", signature)
            .form(&params)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), *want, "signed over {base}");
    }
    let (_, sync) = app.get("/api/crm/sms/sync?since=0", Some(&alice)).await;
    let bodies: Vec<&str> = sync["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["body"].as_str().unwrap())
        .collect();
    assert_eq!(bodies, ["message 0", "message 1"]);
}
