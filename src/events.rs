//! The one path from "this changed" to "who hears about it". Writes return what they changed
//! together with its audience, read in the write's own transaction
//! ([`MessageChange`], [`ConversationChange`]); this module turns that into the socket.io
//! events of docs/api.md ("socket.io"), each serialised once and sent to the rooms of its whole audience at
//! once; a canned reply's change goes to [`AGENTS_ROOM`], which every agent's sockets join.
//! Nothing else emits, or disconnects sockets.
//!
//! With `REDIS_URL` set, events and disconnects go through socketioxide's Redis adapter and
//! reach the sockets of every instance. When Redis is down, or a publish fails (the adapter
//! then has delivered nothing, not even here), they reach this instance's sockets only; once
//! Redis is back, `resync` tells this instance's sockets to catch up, and every instance's
//! when some events reached this one's only.
//!
//! Publishing never fails a request: a client that misses an event catches up through `sync`.
//! Once the sockets are closed at shutdown, publishing does nothing.

mod order;
mod redis;

use order::CommitOrder;
pub use redis::{Channels, Redis, RedisAdapter};

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::ser::SerializeTuple;
use serde::{Serialize, Serializer};
use sha2::{Digest, Sha256};
use socketioxide::adapter::{Adapter, Emitter};
use socketioxide::operators::BroadcastOperators;
use socketioxide::{BroadcastError, SocketIo};
use tokio::sync::watch;

use crate::model::{
    AgentId, Conversation, ConversationId, Message, Reply, ReplyDeleted, ReplyId, TypingEvent,
};
use crate::store::{Audience, ConversationChange, MessageChange, MessageEvent};

/// The room of an agent's sockets: every event about their conversations goes there.
pub fn room(agent: AgentId) -> String {
    format!("user:{agent}")
}

/// The room every agent's sockets join: what every agent hears about (canned replies).
pub const AGENTS_ROOM: &str = "agents";

/// The room of one session's sockets. Named after a digest of the token's hash, so room
/// names (which may be logged) show neither the token nor the database key.
pub fn session_room(token_hash: &str) -> String {
    let digest = Sha256::digest(format!("session room {token_hash}"));
    format!("session:{}", URL_SAFE_NO_PAD.encode(&digest[..12]))
}

/// socket.io with the Redis adapter.
pub type RedisIo = SocketIo<RedisAdapter<Emitter>>;

/// The key that claims the relay of an agent's typing in a conversation for a moment,
/// across every instance ([`Events::claim_typing`]; in Redis, under the `smsdesk:` prefix).
fn typing_key(agent: AgentId, conversation: ConversationId) -> String {
    format!("typing:{agent}:{conversation}")
}

/// An event's payload of no arguments at all (`["resync"]`, not `["resync", null]`).
struct NoArguments;

impl Serialize for NoArguments {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_tuple(0)?.end()
    }
}

/// The default namespace, or `None` once it is closed (at shutdown), when socketioxide's
/// own shortcuts (`io.to`, `io.local`) would panic.
fn namespace<A: Adapter>(io: &SocketIo<A>) -> Option<BroadcastOperators<A>> {
    let ns = io.of("/");
    if ns.is_none() {
        tracing::debug!("[Socket.io] closed: nothing emitted");
    }
    ns
}

/// Whether a disconnect reaches every instance or only this one's sockets.
#[derive(Clone, Copy)]
enum Reach {
    Everywhere,
    Here,
}

#[derive(Clone)]
pub struct Events {
    io: Io,
    /// Keeps each conversation's `conversation:updated` in the order its writes committed.
    order: Arc<CommitOrder>,
}

#[derive(Clone)]
enum Io {
    /// One instance: its sockets are all there are.
    Memory(SocketIo),
    /// Several instances, through Redis.
    Redis(RedisIo, Redis),
}

impl Events {
    /// One instance, in memory.
    pub fn in_memory(io: SocketIo) -> Self {
        Self {
            io: Io::Memory(io),
            order: Arc::new(CommitOrder::new()),
        }
    }

    /// Every instance connected to `redis`.
    pub fn through_redis(io: RedisIo, redis: Redis) -> Self {
        Self {
            io: Io::Redis(io, redis),
            order: Arc::new(CommitOrder::new()),
        }
    }

    /// `None` without `REDIS_URL`; else whether events reach the other instances now.
    pub fn redis_up(&self) -> Option<bool> {
        match &self.io {
            Io::Memory(_) => None,
            Io::Redis(_, redis) => Some(redis.is_up()),
        }
    }

    /// With `REDIS_URL`: changes each time this instance subscribed again to the other
    /// instances' events, after missing some.
    pub fn resubscriptions(&self) -> Option<watch::Receiver<u64>> {
        match &self.io {
            Io::Memory(_) => None,
            Io::Redis(_, redis) => Some(redis.subscriptions()),
        }
    }

