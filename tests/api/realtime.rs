//! socket.io: handshake authentication, rooms, typing.

use serde_json::json;

use crate::helpers::{Socket, SocketAuth, TestApp};
use crate::on_both_backends;

on_both_backends! {
    unauthenticated_sockets_get_connect_error_unauthorized: Simulator,
    cookie_handshake_needs_our_origin: Simulator,
    clients_cannot_choose_their_rooms: Simulator,
    typing_reaches_other_agents_of_the_number_and_expires: Simulator,
    sent_message_reaches_the_agents_other_tabs: Simulator,
    shutdown_is_graceful_with_sockets_connected: Simulator,
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
