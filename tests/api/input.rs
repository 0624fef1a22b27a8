//! Bad input gets a clear 4xx in the API's error shape (docs/api.md, "Errors"), never a 500.

use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_error, new_sid};
use crate::on_both_backends;

on_both_backends! {
    malformed_rest_bodies_are_4xx: Simulator,
    malformed_webhooks_are_4xx: Simulator,
    health_and_readiness: Simulator,
    control_and_invisible_text_is_refused_naming_the_field: Simulator,
    a_refusal_by_the_database_is_not_an_outage: Simulator,
    an_id_in_a_path_that_cannot_be_one_is_not_found: Simulator,
}

async fn control_and_invisible_text_is_refused_naming_the_field(app: TestApp) {
    let refused = |(status, body): (u16, Value), field: &str| {
        assert_error(status, &body, 422, "invalid_field");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.starts_with(field), "{field}: {message}");
    };
    // Setup, before any agent exists.
    let token = app
        .setup_url
        .as_deref()
        .and_then(|u| u.split("token=").nth(1))
        .unwrap()
        .to_owned();
    let setup = |email: &str, name: &str| json!({"token": token, "email": email, "name": name, "password": "password123", "numbers": ["+15550001000"]});
    refused(
        app.post_json("/api/setup", None, setup("a\0@x.io", "Ann"))
            .await,
        "email",
    );
    refused(
        app.post_json("/api/setup", None, setup("a@x.io", "Ann\u{1b}[2J"))
            .await,
        "name",
    );
    refused(
        app.post_json("/api/setup", None, setup("a@x.io", "\u{200B}"))
            .await,
        "name",
    );

    let alice = app.agent("alice@example.com", &["+15550001000"]).await;
    let conversation = app.conversation(&alice, "+14155550123").await;
    for body in [
        "\u{200B}",
        "\u{200B}\u{200D}\u{FEFF}",
        " \n\t ",
        "hi\0",
        "a\u{7}",
        "x\u{9b}",
    ] {
        refused(app.send(&alice, &conversation, body, "c-x").await, "body");
    }
    let (status, sent) = app
        .send(&alice, &conversation, "line\n\tnext ☺", "c-1")
        .await;
    assert_eq!(status, 202, "{sent}");
    assert_eq!(sent["message"]["body"], "line\n\tnext ☺");

    let open = |body: Value| app.post_json("/api/crm/sms/conversations", Some(&alice), body);
    refused(open(json!({"phone": "+14155550124\0"})).await, "phone");
    refused(
        open(json!({"phone": "+14155550124", "name": "Bob\0"})).await,
        "name",
    );
    refused(
        open(json!({"phone": "+14155550124", "from": "+1555000\u{0}1000"})).await,
        "from",
    );
    let (status, opened) = open(json!({"phone": "+14155550124", "name": "\u{200B}"})).await;
    assert_eq!(status, 200, "{opened}");
    assert_eq!(
        opened["contact"]["name"],
        Value::Null,
        "an invisible name is no name"
    );

    let send_to = |to: &str| {
        app.post_json(
            "/api/crm/sms/send",
            Some(&alice),
            json!({"to": to, "body": "hi", "clientId": "c-2"}),
        )
    };
    refused(send_to("+14155550125\u{0}").await, "to");

    let simulate = |body: &str| {
        app.post_json(
            "/dev/simulate/inbound",
            Some(&alice),
            json!({"from": "+14155550123", "to": "+15550001000", "body": body}),
        )
    };
    refused(simulate("hi\0").await, "body");
    refused(simulate("\u{200B}").await, "body");
}

async fn an_id_in_a_path_that_cannot_be_one_is_not_found(app: TestApp) {
    // The first agent is an admin, so the admin routes answer too.
    let alice = app.agent("alice@example.com", &["+15550001000"]).await;
    for id in ["abc", "-1", "1.5", "99999999999999999999999"] {
        for (method, path, body, what) in [
            (
                "POST",
                format!("/api/crm/sms/conversations/{id}/read"),
                json!({}),
                "conversation",
            ),
            (
                "PATCH",
                format!("/api/crm/sms/conversations/{id}"),
                json!({"contactName": "Bo"}),
                "conversation",
            ),
            (
                "POST",
                format!("/api/crm/sms/messages/{id}/retry"),
                json!({"clientId": "c-1"}),
                "message",
            ),
            (
                "GET",
                format!("/api/crm/sms/messages/{id}/media/0"),
                json!(null),
                "message",
            ),
            (
                "PATCH",
                format!("/api/admin/agents/{id}"),
                json!({"name": "Bo"}),
                "agent",
            ),
            (
                "POST",
                format!("/api/admin/agents/{id}/invite"),
                json!({}),
                "agent",
            ),
        ] {
            let request = match method {
                "GET" => app.http.get(app.url(&path)),
                "PATCH" => app.http.patch(app.url(&path)).json(&body),
                _ => app.http.post(app.url(&path)).json(&body),
            };
            let r = request.bearer_auth(&alice.token).send().await.unwrap();
            let (status, answer) = crate::helpers::read(r).await;
            assert_error(status, &answer, 404, "not_found");
            assert_eq!(
                answer["error"]["message"],
                format!("{what} not found"),
                "{method} {path}"
            );
        }
    }
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

async fn a_refusal_by_the_database_is_not_an_outage(app: TestApp) {
    // PostgreSQL refuses a NUL in text with SQLSTATE 22021, whose last byte once read as
    // SQLite's BUSY: a login with it answered 503 as if the database were down.
    let found = app.store.agent_by_email("a\0@example.com").await;
    assert!(
        !matches!(found, Err(smsdesk::store::StoreError::Unavailable(_))),
        "{found:?}"
    );
    let (status, body) = app
        .post_json(
            "/api/auth/login",
            None,
            json!({"email": "a\u{0}@example.com", "password": "password123"}),
        )
        .await;
    assert_error(status, &body, 401, "unauthorized");
}
