//! Whatever a client sends over socket.io is data (docs/reliability.md, "Bad input"): random
//! events and JSON payloads through a real socket.io client, and random engine.io and
//! socket.io frames over a raw websocket. The server ignores or refuses them, relays nothing
//! it should not, and goes on serving every socket.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message as Frame;

use crate::helpers::{Agent, TestApp};
use crate::on_both_backends;

on_both_backends! {
    random_events_and_payloads_are_ignored: Simulator,
    random_frames_never_hurt_other_sockets: Simulator,
}

/// Inputs per test and backend: enough to meet every shape of the strategies below.
const CASES: usize = 200;

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON has no NaN", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,30}".prop_map(Value::from),
        Just(json!("conversationId")),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            proptest::collection::hash_map(
                prop_oneof![
                    Just("conversationId".to_owned()),
                    Just("isTyping".to_owned()),
                    Just("token".to_owned()),
                    ".{0,8}"
                ],
                inner,
                0..5
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn event_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("typing".to_owned()),
        Just("message:new".to_owned()),
        Just("join".to_owned()),
        Just("disconnect".to_owned()),
        ".{0,20}",
    ]
}

/// Random text and binary frames, weighted towards what the server parses: engine.io packet
/// types, socket.io packet types with namespaces, ids, attachments and JSON.
fn frame() -> impl Strategy<Value = Frame> {
    let text = prop_oneof![
        ".{0,60}",
        "[0-6][0-6]?(/[a-z]{0,5},)?[0-9]{0,4}",
        "42[0-9]{0,3}\\[\"typing\",.{0,40}",
        "45[0-9]-\\[\"typing\",\\{\"_placeholder\":true,\"num\":[0-9]\\}\\]",
        "4[0-6]\\{.{0,30}",
        json_value().prop_map(|v| format!("42{}", json!(["typing", v]))),
        json_value().prop_map(|v| format!("4{v}")),
    ];
    prop_oneof![
        8 => text.prop_map(|t| Frame::Text(t.into())),
        1 => proptest::collection::vec(any::<u8>(), 0..64).prop_map(|b| Frame::Binary(b.into())),
    ]
}

fn samples<S: Strategy>(strategy: S) -> Vec<S::Value> {
    let mut runner = TestRunner::deterministic();
    (0..CASES)
        .map(|_| strategy.new_tree(&mut runner).unwrap().current())
        .collect()
}

/// After the noise, the server still serves: an inbound message reaches `listener`.
async fn still_serving(app: &TestApp, listener: &mut crate::helpers::Socket, body: &str) {
    let (status, _) = app.get("/healthz", None).await;
    assert_eq!(status, 200);
    app.inbound("+14155550123", "+15550001000", body).await;
    assert_eq!(listener.next("message:new").await["body"], body);
}

async fn random_events_and_payloads_are_ignored(app: TestApp) {
    let alice = app.agent("alice@example.com", &["+15550001000"]).await;
    let bob = app.agent("bob@example.com", &["+15550001000"]).await;
    let mallory = app.agent("mallory@example.com", &["+15550009999"]).await;
    let conversation = app.conversation(&alice, "+14155550123").await;
    let mut bobs = app.socket(&bob).await;
    let mut noisy = app.socket(&mallory).await;

    let events = samples((event_name(), json_value()));
    let mut previous = None;
    for (event, payload) in events {
        if let Err(e) = noisy.try_emit(&event, payload.clone()).await {
            eprintln!("closed after {previous:?}: {e}");
            noisy = app.socket(&mallory).await;
        }
        previous = Some((event, payload));
    }
    // A payload naming a conversation Mallory cannot see is not relayed either.
    noisy
        .emit(
            "typing",
            json!({"conversationId": conversation, "isTyping": true}),
        )
        .await;

    still_serving(&app, &mut bobs, "after the noise").await;
    assert!(
        bobs.received("typing").is_empty(),
        "nothing Mallory sent reached Bob"
    );
    let alices = app.socket(&alice).await;
    alices
        .emit(
            "typing",
            json!({"conversationId": conversation, "isTyping": true}),
        )
        .await;
    assert_eq!(bobs.next("typing").await["agentId"], alice.id.as_str());
}

async fn random_frames_never_hurt_other_sockets(app: TestApp) {
    let alice = app.agent("alice@example.com", &["+15550001000"]).await;
    let mut listener = app.socket(&alice).await;
    let frames = samples(frame());
    // Each chunk on a connection of its own, authenticated: a frame the server refuses may
    // close its connection, and the next chunk must still meet a parser past the handshake.
    for chunk in frames.chunks(20) {
        let mut ws = raw_socket(&app, &alice).await;
        for frame in chunk {
            if ws.send(frame.clone()).await.is_err() {
                break;
            }
        }
        // Read whatever the server answers until it goes quiet or closes.
        while let Ok(Some(Ok(_))) = tokio::time::timeout(Duration::from_millis(50), ws.next()).await
        {
        }
    }
    still_serving(&app, &mut listener, "after the frames").await;
}

type RawSocket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A websocket past engine.io's open and socket.io's connect, authenticated as `agent`.
async fn raw_socket(app: &TestApp, agent: &Agent) -> RawSocket {
    let url = format!(
        "ws://127.0.0.1:{}/socket.io/?EIO=4&transport=websocket",
        app.port
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("websocket");
    let open = next_text(&mut ws).await;
    assert!(open.starts_with('0'), "engine.io open: {open}");
    let connect = format!("40{}", json!({"token": agent.token}));
    ws.send(Frame::Text(connect.into())).await.unwrap();
    let connected = next_text(&mut ws).await;
    assert!(
        connected.starts_with("40"),
        "socket.io connect: {connected}"
    );
    ws
}

async fn next_text(ws: &mut RawSocket) -> String {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("an answer within 10 s")
            .expect("the connection open")
            .expect("a frame");
        match frame {
            // engine.io's ping, which may come before the answer: pong and read on.
            Frame::Text(t) if t.as_str() == "2" => ws.send(Frame::Text("3".into())).await.unwrap(),
            Frame::Text(t) => return t.to_string(),
            _ => {}
        }
    }
}
