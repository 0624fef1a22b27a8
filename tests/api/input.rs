//! Bad input gets a clear 4xx in the contract's error shape, never a 500.

use serde_json::{Value, json};

use crate::helpers::{TestApp, new_sid};
use crate::on_both_backends;

on_both_backends! {
    malformed_rest_bodies_are_4xx: Simulator,
    malformed_webhooks_are_4xx: Simulator,
    health_and_readiness: Simulator,
}

fn assert_error(status: u16, body: &Value, expected: u16, code: &str) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

async fn malformed_rest_bodies_are_4xx(app: TestApp) {
    let alice = app.agent("alice@example.com", &["+15550001000"]).await;
    let conversation = app.conversation(&alice, "+14155550123").await;
    let raw = |body: &'static str, content_type: &'static str| {
        app.http
            .post(app.url("/api/crm/sms/send"))
            .bearer_auth(&alice.token)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let (s, b) = crate::helpers::read(raw("{not json", "application/json").await.unwrap()).await;
    assert_error(s, &b, 400, "bad_request");
    let (s, b) = crate::helpers::read(
        raw("body=hi", "application/x-www-form-urlencoded")
            .await
            .unwrap(),
    )
    .await;
    assert_error(s, &b, 415, "unsupported_media_type");
    let (s, b) = crate::helpers::read(raw("[1,2,3]", "application/json").await.unwrap()).await;
    assert_error(s, &b, 422, "invalid_field");
    let (s, b) = crate::helpers::read(
        raw(
            "{\"conversationId\": {\"x\": 1}, \"body\": 5, \"clientId\": []}",
            "application/json",
        )
        .await
        .unwrap(),
    )
    .await;
    assert_error(s, &b, 422, "invalid_field");

    let (s, b) = app.send(&alice, &conversation, "", "c-1").await;
    assert_error(s, &b, 422, "invalid_field");
    let (s, b) = app
        .send(&alice, &conversation, &"x".repeat(1601), "c-1")
        .await;
    assert_error(s, &b, 422, "invalid_field");
    assert!(b["error"]["message"].as_str().unwrap().contains("body"));
    let (s, b) = app.send(&alice, &conversation, "ok", "").await;
    assert_error(s, &b, 422, "invalid_field");
    let (s, b) = app.send(&alice, &conversation, "ok", "<script>").await;
    assert_error(s, &b, 422, "invalid_field");
    let (s, b) = app
        .post_json(
            "/api/crm/sms/send",
            Some(&alice),
            json!({"body": "x", "clientId": "c"}),
        )
        .await;
    assert_error(s, &b, 422, "invalid_field");
    let (s, b) = app
        .post_json(
            "/api/crm/sms/conversations",
            Some(&alice),
            json!({"phone": "not a number"}),
        )
        .await;
    assert_error(s, &b, 422, "invalid_field");
    assert!(b["error"]["message"].as_str().unwrap().contains("phone"));

    let huge = "x".repeat(300 * 1024);
    let r = app
        .http
        .post(app.url("/api/crm/sms/send"))
        .bearer_auth(&alice.token)
        .json(&json!({"conversationId": conversation, "body": huge, "clientId": "c-9"}))
        .send()
        .await
        .unwrap();
    let (s, b) = crate::helpers::read(r).await;
    assert_error(s, &b, 413, "payload_too_large");

    for path in [
        "/api/crm/sms/conversations/abc/messages",
        "/api/crm/sms/conversations/99999999/messages",
        "/api/crm/sms/conversations/-1/messages",
        "/api/crm/sms/conversations/99999999999999999999999/messages",
    ] {
        let (s, b) = app.get(path, Some(&alice)).await;
        assert_error(s, &b, 404, "not_found");
    }
    for query in [
        "limit=0",
        "limit=abc",
        "limit=100000",
        "cursor=-5",
        "cursor=x",
    ] {
        let (s, b) = app
            .get(&format!("/api/crm/sms/conversations?{query}"), Some(&alice))
            .await;
        assert_error(s, &b, 422, "invalid_field");
    }
    let (s, b) = app
        .get("/api/crm/sms/sync?since=yesterday", Some(&alice))
        .await;
    assert_error(s, &b, 422, "invalid_field");
    let (s, b) = app
        .post_json("/api/auth/login", None, json!({"email": 1}))
        .await;
    assert_error(s, &b, 422, "invalid_field");
}

async fn malformed_webhooks_are_4xx(app: TestApp) {
    let alice = app.agent("alice@example.com", &["+15550001000"]).await;
    let r = app
        .http
        .post(app.url("/api/crm/sms/webhook"))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    let sid = new_sid();
    for params in [
        vec![("From", "+14155550123"), ("To", "+15550001000")],
        vec![
            ("MessageSid", "garbage"),
            ("From", "+1"),
            ("To", "+15550001000"),
        ],
        vec![
            ("MessageSid", sid.as_str()),
            ("From", "+14155550123"),
            ("To", "+15550001000"),
            ("NumMedia", "9999999"),
        ],
        vec![
            ("MessageSid", sid.as_str()),
            ("From", "+14155550123"),
            ("To", "+15550001000"),
            ("NumMedia", "-1"),
        ],
        vec![
            ("MessageSid", sid.as_str()),
            ("From", "+14155550123"),
            ("To", "+15550001000"),
            ("NumMedia", "1"),
            ("MediaUrl0", "javascript:alert(1)"),
        ],
    ] {
        let r = app.post_webhook("/api/crm/sms/webhook", &params).await;
        assert_eq!(r.status(), 400, "{params:?}");
    }
    // Unknown and repeated parameters are signed and accepted.
    let r = app
        .post_webhook(
            "/api/crm/sms/webhook",
            &[
                ("MessageSid", &sid),
                ("From", "+14155550123"),
                ("To", "+15550001000"),
                ("Body", "hi"),
                ("Body", "again"),
                ("FutureParam", "x"),
            ],
        )
        .await;
    assert_eq!(r.status(), 200);
    let r = app
        .http
        .post(app.url("/api/crm/sms/webhook"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("X-Twilio-Signature", "x")
        .body(vec![0xff, 0xfe, b'=', 0x80])
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error());
    let huge = "x".repeat(300 * 1024);
    let r = app
        .post_webhook(
            "/api/crm/sms/webhook",
            &[
                ("MessageSid", &new_sid()),
                ("From", "+14155550123"),
                ("To", "+15550001000"),
                ("Body", &huge),
            ],
        )
        .await;
    let (status, body) = crate::helpers::read(r).await;
    assert_error(status, &body, 413, "payload_too_large");
    let (status, _) = app.get("/readyz", None).await;
    assert_eq!(status, 200, "the server is fine after it");
    let (_, sync) = app.get("/api/crm/sms/sync?since=0", Some(&alice)).await;
    assert_eq!(sync["messages"].as_array().unwrap().len(), 1);
    assert_eq!(sync["messages"][0]["body"], "hi");
}

async fn health_and_readiness(app: TestApp) {
    let r = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let (status, body) = app.get("/readyz", None).await;
    assert_eq!(status, 200);
    assert_eq!(body["queue"]["depth"], 0);
}
