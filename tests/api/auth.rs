//! Setup, login, sessions, the Origin rule, and agents kept apart.

use futures_util::future::join_all;
use serde_json::{Value, json};

use crate::helpers::TestApp;
use crate::on_both_backends;

on_both_backends! {
    parallel_wrong_passwords_are_counted_before_they_are_checked: Simulator,
    a_successful_login_does_not_reset_the_address_count: Simulator,
    x_forwarded_for_is_ignored_without_trusted_proxies: Simulator,
    one_address_does_not_lock_out_the_others_behind_a_trusted_proxy: Simulator.env("TRUSTED_PROXIES", "127.0.0.1"),
    an_account_takes_at_most_30_failures_from_all_addresses: Simulator.env("TRUSTED_PROXIES", "127.0.0.1"),
    concurrent_password_checks_never_exceed_the_hashers_permits: Simulator.env("TRUSTED_PROXIES", "127.0.0.1"),
    concurrent_setups_create_one_agent: Simulator,
    setup_is_refused_once_an_agent_exists: Simulator,
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
    let id: smsdesk::model::AgentId = alice.id.parse().unwrap();
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
        app.store.end_expired_sessions().await.unwrap(),
        vec![hash],
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
    assert_eq!(
        created["agent"]["role"], "admin",
        "the setup link makes an admin"
    );
    assert_eq!(created["agent"]["numbers"], json!(["+15550001000"]));
    assert!(created["token"].is_string());

    // The token died with its use; its page says so, and leads to sign-in.
    let (status, _) = app.post_json("/api/setup", None, body).await;
    assert_eq!(status, 404);
    let r = app
        .http
        .get(app.url(&format!("/setup?token={token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let page = r.text().await.unwrap();
    assert!(page.contains("This setup link can’t be used"), "{page}");
    assert!(
        page.contains(r#"href="/login""#) && page.contains("/app.css"),
        "{page}"
    );
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

/// A login's status, body and `Retry-After`, from `address` through `X-Forwarded-For`.
async fn login(
    app: &TestApp,
    address: Option<&str>,
    email: &str,
    password: &str,
) -> (u16, Value, Option<u64>) {
    let mut req = app
        .http
        .post(app.url("/api/auth/login"))
        .json(&json!({"email": email, "password": password}));
    if let Some(a) = address {
        req = req.header("X-Forwarded-For", a);
    }
    let r = req.send().await.unwrap();
    let retry_after = r
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse().expect("Retry-After in seconds"));
    let (status, body) = crate::helpers::read(r).await;
    (status, body, retry_after)
}

fn count(statuses: &[u16], status: u16) -> usize {
    statuses.iter().filter(|s| **s == status).count()
}

/// A `429` says when to come back, in its header and its message alike.
fn assert_blocked(answer: &(u16, Value, Option<u64>)) {
    let (status, body, retry_after) = answer;
    assert_eq!(*status, 429, "{body}");
    assert_eq!(body["error"]["code"], "too_many_requests");
    let wait = retry_after.expect("Retry-After");
    assert!((1..=15 * 60).contains(&wait), "{wait}");
    let message = body["error"]["message"].as_str().unwrap();
    let said = if wait % 60 == 0 && wait >= 60 {
        format!("{} minute", wait / 60)
    } else {
        format!("{wait} second")
    };
    assert!(message.contains(&said), "`{message}` should say {said}(s)");
}

async fn parallel_wrong_passwords_are_counted_before_they_are_checked(app: TestApp) {
    app.agent("alice@example.com", &["+15550001000"]).await;
    let answers =
        join_all((0..40).map(|_| login(&app, None, "alice@example.com", "guess-guess"))).await;
    let statuses: Vec<u16> = answers.iter().map(|a| a.0).collect();
    assert_eq!(count(&statuses, 401), 10, "{statuses:?}");
    assert_eq!(count(&statuses, 429), 30, "{statuses:?}");
    for a in answers.iter().filter(|a| a.0 == 429) {
        assert_blocked(a);
    }
}

async fn a_successful_login_does_not_reset_the_address_count(app: TestApp) {
    app.agent("alice@example.com", &["+15550001000"]).await;
    app.agent("bob@example.com", &["+15550001000"]).await;
    let mut guesses = 0;
    'rounds: for _ in 0..5 {
        for _ in 0..3 {
            let answer = login(&app, None, "bob@example.com", "guess-guess").await;
            if answer.0 == 429 {
                assert_blocked(&answer);
                break 'rounds;
            }
            assert_eq!(answer.0, 401);
            guesses += 1;
        }
        let (status, _, _) = login(&app, None, "alice@example.com", "password123").await;
        assert_eq!(status, 200, "after {guesses} guesses");
    }
    assert_eq!(
        guesses, 10,
        "ten guesses per address, own logins in between or not"
    );
    let answer = login(&app, None, "alice@example.com", "password123").await;
    assert_blocked(&answer);
}

async fn x_forwarded_for_is_ignored_without_trusted_proxies(app: TestApp) {
    let answers = join_all((0..11).map(|i| {
        let address = format!("198.51.100.{i}");
        let app = &app;
        async move { login(app, Some(&address), "nobody@example.com", "guess-guess").await }
    }))
    .await;
    let statuses: Vec<u16> = answers.iter().map(|a| a.0).collect();
    assert_eq!(count(&statuses, 401), 10, "{statuses:?}");
    assert_eq!(count(&statuses, 429), 1, "{statuses:?}");
}

async fn one_address_does_not_lock_out_the_others_behind_a_trusted_proxy(app: TestApp) {
    app.agent("alice@example.com", &["+15550001000"]).await;
    let answers =
        join_all((0..11).map(|_| login(&app, Some("203.0.113.9"), "made-up@example.com", "guess")))
            .await;
    let statuses: Vec<u16> = answers.iter().map(|a| a.0).collect();
    assert_eq!(count(&statuses, 401), 10, "{statuses:?}");
    let blocked = answers.iter().find(|a| a.0 == 429).expect("one 429");
    assert_blocked(blocked);
    assert_eq!(blocked.2, Some(15 * 60), "the whole window is left");

    // Another client of the same proxy signs in.
    let (status, _, _) = login(
        &app,
        Some("198.51.100.7"),
        "alice@example.com",
        "password123",
    )
    .await;
    assert_eq!(status, 200);
    // The address is read from the right: what the client wrote itself is not believed,
    // and trusted proxies in the chain are skipped.
    for chain in ["198.51.100.7, 203.0.113.9", "203.0.113.9, 127.0.0.1"] {
        let answer = login(&app, Some(chain), "alice@example.com", "password123").await;
        assert_blocked(&answer);
    }
    // Without the header, the proxy itself is the client.
    let (status, _, _) = login(&app, None, "alice@example.com", "password123").await;
    assert_eq!(status, 200);
}

async fn an_account_takes_at_most_30_failures_from_all_addresses(app: TestApp) {
    app.agent("alice@example.com", &["+15550001000"]).await;
    app.agent("bob@example.com", &["+15550001000"]).await;
    let spread = |email: &'static str, first: usize, n: usize| {
        let app = &app;
        join_all((first..first + n).map(move |i| async move {
            let address = format!("10.0.{}.{}", i / 10, i % 10);
            login(app, Some(&address), email, "guess-guess").await.0
        }))
    };

    let statuses = spread("alice@example.com", 0, 30).await;
    assert_eq!(count(&statuses, 401), 30, "{statuses:?}");
    let answer = login(&app, Some("192.0.2.1"), "alice@example.com", "password123").await;
    assert_blocked(&answer);
    let (status, _, _) = login(&app, Some("192.0.2.1"), "bob@example.com", "password123").await;
    assert_eq!(status, 200, "other accounts are not locked");

    // Unknown emails are counted the same way (and normalised).
    let statuses = spread("ghost@example.com", 100, 30).await;
    assert_eq!(count(&statuses, 401), 30, "{statuses:?}");
    let answer = login(
        &app,
        Some("192.0.2.2"),
        " Ghost@Example.com ",
        "guess-guess",
    )
    .await;
    assert_blocked(&answer);

    // A successful login resets the account's own count.
    let statuses = spread("bob@example.com", 200, 29).await;
    assert_eq!(count(&statuses, 401), 29, "{statuses:?}");
    let (status, _, _) = login(&app, Some("192.0.2.3"), "bob@example.com", "password123").await;
    assert_eq!(status, 200);
    let statuses = spread("bob@example.com", 300, 31).await;
    assert_eq!(count(&statuses, 401), 30, "{statuses:?}");
    assert_eq!(count(&statuses, 429), 1, "{statuses:?}");
}

async fn concurrent_password_checks_never_exceed_the_hashers_permits(app: TestApp) {
    app.agent("alice@example.com", &["+15550001000"]).await;
    let answers = join_all((0..200).map(|i| {
        let app = &app;
        async move {
            let address = format!("10.1.{}.{}", i / 100, i % 100);
            let email = format!("nobody-{i}@example.com");
            login(app, Some(&address), &email, "guess-guess").await
        }
    }))
    .await;
    let hasher = &app.state.services.hasher;
    assert!(hasher.high_water() >= 1);
    assert!(
        hasher.high_water() <= hasher.permits(),
        "{} password checks ran at once, over the {} permits",
        hasher.high_water(),
        hasher.permits()
    );
    let statuses: Vec<u16> = answers.iter().map(|a| a.0).collect();
    assert_eq!(
        count(&statuses, 401) + count(&statuses, 503),
        200,
        "{statuses:?}"
    );
    let busy = answers
        .iter()
        .find(|a| a.0 == 503)
        .expect("more than the queue holds is refused at once");
    assert_eq!(busy.1["error"]["code"], "busy");
    assert!(busy.2.is_some(), "503 carries Retry-After");
    // Nothing is left stuck.
    let (status, _, _) = login(&app, Some("192.0.2.9"), "alice@example.com", "password123").await;
    assert_eq!(status, 200);
}

fn setup_body(token: &str, email: &str) -> Value {
    json!({"token": token, "email": email, "name": "Boss", "password": "password123", "numbers": ["+15550001000"]})
}

async fn concurrent_setups_create_one_agent(app: TestApp) {
    let link = app.setup_url.clone().expect("a setup link");
    let token = link.split("token=").nth(1).unwrap().to_owned();
    let answers = join_all((0..5).map(|i| {
        app.post_json(
            "/api/setup",
            None,
            setup_body(&token, &format!("boss{i}@example.com")),
        )
    }))
    .await;
    let statuses: Vec<u16> = answers.iter().map(|a| a.0).collect();
    assert_eq!(count(&statuses, 201), 1, "{statuses:?}");
    assert_eq!(count(&statuses, 404), 4, "{statuses:?}");
    assert_eq!(app.store.count_agents().await.unwrap(), 1);
}

async fn setup_is_refused_once_an_agent_exists(app: TestApp) {
    let link = app.setup_url.clone().expect("a setup link");
    let token = link.split("token=").nth(1).unwrap().to_owned();
    // As `smsdesk agent add` (another process) would.
    let hash = smsdesk::auth::hash_password("password123").unwrap();
    let new = smsdesk::domain::NewAgent::parse_invited(
        "cli@example.com",
        "Cli",
        &["+15550001000".into()],
    )
    .unwrap();
    app.store.create_agent(&new, &hash).await.unwrap().unwrap();
    let r = app
        .http
        .get(app.url(&format!("/setup?token={token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let (status, body) = app
        .post_json("/api/setup", None, setup_body(&token, "boss@example.com"))
        .await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["code"], "not_found");
    assert_eq!(app.store.count_agents().await.unwrap(), 1);
}
