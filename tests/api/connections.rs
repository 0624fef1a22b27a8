//! Slow and greedy clients at the connection level: request heads that never finish, idle
//! keep-alive connections, and engine.io sessions that never join the namespace.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{Backend, TestApp, read, run, wait_until_within};
use crate::on_both_backends;

/// The server's limits are 10 s; this leaves room for a loaded machine.
const CLOSED_WITHIN: Duration = Duration::from_secs(16);
/// How many engine.io sessions not yet connected to the namespace the server allows here.
const UNCONNECTED_SESSIONS: usize = 5;

on_both_backends! {
    unconnected_engine_io_sessions_are_capped_and_closed: Simulator.settings(|s| s.max_unconnected_sessions = UNCONNECTED_SESSIONS),
}

// Plain HTTP: the database plays no part, so SQLite alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickled_request_head_is_closed() {
    run(Backend::Sqlite, TestApp::builder(), trickled_request_head).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_keep_alive_connection_is_closed() {
    run(Backend::Sqlite, TestApp::builder(), idle_keep_alive).await
}

/// Everything the server sends until it closes the connection (or `CLOSED_WITHIN` passes).
async fn read_until_closed(conn: &mut tokio::net::tcp::OwnedReadHalf) -> String {
    let deadline = tokio::time::Instant::now() + CLOSED_WITHIN;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(deadline, conn.read(&mut buf)).await {
            Err(_) => panic!(
                "the connection is still open after {CLOSED_WITHIN:?}; got {:?}",
                String::from_utf8_lossy(&got)
            ),
            Ok(Ok(0) | Err(_)) => return String::from_utf8_lossy(&got).into_owned(),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

async fn trickled_request_head(app: TestApp) {
    let conn = TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
    let (mut reader, mut writer) = conn.into_split();
    writer
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
        .await
        .unwrap();
    let trickle = tokio::spawn(async move {
        // A byte a second keeps the connection busy but never finishes the head.
        let mut sent = 0;
        while writer.write_all(b"x").await.is_ok() {
            sent += 1;
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        sent
    });
    let got = read_until_closed(&mut reader).await;
    assert!(
        !got.contains(" 200 "),
        "no answer to a head never finished: {got}"
    );
    let sent = tokio::time::timeout(CLOSED_WITHIN, trickle)
        .await
        .expect("the trickler notices the closed connection")
        .unwrap();
    assert!(sent >= 2, "the client kept trickling ({sent} bytes)");
}

async fn idle_keep_alive(app: TestApp) {
    let conn = TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
    let (mut reader, mut writer) = conn.into_split();
    writer
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let got = read_until_closed(&mut reader).await;
    assert!(got.starts_with("HTTP/1.1 200"), "answered first: {got}");
    drop(writer);
}

fn handshake_url(app: &TestApp) -> String {
    app.url("/socket.io/?EIO=4&transport=polling")
}

/// Opens an engine.io session over polling; its sid.
async fn open_session(app: &TestApp) -> Result<String, reqwest::Response> {
    let r = app.http.get(handshake_url(app)).send().await.unwrap();
    if r.status() != 200 {
        return Err(r);
    }
    let text = r.text().await.unwrap();
    let open: Value = serde_json::from_str(text.trim_start_matches('0')).expect("an open packet");
    Ok(open["sid"].as_str().unwrap().to_owned())
}

async fn unconnected_engine_io_sessions_are_capped_and_closed(app: TestApp) {
    let alice = app.agent("alice@example.com", &["+15550001000"]).await;
    let started = Instant::now();
    let mut sids = Vec::new();
    for _ in 0..UNCONNECTED_SESSIONS {
        sids.push(open_session(&app).await.expect("room for another session"));
    }
    let refused = open_session(&app).await.expect_err("over the limit");
    assert_eq!(refused.status(), 503);
    assert!(refused.headers().contains_key("retry-after"));
    let (_, body) = read(refused).await;
    assert_eq!(body["error"]["code"], "busy");
    // Over websocket too.
    let ws = format!(
        "ws://127.0.0.1:{}/socket.io/?EIO=4&transport=websocket",
        app.port
    );
    match tokio_tungstenite::connect_async(ws).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 503),
        other => panic!(
            "a websocket handshake over the limit: {:?}",
            other.map(|_| ())
        ),
    }

    // A session that joins the namespace gives its place back at once.
    let joined = sids.remove(0);
    let post = app
        .http
        .post(format!("{}&sid={joined}", handshake_url(&app)))
        .body(format!("40{}", json!({"token": alice.token})))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 200);
    // Polls (past engine.io's pings) until the namespace's answer.
    loop {
        let poll = app
            .http
            .get(format!("{}&sid={joined}", handshake_url(&app)))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if poll.contains("40{") {
            break;
        }
        assert!(poll.split('\x1e').all(|p| p == "2"), "connected: {poll:?}");
    }
    sids.push(
        open_session(&app)
            .await
            .expect("the joined session's place"),
    );

    // The others are closed after 10 s without joining, and their places come back.
    let waiting = &sids[0];
    loop {
        let left = CLOSED_WITHIN.saturating_sub(started.elapsed());
        let r = tokio::time::timeout(
            left,
            app.http
                .get(format!("{}&sid={waiting}", handshake_url(&app)))
                .send(),
        )
        .await
        .expect("closed within 16 s")
        .unwrap();
        if r.status() != 200 {
            break;
        }
        let text = r.text().await.unwrap();
        if text.is_empty() || text.contains('1') {
            break;
        }
    }
    let left = CLOSED_WITHIN.saturating_sub(started.elapsed());
    wait_until_within(
        "the closed sessions' places to come back",
        left,
        async || {
            let opened = open_session(&app).await;
            if let Err(r) = &opened {
                assert_eq!(r.status(), 503);
            }
            opened.is_ok()
        },
    )
    .await;
}
