//! socket.io on the same port: handshakes authenticated by session (cookie from one of our
//! origins, or `auth: {token}`), one server-chosen room per agent, the events we push, and
//! the typing relay.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use socketioxide::SocketIo;
use socketioxide::extract::{Extension, SocketRef, TryData};
use socketioxide::handler::ConnectHandler;

use crate::AppState;
use crate::auth::{cookie_token, origin_allowed, token_hash};
use crate::model::{Conversation, Id, Message, TypingEvent};
use crate::store::StoreError;

/// A typing state that is not renewed within this time ends by itself.
const TYPING_TTL: Duration = Duration::from_secs(6);

pub fn room(agent: Id) -> String {
    format!("user:{}", agent.0)
}

/// What a connected socket remembers: who it is.
#[derive(Clone)]
struct SocketAgent {
    id: Id,
    name: Arc<str>,
}

/// Why a handshake was refused; the client sees exactly this text as `err.message`.
#[derive(Debug)]
struct Refusal(&'static str);

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// Registers the default namespace. Called once the [`AppState`] that holds `io` exists.
pub fn attach(io: &SocketIo, state: AppState) {
    let for_auth = state.clone();
    let authenticate = async move |s: SocketRef, TryData(auth): TryData<Value>| {
        authenticate(&for_auth, &s, auth.ok()).await
    };
    let on_connect = async move |s: SocketRef, Extension(agent): Extension<SocketAgent>| {
        tracing::info!(
            "[Socket.io] ✅ {} connected, joined {}",
            agent.name,
            room(agent.id)
        );
        let state = state.clone();
        s.on(
            "typing",
            async move |s: SocketRef, TryData(data): TryData<TypingIn>| match data {
                Ok(data) => {
                    if let Some(agent) = s.extensions.get::<SocketAgent>() {
                        relay_typing(&state, &agent, data).await;
                    }
                }
                Err(e) => tracing::debug!(error = %e, "ignored a malformed typing event"),
            },
        );
    };
    io.ns("/", on_connect.with(authenticate));
}

async fn authenticate(state: &AppState, s: &SocketRef, auth: Option<Value>) -> Result<(), Refusal> {
    let headers = &s.req_parts().headers;
    let bearer = auth
        .as_ref()
        .and_then(|a| a.get("token"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let token = match bearer {
        Some(t) => t,
        None => {
            let token = cookie_token(headers).ok_or(Refusal("unauthorized"))?;
            if !origin_allowed(state, headers) {
                tracing::warn!(
                    origin = ?headers.get("origin"),
                    "[Socket.io] refused a cookie handshake from a foreign or missing Origin"
                );
                return Err(Refusal("unauthorized"));
            }
            token
        }
    };
    match state.store.session_agent(&token_hash(&token)).await {
        Ok(Some(agent)) => {
            // Joined before the client hears it is connected, so no event falls in between.
            s.join(room(agent.id));
            s.extensions.insert(SocketAgent {
                id: agent.id,
                name: agent.name.into(),
            });
            Ok(())
        }
        Ok(None) => Err(Refusal("unauthorized")),
        Err(StoreError::Unavailable(_)) => Err(Refusal("unavailable")),
        Err(e) => {
            tracing::error!(error = %e, "[Socket.io] handshake failed");
            Err(Refusal("unavailable"))
        }
    }
}

/// Pushes `payload` to every agent in `audience`. Never fails: a client that misses it
/// catches up through `sync`.
async fn emit<T: Serialize + ?Sized>(
    io: &SocketIo,
    audience: &[Id],
    event: &str,
    what: &str,
    payload: &T,
) {
    if audience.is_empty() {
        return;
    }
    let rooms: Vec<String> = audience.iter().copied().map(room).collect();
    match io.to(rooms.clone()).emit(event, payload).await {
        Ok(()) => {
            for r in rooms {
                tracing::info!("[Socket.io] 📤 Emitted {what} to {r}");
            }
        }
        Err(e) => tracing::warn!(error = %e, event, "[Socket.io] emit failed"),
    }
}

pub async fn new_message(io: &SocketIo, audience: &[Id], message: &Message) {
    emit(io, audience, "message:new", "new message", message).await;
}

pub async fn message_status(io: &SocketIo, audience: &[Id], message: &Message) {
    emit(
        io,
        audience,
        "message:status",
        "status update",
        &message.status_event(),
    )
    .await;
}

pub async fn conversation_updated(io: &SocketIo, audience: &[Id], conversation: &Conversation) {
    emit(
        io,
        audience,
        "conversation:updated",
        "conversation update",
        conversation,
    )
    .await;
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TypingIn {
    conversation_id: Id,
    is_typing: bool,
}

/// Who is typing where, with a generation number so an expiry only ends the state it saw.
#[derive(Default)]
pub struct TypingStates {
    generation: AtomicU64,
    active: Mutex<HashMap<(Id, Id), u64>>,
}

async fn relay_typing(state: &AppState, agent: &SocketAgent, data: TypingIn) {
    let audience = match state.store.audience(data.conversation_id).await {
        Ok(a) => a,
        Err(e) => {
            tracing::debug!(error = %e, "typing not relayed");
            return;
        }
    };
    if !audience.contains(&agent.id) {
        return;
    }
    let others: Vec<Id> = audience.into_iter().filter(|a| *a != agent.id).collect();
    let key = (data.conversation_id, agent.id);
    let event = TypingEvent {
        conversation_id: data.conversation_id,
        agent_id: agent.id,
        agent_name: agent.name.to_string(),
        is_typing: data.is_typing,
    };
    let typing = &state.typing;
    if data.is_typing {
        let generation = typing.generation.fetch_add(1, Ordering::Relaxed);
        typing
            .active
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, generation);
        emit(&state.io, &others, "typing", "typing", &event).await;
        let state = state.clone();
        tokio::spawn(async move {
            tokio::time::sleep(TYPING_TTL).await;
            let expired = {
                let mut active = state
                    .typing
                    .active
                    .lock()
                    .unwrap_or_else(|p| p.into_inner());
                let expired = active.get(&key) == Some(&generation);
                if expired {
                    active.remove(&key);
                }
                expired
            };
            if expired {
                let stopped = TypingEvent {
                    is_typing: false,
                    ..event
                };
                emit(&state.io, &others, "typing", "typing", &stopped).await;
            }
        });
    } else {
        typing
            .active
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&key);
        emit(&state.io, &others, "typing", "typing", &event).await;
    }
}