    /// Whether `agent`'s typing in `conversation` may be relayed now as far as the other
    /// instances are concerned: none relayed it within `window`. Without Redis, or while it
    /// cannot tell, this instance's own limit is all there is.
    pub async fn claim_typing(
        &self,
        agent: AgentId,
        conversation: ConversationId,
        window: std::time::Duration,
    ) -> bool {
        match &self.io {
            Io::Memory(_) => true,
            Io::Redis(_, redis) => redis
                .claim(&typing_key(agent, conversation), window)
                .await
                .unwrap_or(true),
        }
    }

    /// Tells every socket of this instance to catch up through `sync` (`resync`, no
    /// payload): events of the other instances may have missed them.
    pub async fn resync_here(&self) {
        let sent = match &self.io {
            Io::Memory(io) => match namespace(io) {
                Some(ns) => ns.local().emit("resync", &NoArguments).await,
                None => return,
            },
            Io::Redis(io, _) => match namespace(io) {
                Some(ns) => ns.local().emit("resync", &NoArguments).await,
                None => return,
            },
        };
        match sent {
            Ok(()) => tracing::info!("[Socket.io] 📤 Emitted resync to this instance's sockets"),
            Err(e) => tracing::warn!(error = %e, "[Socket.io] resync failed"),
        }
    }

    /// Once this instance is subscribed to Redis again: tells its sockets to catch up
    /// ([`Events::resync_here`]), since what the other instances published meanwhile never
    /// reached them. If it delivered events to its own sockets only meanwhile, every
    /// instance's sockets missed those, and are told too: each instance sends this when it
    /// is subscribed again, so an instance that got back before this one did cannot have
    /// told its sockets of what this one delivered after.
    pub async fn resync_after_outage(&self) {
        match &self.io {
            Io::Redis(_, redis) if redis.take_delivered_here_only() => {
                self.emit_to(agents_room, 1, "resync", "resync", &NoArguments)
                    .await;
            }
            _ => self.resync_here().await,
        }
    }

    /// Closes every socket of this instance, then the connection to Redis.
    pub async fn close(&self) {
        match &self.io {
            Io::Memory(io) => io.close().await,
            Io::Redis(io, redis) => {
                io.close().await;
                redis.quit().await;
            }
        }
    }

    /// A message was stored (`message:new`) or changed (`message:status`), then the
    /// conversation too if the write changed it (`conversation:updated`).
    pub async fn message(&self, change: &MessageChange) {
        match change.event {
            MessageEvent::New => self.new_message(&change.audience, &change.message).await,
            MessageEvent::Status => self.message_status(&change.audience, &change.message).await,
        }
        if let Some(conversation) = &change.conversation {
            self.conversation_updated(&change.audience, conversation)
                .await;
        }
    }

    /// A conversation changed: `conversation:updated`.
    pub async fn conversation(&self, change: &ConversationChange) {
        self.conversation_updated(&change.audience, &change.conversation)
            .await;
    }

    /// A canned reply was added or changed: `reply:changed`, to every agent.
    pub async fn reply_changed(&self, reply: &Reply) {
        self.emit_to(agents_room, 1, "reply:changed", "reply change", reply)
            .await;
    }

    /// A canned reply was deleted: `reply:deleted`, to every agent.
    pub async fn reply_deleted(&self, id: ReplyId) {
        let deleted = ReplyDeleted { id };
        self.emit_to(agents_room, 1, "reply:deleted", "reply deletion", &deleted)
            .await;
    }

    /// An agent started or stopped typing: `typing`, to `audience` (the others).
    pub async fn typing(&self, audience: &Audience, event: &TypingEvent) {
        self.emit(audience, "typing", "typing", event).await;
    }

    /// Disconnects every socket opened with these sessions (by token hash), on every
    /// instance, at once. The sessions themselves are already ended.
    pub async fn end_sessions<H: AsRef<str>>(&self, token_hashes: &[H]) {
        self.disconnect(token_hashes, Reach::Everywhere).await;
    }

    /// Disconnects this instance's sockets opened with these sessions (by token hash), at
    /// once: each instance finds its own sockets whose sessions ended.
    pub async fn end_sessions_here<H: AsRef<str>>(&self, token_hashes: &[H]) {
        self.disconnect(token_hashes, Reach::Here).await;
    }

