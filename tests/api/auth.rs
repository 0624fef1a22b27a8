//! Setup, login, sessions, the Origin rule, and agents kept apart.

use serde_json::json;

use crate::helpers::TestApp;
use crate::on_both_backends;

on_both_backends! {
    first_agent_is_created_through_the_one_time_setup_link: Simulator,
    login_logout_and_me: Simulator,
    repeated_failed_logins_are_slowed_then_refused: Simulator,
    cookie_mutations_need_our_origin: Simulator,
    agent_a_cannot_touch_agent_bs_conversation: FakeTwilio,
    pages_redirect_without_a_session: Simulator,
    expired_sessions_are_refused_and_pruned: Simulator,
}

async fn expired_sessions_are_refused_and_pruned(app: TestApp) {
    let alice = app.agent("alice@example.com", &["+15550001000"]).await;
    let (token, hash) = smsdesk::auth::new_token();
    let id = smsdesk::model::Id(alice.id.parse().unwrap());
    let yesterday = chrono::Utc::now() - chrono::Duration::days(1);
    app.store
        .create_session(&hash, id, yesterday)
        .await
        .unwrap();
    let r = app
        .http
        .get(app.url("/api/auth/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        app.store.prune().await.unwrap(),
        1,
        "only the expired session goes"
    );
    let (status, _) = app.get("/api/auth/me", Some(&alice)).await;
    assert_eq!(status, 200);
}

async fn first_agent_is_created_through_the_one_time_setup_link(app: TestApp) {
    let r = app
        .http
        .get(app.url("/setup?token=wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let (status, _) = app
        .post_json("/api/setup", None, json!({"token": "wrong", "email": "a@x.io", "name": "A", "password": "password123", "numbers": ["+15550001000"]}))
        .await;
    assert_eq!(status, 404);

    let link = app
        .setup_url
        .clone()
        .expect("a setup link while there is no agent");
    let token = link.split("token=").nth(1).unwrap().to_owned();
    let r = app
        .http
        .get(app.url(&format!("/setup?token={token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body = json!({"token": token, "email": "Boss@Example.com", "name": "Boss", "password": "password123", "numbers": ["(555) 000-1000"]});
    let (status, invalid) = app
        .post_json("/api/setup", None, json!({"token": token, "email": "boss@example.com", "name": "Boss", "password": "short", "numbers": ["+15550001000"]}))
        .await;
    assert_eq!(status, 422, "{invalid}");
    let r = app
        .http
        .post(app.url("/api/setup"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert!(
        r.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .starts_with("smsdesk_session=")
    );
    let created: serde_json::Value = r.json().await.unwrap();
    assert_eq!(created["agent"]["email"], "boss@example.com");
    assert_eq!(created["agent"]["numbers"], json!(["+15550001000"]));
    assert!(created["token"].is_string());

    // The token died with its use.
    let (status, _) = app.post_json("/api/setup", None, body).await;
    assert_eq!(status, 404);
    let r = app
        .http
        .get(app.url(&format!("/setup?token={token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

async fn login_logout_and_me(app: TestApp) {
    let alice = app.agent("alice@example.com", &["+15550001000"]).await;
    let (status, me) = app.get("/api/auth/me", Some(&alice)).await;
    assert_eq!(status, 200);
    assert_eq!(me["agent"]["email"], "alice@example.com");
    assert_eq!(me["agent"]["numbers"], json!(["+15550001000"]));
    assert!(me["agent"].get("passwordHash").is_none());

    let (status, body) = app
        .post_json(
            "/api/auth/login",
            None,
            json!({"email": "alice@example.com", "password": "wrong-password"}),
        )
        .await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "unauthorized");

    let r = app
        .http
        .post(app.url("/api/auth/login"))
        .json(&json!({"email": "ALICE@example.com", "password": "password123"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );

    let (status, _) = app
        .post_json("/api/auth/logout", Some(&alice), json!({}))
        .await;
    assert_eq!(status, 204);
    let (status, _) = app.get("/api/auth/me", Some(&alice)).await;
    assert_eq!(status, 401, "the session is gone server-side");
    let (status, _) = app.get("/api/crm/sms/conversations", None).await;
    assert_eq!(status, 401);
}

async fn repeated_failed_logins_are_slowed_then_refused(app: TestApp) {
    app.agent("alice@example.com", &["+15550001000"]).await;
    let mut statuses = Vec::new();
    for _ in 0..12 {
        let (status, _) = app
            .post_json(
                "/api/auth/login",
                None,
                json!({"email": "alice@example.com", "password": "guess-guess"}),
            )
            .await;
        statuses.push(status);
    }
    assert!(statuses[..10].iter().all(|s| *s == 401), "{statuses:?}");
    assert_eq!(&statuses[10..], &[429, 429]);
    // Even the right password is refused while blocked.
    let (status, _) = app
        .post_json(
            "/api/auth/login",
            None,
            json!({"email": "alice@example.com", "password": "password123"}),
        )
        .await;
    assert_eq!(status, 429);
}

async fn cookie_mutations_need_our_origin(app: TestApp) {
    let alice = app.agent("alice@example.com", &["+15550001000"]).await;
    let cookie = format!("smsdesk_session={}", alice.token);
    let post = |origin: Option<String>| {
        let mut req = app
            .http
            .post(app.url("/api/crm/sms/conversations"))
            .header("Cookie", cookie.clone())
            .json(&json!({"phone": "+14155550123"}));
        if let Some(o) = origin {
            req = req.header("Origin", o);
        }
        req.send()
    };
    assert_eq!(post(None).await.unwrap().status(), 403);
    assert_eq!(
        post(Some("https://evil.example".into()))
            .await
            .unwrap()
            .status(),
        403
    );
    assert_eq!(post(Some(app.origin())).await.unwrap().status(), 200);
    assert_eq!(
        post(Some(format!("http://localhost:{}", app.port)))
            .await
            .unwrap()
            .status(),
        200
    );
    // Reading with the cookie needs no Origin; Bearer never does.
    let r = app
        .http
        .get(app.url("/api/crm/sms/conversations"))
        .header("Cookie", cookie.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

async fn agent_a_cannot_touch_agent_bs_conversation(app: TestApp) {
    let alice = app.agent("alice@example.com", &["+15550001000"]).await;
    let bob = app.agent("bob@example.com", &["+15550002000"]).await;
    app.fake
        .as_ref()
        .unwrap()
        .script(crate::helpers::Script::Error {
            status: 400,
            code: 21211,
            message: "bad",
        });
    let bobs = app.conversation(&bob, "+14155550123").await;
    let (_, sent) = app.send(&bob, &bobs, "private", "c-1").await;
    let message = sent["message"]["id"].as_str().unwrap().to_owned();
    app.wait_status(&bob, &message, "failed").await;

    let (status, body) = app
        .get(
            &format!("/api/crm/sms/conversations/{bobs}/messages"),
            Some(&alice),
        )
        .await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "not_found");
    let (status, _) = app
        .post_json(
            &format!("/api/crm/sms/conversations/{bobs}/read"),
            Some(&alice),
            json!({}),
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = app.send(&alice, &bobs, "sneaky", "c-2").await;
    assert_eq!(status, 404);
    let (status, _) = app
        .post_json(
            &format!("/api/crm/sms/messages/{message}/retry"),
            Some(&alice),
            json!({"clientId": "c-3"}),
        )
        .await;
    assert_eq!(status, 404);
    let (_, list) = app.get("/api/crm/sms/conversations", Some(&alice)).await;
    assert_eq!(list["conversations"], json!([]));
    let (_, sync) = app.get("/api/crm/sms/sync?since=0", Some(&alice)).await;
    assert_eq!(sync["messages"], json!([]));
    // Opening a conversation from a number that is not hers is refused.
    let (status, _) = app
        .post_json(
            "/api/crm/sms/conversations",
            Some(&alice),
            json!({"phone": "+14155550123", "from": "+15550002000"}),
        )
        .await;
    assert_eq!(status, 422);
}

async fn pages_redirect_without_a_session(app: TestApp) {
    let r = app.http.get(app.url("/")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/login");
    let r = app
        .http
        .get(app.url("/agent/messages"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["location"], "/login");
    let r = app.http.get(app.url("/login")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let csp = r.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    let (status, body) = app.get("/no/such/thing", None).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "not_found");
}
