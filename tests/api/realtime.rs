//! socket.io: handshake authentication, rooms, typing, sessions ended without a word, and
//! the sockets at shutdown.

use std::time::Duration;

use serde_json::json;
use smsdesk::store::AgentChanges;

use crate::helpers::{Socket, SocketAuth, TestApp, wait_until};
use crate::on_both_backends;

/// How often the server checks its sockets' sessions here (30 s at most in production).
const CHECK_PERIOD: Duration = Duration::from_millis(300);

on_both_backends! {
    unauthenticated_sockets_get_connect_error_unauthorized: Simulator,
    cookie_handshake_needs_our_origin: Simulator,
    clients_cannot_choose_their_rooms: Simulator,
    typing_reaches_other_agents_of_the_number_and_expires: Simulator,
    sent_message_reaches_the_agents_other_tabs: Simulator,
    shutdown_is_graceful_with_sockets_connected: Simulator,
    logout_disconnects_that_sessions_sockets_only: Simulator,
    expired_sessions_disconnect_their_sockets: Simulator,
    an_agent_holds_at_most_max_sockets_per_agent: Simulator.env("MAX_SOCKETS_PER_AGENT", "3"),
    typing_is_relayed_at_most_twice_a_second: Simulator,
    sessions_ended_without_a_word_lose_their_sockets: Simulator.settings(|s| s.session_check_period = CHECK_PERIOD),
    a_send_finishing_during_shutdown_reaches_the_page_before_its_socket_closes: FakeTwilio,
}

async fn unauthenticated_sockets_get_connect_error_unauthorized(app: TestApp) {
    let err = Socket::connect(&app, SocketAuth::None)
        .await
        .err()
        .expect("refused");
    assert!(err.contains("unauthorized"), "{err}");
    let err = Socket::connect(&app, SocketAuth::Token("not-a-session".into()))
        .await
        .err()
        .expect("refused");
    assert!(err.contains("unauthorized"), "{err}");
}

async fn cookie_handshake_needs_our_origin(app: TestApp) {
    let alice = app.agent("alice@example.com", &["+15550001000"]).await;
    let foreign = Socket::connect(
        &app,
        SocketAuth::Cookie {
            token: alice.token.clone(),
            origin: Some("https://evil.example".into()),
        },
    )
    .await;
    assert!(foreign.err().expect("refused").contains("unauthorized"));
    let missing = Socket::connect(
        &app,
        SocketAuth::Cookie {
            token: alice.token.clone(),
            origin: None,
        },
    )
    .await;
    assert!(missing.is_err());
    let mut ours = Socket::connect(
        &app,
        SocketAuth::Cookie {
            token: alice.token.clone(),
            origin: Some(app.origin()),
        },
    )
    .await
    .expect("our own page connects");
    app.inbound("+14155550123", "+15550001000", "via cookie")
        .await;
    assert_eq!(ours.next("message:new").await["body"], "via cookie");
}

async fn typing_reaches_other_agents_of_the_number_and_expires(app: TestApp) {
    let alice = app.agent("alice@example.com", &["+15550001000"]).await;
    let bob = app.agent("bob@example.com", &["+15550001000"]).await;
    let carol = app.agent("carol@example.com", &["+15550003000"]).await;
    app.inbound("+14155550123", "+15550001000", "hello team")
        .await;
    let (_, list) = app.get("/api/crm/sms/conversations", Some(&alice)).await;
    let conversation = list["conversations"][0]["id"].as_str().unwrap().to_owned();

    let mut a = app.socket(&alice).await;
    let mut b = app.socket(&bob).await;
    let mut c = app.socket(&carol).await;
    a.emit(
        "typing",
        json!({"conversationId": conversation, "isTyping": true}),
    )
    .await;
    let t = b.next("typing").await;
    assert_eq!(t["conversationId"], conversation.as_str());
    assert_eq!(t["agentId"], alice.id.as_str());
    assert_eq!(t["agentName"], "alice@example.com");
    assert_eq!(t["isTyping"], true);
    // Not renewed: it ends by itself.
    let ended = b.next("typing").await;
    assert_eq!(ended["isTyping"], false);

    // Carol cannot type into a conversation she cannot see, and malformed payloads are ignored.
    c.emit(
        "typing",
        json!({"conversationId": conversation, "isTyping": true}),
    )
    .await;
    c.emit("typing", json!({"conversationId": {"$gt": 1}}))
        .await;
    c.emit("typing", json!("garbage")).await;
    b.emit(
        "typing",
        json!({"conversationId": conversation, "isTyping": false}),
    )
    .await;
    let from_bob = a.next("typing").await;
    assert_eq!(
        from_bob["agentId"],
        bob.id.as_str(),
        "Carol's typing never reached Alice"
    );
    // Alice never hears her own typing: the first typing event she got was Bob's.
    app.inbound("+14155550123", "+15550003000", "for carol")
        .await;
    assert_eq!(c.next("message:new").await["body"], "for carol");
}

