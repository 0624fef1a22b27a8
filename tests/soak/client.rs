//! The soak's sockets (`tests/soak/harness.rs`): each a lean engine.io client over a
//! websocket, as many as a thousand in one process, that does what the page does to miss
//! nothing: `sync` on every connect and on `resync`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::Message as Frame;

use crate::harness::{Ctx, RETRY_AFTER, SocketCount};

/// One socket's state: the inbound messages of its agent it saw, as bits by the message's
/// place among its agent's (`n / agents`), live and through `sync`.
pub struct Client {
    pub agent: usize,
    live: Mutex<Vec<u64>>,
    synced: Mutex<Vec<u64>>,
    cursor: Mutex<i64>,
    pub connects: AtomicU64,
    sync_wanted: Notify,
}

impl Client {
    pub fn new(agent: usize) -> Self {
        Self {
            agent,
            live: Mutex::default(),
            synced: Mutex::default(),
            cursor: Mutex::new(0),
            connects: AtomicU64::new(0),
            sync_wanted: Notify::new(),
        }
    }

    /// Marks `message` if it is one of the load's inbound messages.
    fn mark(&self, bits: &Mutex<Vec<u64>>, agents: usize, message: &Value) {
        let Some(n) = message["body"]
            .as_str()
            .and_then(|b| b.strip_prefix("in "))
            .and_then(|n| n.parse::<usize>().ok())
        else {
            return;
        };
        let i = n / agents;
        let mut bits = bits.lock().unwrap();
        if bits.len() <= i / 64 {
            bits.resize(i / 64 + 1, 0);
        }
        bits[i / 64] |= 1 << (i % 64);
    }

    pub fn count(&self, expected: usize, agents: usize) -> SocketCount {
        let live = self.live.lock().unwrap();
        let synced = self.synced.lock().unwrap();
        let bit =
            |bits: &[u64], i: usize| bits.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0);
        let (mut l, mut r, mut m) = (0, 0, 0);
        let mut missed = Vec::new();
        for i in 0..expected {
            match (bit(&live, i), bit(&synced, i)) {
                (true, _) => l += 1,
                (false, true) => r += 1,
                (false, false) => {
                    m += 1;
                    if missed.len() < 10 {
                        missed.push(i * agents + self.agent);
                    }
                }
            }
        }
        SocketCount {
            live: l,
            recovered: r,
            missing: m,
            connects: self.connects.load(Ordering::SeqCst),
            missed,
        }
    }
}

/// A socket of `client`'s agent through nginx, connected again whenever it drops.
pub async fn socket(ctx: Arc<Ctx>, client: Arc<Client>) {
    let url = format!(
        "{}/socket.io/?EIO=4&transport=websocket",
        ctx.lb.replacen("http", "ws", 1)
    );
    let auth = format!("40{}", json!({"token": ctx.tokens[client.agent]}));
    loop {
        if let Ok(Ok((mut ws, _))) = tokio::time::timeout(
            Duration::from_secs(10),
            tokio_tungstenite::connect_async(&url),
        )
        .await
        {
            while let Some(Ok(frame)) = ws.next().await {
                let Frame::Text(text) = frame else {
                    continue;
                };
                let text = text.as_str();
                if text.starts_with('0') {
                    if ws.send(Frame::text(auth.clone())).await.is_err() {
                        break;
                    }
                } else if text.starts_with("40") {
                    client.connects.fetch_add(1, Ordering::SeqCst);
                    client.sync_wanted.notify_one();
                } else if text == "2" {
                    if ws.send(Frame::text("3")).await.is_err() {
                        break;
                    }
                } else if let Some(event) = text.strip_prefix("42") {
                    let Ok(Value::Array(event)) = serde_json::from_str::<Value>(event) else {
                        continue;
                    };
                    match event.first().and_then(Value::as_str) {
                        Some("message:new") => {
                            client.mark(&client.live, ctx.agents, &event[1]);
                        }
                        Some("resync") => client.sync_wanted.notify_one(),
                        _ => {}
                    }
                } else {
                    // A refused handshake (44), a disconnect (41) or a close (1).
                    break;
                }
            }
        }
        let pause = rand::random::<u64>() % 1000;
        tokio::time::sleep(RETRY_AFTER + Duration::from_millis(pause)).await;
    }
}

/// `sync` from the client's cursor, page by page, whenever its socket (re)connects or is
/// told to `resync`, as `static/js/sync.js` does; retried until it reaches the end.
pub async fn syncing(ctx: Arc<Ctx>, client: Arc<Client>) {
    loop {
        client.sync_wanted.notified().await;
        loop {
            let since = *client.cursor.lock().unwrap();
            let answer = ctx
                .http
                .get(format!(
                    "{}/api/crm/sms/sync?since={since}&limit=1000",
                    ctx.lb
                ))
                .bearer_auth(&ctx.tokens[client.agent])
                .send()
                .await;
            let page: Option<Value> = match answer {
                Ok(r) if r.status() == 200 => r.json().await.ok(),
                _ => None,
            };
            let Some(page) = page else {
                tokio::time::sleep(RETRY_AFTER).await;
                continue;
            };
            for m in page["messages"].as_array().into_iter().flatten() {
                client.mark(&client.synced, ctx.agents, m);
            }
            *client.cursor.lock().unwrap() = page["cursor"].as_i64().unwrap_or(since);
            if page["hasMore"] != true {
                break;
            }
        }
    }
}
