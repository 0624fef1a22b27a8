//! The one path from "this changed" to "who hears about it". Writes return what they changed
//! together with its audience, read in the write's own transaction
//! ([`MessageChange`], [`ConversationChange`]); this module turns that into the socket.io
//! events of contract §6, each serialised once and sent to the rooms of its whole audience at
//! once; a canned reply's change goes to [`AGENTS_ROOM`], which every agent's sockets join.
//! Nothing else emits, or disconnects sockets.
//!
//! With `REDIS_URL` set, events and disconnects go through socketioxide's Redis adapter and
//! reach the sockets of every instance. When Redis is down, or a publish fails (the adapter
//! then has delivered nothing, not even here), they reach this instance's sockets only.
//!
//! Publishing never fails a request: a client that misses an event catches up through `sync`.

mod redis;

pub use redis::Redis;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use sha2::{Digest, Sha256};
use socketioxide::adapter::Emitter;
use socketioxide::{BroadcastError, SocketIo};
use socketioxide_redis::FredAdapter;

use crate::model::{AgentId, Conversation, Message, Reply, ReplyDeleted, ReplyId, TypingEvent};
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
pub type RedisIo = SocketIo<FredAdapter<Emitter>>;

#[derive(Clone)]
pub struct Events {
    io: Io,
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
        Self { io: Io::Memory(io) }
    }

    /// Every instance connected to `redis`.
    pub fn through_redis(io: RedisIo, redis: Redis) -> Self {
        Self {
            io: Io::Redis(io, redis),
        }
    }

    /// `None` without `REDIS_URL`; else whether events reach the other instances now.
    pub fn redis_up(&self) -> Option<bool> {
        match &self.io {
            Io::Memory(_) => None,
            Io::Redis(_, redis) => Some(redis.is_up()),
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

    /// Disconnects every socket opened with these sessions (by token hash), at once. The
    /// sessions themselves are already deleted.
    pub async fn end_sessions(&self, token_hashes: &[String]) {
        self.disconnect(token_hashes.iter().map(|h| session_room(h)).collect())
            .await;
    }

    /// Disconnects every socket in these session rooms, at once.
    pub async fn disconnect(&self, session_rooms: Vec<String>) {
        if session_rooms.is_empty() {
            return;
        }
        let sessions = session_rooms.len();
        let done = match &self.io {
            Io::Memory(io) => io.to(session_rooms).disconnect().await,
            Io::Redis(io, redis) => 'done: {
                if redis.is_up() {
                    match io.to(session_rooms.clone()).disconnect().await {
                        Err(BroadcastError::Adapter(e)) => fell_back("disconnect", &e),
                        done => break 'done done,
                    }
                }
                io.local().to(session_rooms).disconnect().await
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

    async fn conversation_updated(&self, audience: &Audience, conversation: &Conversation) {
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
            Io::Memory(io) => io.to(rooms()).emit(event, payload).await,
            Io::Redis(io, redis) => 'sent: {
                if redis.is_up() {
                    match io.to(rooms()).emit(event, payload).await {
                        Err(BroadcastError::Adapter(e)) => fell_back(event, &e),
                        sent => break 'sent sent,
                    }
                }
                io.local().to(rooms()).emit(event, payload).await
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
}