async fn sent_message_reaches_the_agents_other_tabs(app: TestApp) {
    let alice = app.agent("alice@example.com", &["+15550001000"]).await;
    let mut tab1 = app.socket(&alice).await;
    let mut tab2 = app.socket(&alice).await;
    let conversation = app.conversation(&alice, "+14155550123").await;
    let (_, body) = app.send(&alice, &conversation, "from tab 1", "c-1").await;
    assert_eq!(tab1.next("message:new").await["clientId"], "c-1");
    let other = tab2.next("message:new").await;
    assert_eq!(other["id"], body["message"]["id"]);
}

async fn shutdown_is_graceful_with_sockets_connected(mut app: TestApp) {
    let alice = app.agent("alice@example.com", &["+15550001000"]).await;
    let _socket = app.socket(&alice).await;
    app.stop().await;
}

async fn clients_cannot_choose_their_rooms(app: TestApp) {
    let alice = app.agent("alice@example.com", &["+15550001000"]).await;
    let bob = app.agent("bob@example.com", &["+15550002000"]).await;
    let mut mallory = app.socket(&alice).await;
    for (event, data) in [
        ("join", json!(format!("user:{}", bob.id))),
        ("join", json!({"room": format!("user:{}", bob.id)})),
        ("subscribe", json!(format!("user:{}", bob.id))),
        ("typing", json!({"conversationId": "1", "isTyping": "yes"})),
    ] {
        mallory.emit(event, data).await;
    }
    app.inbound("+14155550123", "+15550002000", "for bob only")
        .await;
    app.inbound("+14155550123", "+15550001000", "for alice")
        .await;
    assert_eq!(mallory.next("message:new").await["body"], "for alice");
}