    async fn disconnect<H: AsRef<str>>(&self, token_hashes: &[H], reach: Reach) {
        if token_hashes.is_empty() {
            return;
        }
        let sessions = token_hashes.len();
        let rooms = || -> Vec<String> {
            token_hashes
                .iter()
                .map(|h| session_room(h.as_ref()))
                .collect()
        };
        let done = match &self.io {
            Io::Memory(io) => match namespace(io) {
                Some(ns) => ns.to(rooms()).disconnect().await,
                None => return,
            },
            Io::Redis(io, redis) => 'done: {
                let Some(ns) = namespace(io) else { return };
                if matches!(reach, Reach::Everywhere) && redis.is_up() {
                    match ns.clone().to(rooms()).disconnect().await {
                        Err(BroadcastError::Adapter(e)) => fell_back("disconnect", &e),
                        done => break 'done done,
                    }
                }
                ns.local().to(rooms()).disconnect().await
            }
        };
        match done {
            Ok(()) => tracing::debug!(
                sessions,
                "[Socket.io] disconnected the sockets of ended sessions"
            ),
            Err(e) => tracing::warn!(error = %e, "[Socket.io] could not disconnect ended sessions"),
        }
    }

    async fn new_message(&self, audience: &Audience, message: &Message) {
        self.emit(audience, "message:new", "new message", message)
            .await;
    }

    async fn message_status(&self, audience: &Audience, message: &Message) {
        let status = message.status_event();
        self.emit(audience, "message:status", "status update", &status)
            .await;
    }

    /// `conversation:updated`, unless a later state of the conversation went out already
    /// (`order.rs`).
    async fn conversation_updated(&self, audience: &Audience, conversation: &Conversation) {
        let Some(_turn) = self.order.turn(conversation.id, conversation.version).await else {
            tracing::debug!(conversation = %conversation.id, "a later state went out already");
            return;
        };
        self.emit(
            audience,
            "conversation:updated",
            "conversation update",
            conversation,
        )
        .await;
    }

    /// Emits to the rooms of `audience`'s agents.
    async fn emit<T: Serialize + ?Sized>(
        &self,
        audience: &Audience,
        event: &'static str,
        what: &str,
        payload: &T,
    ) {
        if audience.agents().is_empty() {
            return;
        }
        let rooms = || -> Vec<String> { audience.agents().iter().copied().map(room).collect() };
        let count = audience.agents().len();
        self.emit_to(rooms, count, event, what, payload).await;
    }

    /// Emits to the `count` rooms `rooms` makes, called only when they are needed: room
    /// names are not formatted for a log line no one reads.
    async fn emit_to<T: Serialize + ?Sized>(
        &self,
        rooms: impl Fn() -> Vec<String>,
        count: usize,
        event: &'static str,
        what: &str,
        payload: &T,
    ) {
        let sent = match &self.io {
            Io::Memory(io) => match namespace(io) {
                Some(ns) => ns.to(rooms()).emit(event, payload).await,
                None => return,
            },
            Io::Redis(io, redis) => 'sent: {
                let Some(ns) = namespace(io) else { return };
                if redis.publishing() {
                    match ns.clone().to(rooms()).emit(event, payload).await {
                        Err(BroadcastError::Adapter(e)) => {
                            fell_back(event, &e);
                            redis.delivered_here_only();
                        }
                        sent => break 'sent sent,
                    }
                }
                ns.local().to(rooms()).emit(event, payload).await
            }
        };
        match sent {
            Ok(()) => {
                crate::monitoring::events_emitted(event, count);
                // The seed's line per room.
                if tracing::enabled!(tracing::Level::INFO) {
                    for r in rooms() {
                        tracing::info!("[Socket.io] 📤 Emitted {what} to {r}");
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, event, "[Socket.io] emit failed"),
        }
    }
}

/// [`AGENTS_ROOM`], as the rooms of an emit.
fn agents_room() -> Vec<String> {
    vec![AGENTS_ROOM.to_owned()]
}

/// The adapter failed before delivering anywhere: the caller delivers here instead.
fn fell_back(what: &str, error: &dyn std::fmt::Display) {
    tracing::warn!(
        error = %error,
        what,
        "[Socket.io] Redis failed; delivering to this instance's sockets only"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_rooms_hide_the_token_hash() {
        let hash = "k4yS7dC3sZ0lq9xVw2bN8mT5rE1uJ6hG4fA0pL7oI3c";
        let room = session_room(hash);
        assert!(room.starts_with("session:"));
        assert!(!room.contains(hash));
        assert_eq!(room, session_room(hash));
        assert_ne!(room, session_room("another hash"));
    }

    #[test]
    fn resync_has_no_arguments() {
        assert_eq!(serde_json::to_string(&NoArguments).unwrap(), "[]");
    }

    /// A send that completes while the server shuts down publishes after the sockets are
    /// closed: nothing happens, and nothing panics (socketioxide's `io.to` would).
    #[tokio::test]
    async fn publishing_after_the_sockets_closed_does_nothing() {
        let (_layer, io) = SocketIo::new_layer();
        io.ns("/", async |_: socketioxide::extract::SocketRef| {});
        let events = Events::in_memory(io);
        events.close().await;
        let agent: AgentId = "7".parse().unwrap();
        let typing = TypingEvent {
            conversation_id: "3".parse().unwrap(),
            agent_id: agent,
            agent_name: "Ana".into(),
            is_typing: true,
        };
        events.typing(&Audience::of(vec![agent]), &typing).await;
        events.resync_here().await;
        events.end_sessions(&["a token hash"]).await;
        events.end_sessions_here(&["a token hash"]).await;
    }
}
