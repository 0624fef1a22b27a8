//! Slow and greedy clients at the connection level: request heads that never finish, idle
//! keep-alive connections, engine.io sessions that never join the namespace (in all and per
//! client address), and messages too large to read.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use crate::helpers::{Backend, TestApp, WAIT, read, run, wait_until_within};
use crate::on_both_backends;

/// The server's limits are 10 s; this leaves room for a loaded machine.
const CLOSED_WITHIN: Duration = Duration::from_secs(16);
/// How many engine.io sessions not yet connected to the namespace the server allows here.
const UNCONNECTED_SESSIONS: usize = 5;

/// How many engine.io sessions not yet connected one client address may hold (docs/security.md, "Limits").
const PER_ADDRESS: usize = 100;
/// The largest message a client may send.
const MAX_MESSAGE: usize = 64 * 1024;

on_both_backends! {
    unconnected_engine_io_sessions_are_capped_and_closed: Simulator.settings(|s| s.max_unconnected_sessions = UNCONNECTED_SESSIONS),
    a_websocket_frame_over_64_kib_is_refused_before_it_is_read: Simulator,
}

// Before any database work: SQLite alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_holds_at_most_100_unconnected_sessions() {
    run(Backend::Sqlite, TestApp::builder(), per_address_cap).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_the_forwarded_address_is_capped() {
    let app = TestApp::builder().env("TRUSTED_PROXIES", "127.0.0.1");
    run(Backend::Sqlite, app, per_forwarded_address_cap).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unauthenticated_websocket_frame_over_64_kib_closes_the_connection() {
    run(
        Backend::Sqlite,
        TestApp::builder(),
        unauthenticated_oversized_frame,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_polling_message_over_64_kib_is_refused_before_it_is_read() {
    run(Backend::Sqlite, TestApp::builder(), oversized_polling_post).await
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
    open_session_for(app, None).await
}

/// [`open_session`] through a proxy that says the client is `forwarded_for`.
async fn open_session_for(
    app: &TestApp,
    forwarded_for: Option<&str>,
) -> Result<String, reqwest::Response> {
    let mut request = app.http.get(handshake_url(app));
    if let Some(client) = forwarded_for {
        request = request.header("X-Forwarded-For", client);
    }
    let r = request.send().await.unwrap();
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

async fn per_address_cap(app: TestApp) {
    let mut sids = Vec::new();
    for _ in 0..PER_ADDRESS {
        sids.push(
            open_session(&app)
                .await
                .expect("within the address's share"),
        );
    }
    let refused = open_session(&app)
        .await
        .expect_err("over the address's share");
    assert_eq!(refused.status(), 503);
    let (_, body) = read(refused).await;
    assert_eq!(body["error"]["code"], "busy");
    assert_websocket_refused(&app).await;
    // A forwarded address proves nothing when the peer is no trusted proxy.
    let spoofed = open_session_for(&app, Some("203.0.113.9")).await;
    assert_eq!(spoofed.expect_err("still this address").status(), 503);
}

async fn per_forwarded_address_cap(app: TestApp) {
    let client = "203.0.113.7";
    for _ in 0..PER_ADDRESS {
        open_session_for(&app, Some(client))
            .await
            .expect("within the client's share");
    }
    let refused = open_session_for(&app, Some(client)).await;
    assert_eq!(refused.expect_err("over its share").status(), 503);
    // A client of its own further left is the proxy's word for someone else.
    let spoofing = format!("198.51.100.1, {client}");
    assert_eq!(
        open_session_for(&app, Some(&spoofing))
            .await
            .expect_err("the nearest untrusted address is the client")
            .status(),
        503
    );
    open_session_for(&app, Some("203.0.113.8"))
        .await
        .expect("another client behind the same proxy");
    open_session(&app)
        .await
        .expect("the proxy's own requests are another client");
}

/// A websocket handshake of this address is answered `503`.
async fn assert_websocket_refused(app: &TestApp) {
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
}

/// An engine.io websocket spoken by hand, so a test can send what no client library would:
/// a frame header announcing more than it sends.
struct RawWebsocket {
    reader: OwnedReadHalf,
    writer: OwnedWriteHalf,
}

const TEXT: u8 = 0x1;
const CONTINUATION: u8 = 0x0;

impl RawWebsocket {
    /// Upgrades, and reads engine.io's open packet.
    async fn open(app: &TestApp) -> Self {
        let conn = TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
        let (mut reader, mut writer) = conn.into_split();
        writer
            .write_all(
                b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1\r\n\
                  Upgrade: websocket\r\nConnection: Upgrade\r\n\
                  Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
            )
            .await
            .unwrap();
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut byte = [0u8];
            reader.read_exact(&mut byte).await.unwrap();
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head);
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        let mut ws = Self { reader, writer };
        let open = ws.text().await.expect("the open packet");
        assert!(open.starts_with("0{"), "{open}");
        ws
    }

    /// Sends a frame header saying `length` bytes follow, then `payload` (masked with a
    /// zero key, as a client must mask). Write errors are ignored: the server may have
    /// closed the connection already, which is what the tests look for.
    async fn frame(&mut self, fin: bool, opcode: u8, length: usize, payload: &[u8]) {
        let mut frame = vec![if fin { 0x80 } else { 0 } | opcode];
        match length {
            0..=125 => frame.push(0x80 | length as u8),
            126..=0xffff => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(length as u16).to_be_bytes());
            }
            _ => {
                frame.push(0x80 | 127);
                frame.extend_from_slice(&(length as u64).to_be_bytes());
            }
        }
        frame.extend_from_slice(&[0; 4]);
        frame.extend_from_slice(payload);
        let _ = self.writer.write_all(&frame).await;
    }

    async fn send(&mut self, text: &str) {
        self.frame(true, TEXT, text.len(), text.as_bytes()).await;
    }

    /// The next text frame from the server (skipping engine.io's pings); `None` once the
    /// connection is closed.
    async fn text(&mut self) -> Option<String> {
        loop {
            let mut header = [0u8; 2];
            self.reader.read_exact(&mut header).await.ok()?;
            let length = match header[1] & 0x7f {
                126 => {
                    let mut l = [0u8; 2];
                    self.reader.read_exact(&mut l).await.ok()?;
                    u16::from_be_bytes(l) as usize
                }
                127 => {
                    let mut l = [0u8; 8];
                    self.reader.read_exact(&mut l).await.ok()?;
                    u64::from_be_bytes(l) as usize
                }
                n => n as usize,
            };
            let mut payload = vec![0u8; length];
            self.reader.read_exact(&mut payload).await.ok()?;
            match header[0] & 0x0f {
                TEXT => {
                    let text = String::from_utf8(payload).unwrap();
                    if text != "2" {
                        return Some(text);
                    }
                }
                0x8 => return None,
                _ => {}
            }
        }
    }

    /// Waits until the server closes the connection, for at most `within`.
    async fn closed_within(&mut self, within: Duration, what: &str) {
        let closed = tokio::time::timeout(within, async {
            while let Some(text) = self.text().await {
                assert!(!text.starts_with("42"), "{what}: an event after it: {text}");
            }
        })
        .await;
        assert!(closed.is_ok(), "{what}: still open after {within:?}");
    }
}

/// A 15 MiB frame announced, 128 KiB of it sent.
async fn oversized_frame(ws: &mut RawWebsocket) {
    let part = vec![b'x'; 2 * MAX_MESSAGE];
    ws.frame(true, TEXT, 15 << 20, &part).await;
}

async fn unauthenticated_oversized_frame(app: TestApp) {
    let mut ws = RawWebsocket::open(&app).await;
    oversized_frame(&mut ws).await;
    // Well before a session that never joins is closed anyway.
    ws.closed_within(smsdesk::realtime::CONNECT_TIMEOUT / 2, "a 15 MiB frame")
        .await;

    // Nor can the message come in frames each under the limit.
    let mut ws = RawWebsocket::open(&app).await;
    let part = vec![b'x'; MAX_MESSAGE / 2];
    ws.frame(false, TEXT, part.len(), &part).await;
    for _ in 0..2 {
        ws.frame(false, CONTINUATION, part.len(), &part).await;
    }
    ws.closed_within(
        smsdesk::realtime::CONNECT_TIMEOUT / 2,
        "a 96 KiB message in 32 KiB frames",
    )
    .await;
}

async fn a_websocket_frame_over_64_kib_is_refused_before_it_is_read(app: TestApp) {
    let alice = app.agent("alice@example.com", &["+15550001000"]).await;
    let mut ws = RawWebsocket::open(&app).await;
    ws.send(&format!("40{}", json!({"token": alice.token})))
        .await;
    let connected = ws.text().await.expect("connected");
    assert!(connected.starts_with("40{"), "{connected}");
    // A message just under the limit is read (and ignored: not a typing event's shape).
    let filler = "x".repeat(MAX_MESSAGE - 100);
    ws.send(&format!("42{}", json!(["typing", {"filler": filler}])))
        .await;
    ws.send("40/elsewhere,").await;
    let answer = ws.text().await.expect("still open");
    assert!(answer.starts_with("44/elsewhere,"), "{answer}");

    oversized_frame(&mut ws).await;
    ws.closed_within(WAIT, "a 15 MiB frame from a connected socket")
        .await;
    let mut socket = app.socket(&alice).await;
    app.inbound("+14155550123", "+15550001000", "still serving")
        .await;
    assert_eq!(socket.next("message:new").await["body"], "still serving");
}

async fn oversized_polling_post(app: TestApp) {
    let sid = open_session(&app).await.expect("a session");
    let conn = TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
    let (mut reader, mut writer) = conn.into_split();
    let declared = 15 << 20;
    writer
        .write_all(
            format!(
                "POST /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\n\
                 Host: 127.0.0.1\r\nContent-Type: text/plain;charset=UTF-8\r\n\
                 Content-Length: {declared}\r\n\r\n4"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let _ = writer.write_all(&vec![b'x'; 2 * MAX_MESSAGE]).await;
    let mut answer = [0u8; 12];
    tokio::time::timeout(WAIT, reader.read_exact(&mut answer))
        .await
        .expect("an answer before the rest of the body")
        .unwrap();
    assert_eq!(&answer, b"HTTP/1.1 413");
    // The session is closed too.
    let r = app
        .http
        .get(format!("{}&sid={sid}", handshake_url(&app)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "{:?}", r.text().await);
}