/// A second session of an existing agent (another device).
async fn second_session(app: &TestApp, email: &str) -> crate::helpers::Agent {
    let (status, body) = app
        .post_json(
            "/api/auth/login",
            None,
            json!({"email": email, "password": "password123"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    crate::helpers::Agent {
        id: body["agent"]["id"].as_str().unwrap().to_owned(),
        token: body["token"].as_str().unwrap().to_owned(),
    }
}

async fn logout_disconnects_that_sessions_sockets_only(app: TestApp) {
    let laptop = app.agent("alice@example.com", &["+15550001000"]).await;
    let phone = second_session(&app, "alice@example.com").await;
    let mut tab1 = app.socket(&laptop).await;
    let mut tab2 = Socket::connect(
        &app,
        SocketAuth::Cookie {
            token: laptop.token.clone(),
            origin: Some(app.origin()),
        },
    )
    .await
    .expect("the page connects");
    let mut other = app.socket(&phone).await;

    let (status, _) = app
        .post_json("/api/auth/logout", Some(&laptop), json!({}))
        .await;
    assert_eq!(status, 204);
    tab1.closed().await;
    tab2.closed().await;

    app.inbound("+14155550123", "+15550001000", "confidential")
        .await;
    assert_eq!(other.next("message:new").await["body"], "confidential");
    assert!(tab1.received("message:new").is_empty());
    assert!(tab2.received("message:new").is_empty());
    // The ended session cannot come back.
    let again = Socket::connect(&app, SocketAuth::Token(laptop.token.clone())).await;
    assert!(again.err().expect("refused").contains("unauthorized"));
}

async fn expired_sessions_disconnect_their_sockets(app: TestApp) {
    let alice = app.agent("alice@example.com", &["+15550001000"]).await;
    let (token, hash) = smsdesk::auth::new_token();
    let id: smsdesk::model::AgentId = alice.id.parse().unwrap();
    // Whole milliseconds, as the server stores times.
    let soon = smsdesk::model::now() + chrono::Duration::milliseconds(1500);
    app.store.create_session(&hash, id, soon).await.unwrap();
    let short = crate::helpers::Agent {
        id: alice.id.clone(),
        token,
    };
    let mut expiring = app.socket(&short).await;
    let mut lasting = app.socket(&alice).await;

    expiring.closed().await;
    assert!(chrono::Utc::now() >= soon, "not before it expired");
    app.inbound("+14155550123", "+15550001000", "after expiry")
        .await;
    assert_eq!(lasting.next("message:new").await["body"], "after expiry");
    assert!(expiring.received("message:new").is_empty());
    // The session is gone from the database too.
    assert!(app.store.session_agent(&hash).await.unwrap().is_none());
    assert!(
        app.store.end_expired_sessions().await.unwrap().is_empty(),
        "already ended"
    );
}

async fn an_agent_holds_at_most_max_sockets_per_agent(app: TestApp) {
    let alice = app.agent("alice@example.com", &["+15550001000"]).await;
    let bob = app.agent("bob@example.com", &["+15550001000"]).await;
    let mut tabs = Vec::new();
    for _ in 0..3 {
        tabs.push(app.socket(&alice).await);
    }
    let refused = Socket::connect(&app, SocketAuth::Token(alice.token.clone())).await;
    assert!(
        refused
            .err()
            .expect("refused")
            .contains("too_many_connections"),
        "the fourth socket is refused"
    );
    let mut bobs = app.socket(&bob).await;

    // A closed tab gives its place back.
    tabs.pop().unwrap().disconnect().await;
    let mut again = wait_until("the closed socket's place to be given back", async || {
        let again = Socket::connect(&app, SocketAuth::Token(alice.token.clone())).await;
        if let Err(e) = &again {
            assert!(e.contains("too_many_connections"), "{e}");
        }
        again
    })
    .await;
    app.inbound("+14155550123", "+15550001000", "to all").await;
    assert_eq!(again.next("message:new").await["body"], "to all");
    assert_eq!(tabs[0].next("message:new").await["body"], "to all");
    assert_eq!(bobs.next("message:new").await["body"], "to all");
}

async fn typing_is_relayed_at_most_twice_a_second(app: TestApp) {
    let alice = app.agent("alice@example.com", &["+15550001000"]).await;
    let bob = app.agent("bob@example.com", &["+15550001000"]).await;
    app.inbound("+14155550123", "+15550001000", "hello team")
        .await;
    let (_, list) = app.get("/api/crm/sms/conversations", Some(&alice)).await;
    let conversation = list["conversations"][0]["id"].as_str().unwrap().to_owned();
    let a = app.socket(&alice).await;
    let mut b = app.socket(&bob).await;

    let started = std::time::Instant::now();
    for _ in 0..200 {
        a.emit(
            "typing",
            json!({"conversationId": conversation, "isTyping": true}),
        )
        .await;
    }
    let burst = started.elapsed();
    // The state ends by itself after the last relayed `true`: everything relayed is in.
    let mut relayed = 0;
    loop {
        let t = b.next("typing").await;
        if t["isTyping"] == false {
            break;
        }
        relayed += 1;
    }
    let allowed = 3 + (burst.as_millis() / 500) as usize;
    assert!(
        (1..=allowed).contains(&relayed),
        "{relayed} of 200 relayed in {burst:?}"
    );

    // `false` is always relayed, even right after a `true`.
    a.emit(
        "typing",
        json!({"conversationId": conversation, "isTyping": true}),
    )
    .await;
    assert_eq!(b.next("typing").await["isTyping"], true);
    let stopped = std::time::Instant::now();
    a.emit(
        "typing",
        json!({"conversationId": conversation, "isTyping": false}),
    )
    .await;
    assert_eq!(b.next("typing").await["isTyping"], false);
    assert!(
        stopped.elapsed() < std::time::Duration::from_secs(5),
        "the stop was relayed, not the state's expiry after 6 s"
    );
}

/// Sessions ended where no disconnect reaches this server (another process, or another
/// instance whose disconnect Redis lost): the server finds them in the database.
async fn sessions_ended_without_a_word_lose_their_sockets(app: TestApp) {
    let admin = app.agent("admin@example.com", &["+15550001000"]).await;
    let alice = app.agent("alice@example.com", &["+15550001000"]).await;
    let bob = app.agent("bob@example.com", &["+15550001000"]).await;
    let mut alices = [app.socket(&alice).await, app.socket(&alice).await];
    let mut bobs = app.socket(&bob).await;
    let mut admins = app.socket(&admin).await;

    let hash = smsdesk::auth::token_hash(&alice.token);
    app.store.delete_session(&hash).await.unwrap();
    for socket in &mut alices {
        socket.closed().await;
    }
    let changes = AgentChanges {
        name: None,
        numbers: None,
        role: None,
        disabled: Some(true),
    };
    let by = admin.id.parse().unwrap();
    app.store
        .update_agent(by, bob.id.parse().unwrap(), &changes)
        .await
        .unwrap();
    bobs.closed().await;

    app.inbound("+14155550123", "+15550001000", "for the admin")
        .await;
    assert_eq!(admins.next("message:new").await["body"], "for the admin");
    assert!(bobs.received("message:new").is_empty());
}

/// A send that Twilio answers while the server is stopping is recorded and pushed to the
/// page before the sockets close (it used to be pushed after, into a closed namespace,
/// which panicked).
async fn a_send_finishing_during_shutdown_reaches_the_page_before_its_socket_closes(
    mut app: TestApp,
) {
    let fake = app.fake.as_ref().unwrap().state.clone();
    let alice = app.agent("alice@example.com", &["+15550001000"]).await;
    let conversation = app.conversation(&alice, "+14155550123").await;
    let mut socket = app.socket(&alice).await;
    *fake.delay.lock().unwrap() = Duration::from_secs(2);
    let (status, sent) = app.send(&alice, &conversation, "last words", "c-1").await;
    assert_eq!(status, 202, "{sent}");
    let id = sent["message"]["id"].clone();
    wait_until("Twilio to be asked", async || {
        !fake.sent.lock().unwrap().is_empty()
    })
    .await;

    let page = async {
        let queued = socket.next_where("message:status", |s| s["id"] == id).await;
        assert_eq!(queued["status"], "queued");
    };
    tokio::join!(app.stop(), page);
}
