//! The socket.io client: connects as the page does (websocket only, authenticated by token or
//! by cookie and `Origin`), reports the handshake's refusal, and keeps every event received so
//! a test can await the one it needs.

use std::collections::{HashMap, VecDeque};

use futures_util::FutureExt;
use rust_socketio::asynchronous::{Client, ClientBuilder};
use rust_socketio::{Event, Payload};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{TestApp, WAIT};

/// How a socket proves who it is in the handshake.
pub enum SocketAuth {
    None,
    Token(String),
    Cookie {
        token: String,
        origin: Option<String>,
    },
}

/// A connected socket and the events it received that no test took yet.
pub struct Socket {
    client: Client,
    rx: mpsc::UnboundedReceiver<(String, Value)>,
    buffered: HashMap<String, VecDeque<Value>>,
    /// Receives once the server disconnects this socket from the namespace, or the
    /// connection is lost.
    closed: mpsc::UnboundedReceiver<()>,
}

impl Socket {
    /// Connects and waits for the server's answer: `Err(message)` on `connect_error`.
    pub async fn connect(app: &TestApp, auth: SocketAuth) -> Result<Socket, String> {
        Self::connect_to(&app.addr, auth).await
    }

    /// [`Socket::connect`] to a server at `url` (an instance of its own, or a balancer).
    pub async fn connect_to(url: &str, auth: SocketAuth) -> Result<Socket, String> {
        let (tx, rx) = mpsc::unbounded_channel();
        let (status_tx, mut status_rx) = mpsc::unbounded_channel::<Result<(), String>>();
        let (closed_tx, closed) = mpsc::unbounded_channel::<()>();
        let on_connect = status_tx.clone();
        let on_error = closed_tx.clone();
        // Websocket only, as the page does: no polling-to-websocket upgrade to reorder packets.
        let mut builder = ClientBuilder::new(url.to_owned())
            .namespace("/")
            .transport_type(rust_socketio::TransportType::Websocket)
            .reconnect(false)
            .on(Event::Connect, move |_, _| {
                let _ = on_connect.send(Ok(()));
                async {}.boxed()
            })
            .on(Event::Close, move |_, _| {
                let _ = closed_tx.send(());
                async {}.boxed()
            })
            .on(Event::Error, move |payload, _| {
                let text = match payload {
                    Payload::Text(v) => v
                        .iter()
                        .map(|x| x.to_string())
                        .collect::<Vec<_>>()
                        .join(" "),
                    #[allow(deprecated)]
                    Payload::String(s) => s,
                    Payload::Binary(_) => String::new(),
                };
                let _ = status_tx.send(Err(text));
                // After the handshake, an error is a lost connection (its server died):
                // rust_socketio then ends without a `Close`.
                let _ = on_error.send(());
                async {}.boxed()
            })
            .on_any(move |event, payload, _| {
                match (event, payload) {
                    (Event::Custom(name), Payload::Text(values)) => {
                        let _ = tx.send((name, values.into_iter().next().unwrap_or(Value::Null)));
                    }
                    // An event without arguments (`["resync"]`): rust_socketio takes its name
                    // for the data of a `message` event.
                    (Event::Message, Payload::Text(values)) => {
                        if let [Value::String(name)] = values.as_slice() {
                            let _ = tx.send((name.clone(), Value::Null));
                        }
                    }
                    _ => {}
                }
                async {}.boxed()
            });
        match auth {
            SocketAuth::None => {}
            SocketAuth::Token(t) => builder = builder.auth(json!({"token": t})),
            SocketAuth::Cookie { token, origin } => {
                builder = builder.opening_header("Cookie", format!("smsdesk_session={token}"));
                if let Some(o) = origin {
                    builder = builder.opening_header("Origin", o);
                }
            }
        }
        let client = builder.connect().await.map_err(|e| e.to_string())?;
        let answer = tokio::time::timeout(WAIT, status_rx.recv())
            .await
            .map_err(|_| "no answer to the handshake".to_string())?
            .unwrap_or(Err("closed".into()));
        match answer {
            Ok(()) => Ok(Socket {
                client,
                rx,
                buffered: HashMap::new(),
                closed,
            }),
            Err(e) => {
                let _ = client.disconnect().await;
                Err(e)
            }
        }
    }

    /// The next `event` received, keeping other events for later calls.
    pub async fn next(&mut self, event: &str) -> Value {
        self.next_before(event, Instant::now() + WAIT)
            .await
            .unwrap_or_else(|| panic!("no `{event}` event within {WAIT:?}"))
    }

    /// The next `event` that satisfies `pred`, dropping earlier ones of that name.
    pub async fn next_where(&mut self, event: &str, pred: impl Fn(&Value) -> bool) -> Value {
        loop {
            let v = self.next(event).await;
            if pred(&v) {
                return v;
            }
        }
    }

    /// The next `event` received before `deadline`, keeping other events for later calls;
    /// `None` once the deadline has passed.
    pub async fn next_before(&mut self, event: &str, deadline: Instant) -> Option<Value> {
        if let Some(v) = self.buffered.get_mut(event).and_then(VecDeque::pop_front) {
            return Some(v);
        }
        loop {
            let (name, value) = tokio::time::timeout_at(deadline, self.rx.recv())
                .await
                .ok()?
                .expect("the socket is open");
            if name == event {
                return Some(value);
            }
            self.buffered.entry(name).or_default().push_back(value);
        }
    }

    pub async fn emit(&self, event: &str, data: Value) {
        self.client.emit(event, data).await.expect("emit");
    }

    /// [`Socket::emit`] that says so when the connection is gone instead of failing the test.
    pub async fn try_emit(&self, event: &str, data: Value) -> Result<(), String> {
        self.client
            .emit(event, data)
            .await
            .map_err(|e| e.to_string())
    }

    /// Waits until the server disconnects this socket, or its connection is lost.
    pub async fn closed(&mut self) {
        tokio::time::timeout(WAIT, self.closed.recv())
            .await
            .unwrap_or_else(|_| panic!("the server did not disconnect the socket within {WAIT:?}"));
    }

    /// Every `event` received so far, without waiting.
    pub fn received(&mut self, event: &str) -> Vec<Value> {
        while let Ok((name, value)) = self.rx.try_recv() {
            self.buffered.entry(name).or_default().push_back(value);
        }
        self.buffered
            .get_mut(event)
            .map(|q| q.drain(..).collect())
            .unwrap_or_default()
    }

    /// Leaves, as a closed tab does.
    pub async fn disconnect(self) {
        self.client.disconnect().await.expect("disconnect");
    }
}
