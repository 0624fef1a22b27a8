//! The one path from "this changed" to "who hears about it". Writes return what they changed
//! together with its audience, read in the write's own transaction
//! ([`MessageChange`], [`ConversationChange`]); this module turns that into the socket.io
//! events of contract §6, each serialised once and sent to the rooms of its whole audience at
//! once. Nothing else emits, or disconnects sockets, so this is where an adapter for several
//! server instances plugs in.
//!
//! Publishing never fails a request: a client that misses an event catches up through `sync`.

use serde::Serialize;
use socketioxide::SocketIo;

use crate::model::{Conversation, Message, TypingEvent};
use crate::realtime::{room, session_room};
use crate::store::{Audience, ConversationChange, MessageChange, MessageEvent};

#[derive(Clone)]
pub struct Events {
    io: SocketIo,
}

impl Events {
    pub fn new(io: SocketIo) -> Self {
        Self { io }
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
        match self.io.to(session_rooms).disconnect().await {
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

    async fn emit<T: Serialize + ?Sized>(
        &self,
        audience: &Audience,
        event: &str,
        what: &str,
        payload: &T,
    ) {
        if audience.agents().is_empty() {
            return;
        }
        let rooms: Vec<String> = audience.agents().iter().copied().map(room).collect();
        match self.io.to(rooms.clone()).emit(event, payload).await {
            Ok(()) => {
                for r in rooms {
                    tracing::info!("[Socket.io] 📤 Emitted {what} to {r}");
                }
            }
            Err(e) => tracing::warn!(error = %e, event, "[Socket.io] emit failed"),
        }
    }
}
