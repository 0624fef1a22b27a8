//! socket.io on the same port: handshakes authenticated by session (cookie from one of our
//! origins, or `auth: {token}`), server-chosen rooms (one per agent, one per session, one of
//! every agent), and the typing relay with its rate limits; what is pushed goes out through
//! [`crate::events`]. What clients may hold (sockets per agent, engine.io sessions not yet in
//! the namespace) is counted in `connections`.
//!
//! Ending a session (logout, expiry) disconnects its session room: whoever ends a session
//! only has to say which one. `sessions` also asks the database now and then whether the
//! sessions of this instance's sockets still hold, for the ends it was not told of.

mod connections;
mod request_head;
mod sessions;

pub use connections::{Connections, UnjoinedSessions, admit_handshakes};
pub use request_head::detach_request_head;
pub use sessions::{check_sessions, end_expired_sessions};

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::Value;
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use socketioxide::extract::{Extension, SocketRef, TryData};
use socketioxide::handler::ConnectHandler;
use socketioxide_core::adapter::DefinedAdapter;

use crate::AppState;
use crate::auth::{cookie_token, origin_allowed, token_hash};
use crate::events::{AGENTS_ROOM, room, session_room};
use crate::model::{AgentId, ConversationId, TypingEvent};
use crate::store::StoreError;

use self::connections::Unjoined;

/// A typing state that is not renewed within this time ends by itself.
const TYPING_TTL: Duration = Duration::from_secs(6);
/// `typing: true` is relayed at most once per this time per agent and conversation.
const TYPING_INTERVAL: Duration = Duration::from_millis(500);
/// And at most this many times a second per agent, whatever the conversations: each relay
/// reads the database.
const TYPING_PER_AGENT_PER_SECOND: usize = 10;
/// engine.io sessions that have not joined the namespace are closed after this.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What a connected socket remembers: who it is, and for which session.
#[derive(Clone)]
struct SocketAgent {
    id: AgentId,
    name: Arc<str>,
    token_hash: Arc<str>,
}

/// Why a handshake was refused; the client sees exactly this text as `err.message`.
#[derive(Debug)]
struct Refusal(&'static str);

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// Registers the default namespace. Called once the [`AppState`] that holds `io` exists;
/// with a Redis adapter, the namespace is ready once what this returns is awaited.
pub fn attach<A: Adapter + DefinedAdapter>(io: &SocketIo<A>, state: AppState) -> A::InitRes {
    let for_auth = state.clone();
    let authenticate = async move |s: SocketRef<A>, TryData(auth): TryData<Value>| {
        authenticate(&for_auth, &s, auth.ok()).await
    };
    let on_connect = async move |s: SocketRef<A>, Extension(agent): Extension<SocketAgent>| {
        // A session ended while this socket was between its check and joining the
        // namespace was missed by the disconnect; look once more now that it is in.
        if let Ok(None) = state.services.store.session(&agent.token_hash).await {
            s.disconnect().ok();
            return;
        }
        tracing::info!(
            "[Socket.io] ✅ {} connected, joined {}",
            agent.name,
            room(agent.id)
        );
        let state = state.clone();
        s.on(
            "typing",
            async move |s: SocketRef<A>, TryData(data): TryData<TypingIn>| match data {
                Ok(data) => {
                    if let Some(agent) = s.extensions.get::<SocketAgent>() {
                        relay_typing(&state, &agent, data).await;
                    }
                }
                Err(e) => tracing::debug!(error = %e, "ignored a malformed typing event"),
            },
        );
    };
    io.ns("/", on_connect.with(authenticate))
}

async fn authenticate<A: Adapter>(
    state: &AppState,
    s: &SocketRef<A>,
    auth: Option<Value>,
) -> Result<(), Refusal> {
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
    let hash = token_hash(&token);
    match state.services.store.session(&hash).await {
        Ok(Some(session)) => {
            let agent = session.agent;
            let hash: Arc<str> = hash.into();
            let place = state
                .runtime
                .connections
                .take(agent.id, hash.clone(), session.expires_at)
                .ok_or_else(|| {
                    tracing::warn!(agent = %agent.id, "[Socket.io] refused a socket over MAX_SOCKETS_PER_AGENT");
                    Refusal("too_many_connections")
                })?;
            // Joined before the client hears it is connected, so no event falls in between.
            s.join([room(agent.id), session_room(&hash), AGENTS_ROOM.to_owned()]);
            s.extensions.insert(SocketAgent {
                id: agent.id,
                name: agent.name.into(),
                token_hash: hash,
            });
            s.extensions.insert(Arc::new(place));
            if let Some(pending) = s.req_parts().extensions.get::<Unjoined>() {
                pending.joined();
            }
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

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TypingIn {
    conversation_id: ConversationId,
    is_typing: bool,
}

/// Who is typing where (with a generation number, so an expiry only ends the state it
/// saw), and how often each agent's typing was relayed lately.
#[derive(Default)]
pub struct TypingStates {
    generation: AtomicU64,
    state: Mutex<Typing>,
}

#[derive(Default)]
struct Typing {
    /// (conversation, agent) → generation of the state being shown.
    active: HashMap<(ConversationId, AgentId), u64>,
    /// Per agent: the `true`s relayed in the last second, oldest first.
    recent: HashMap<AgentId, VecDeque<(ConversationId, Instant)>>,
}

/// What becomes of a typing event.
#[derive(Debug, PartialEq, Eq)]
enum Relay {
    /// Relay `true`; the state it starts has this generation.
    Start(u64),
    /// Relay `false`.
    Stop,
}

impl TypingStates {
    fn lock(&self) -> std::sync::MutexGuard<'_, Typing> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a typing event of `agent` in `conversation` is relayed. A `false` that ends a
    /// state being shown always is; anything else at most once per [`TYPING_INTERVAL`] per
    /// conversation, and [`TYPING_PER_AGENT_PER_SECOND`] times in all.
    fn admit(
        &self,
        conversation: ConversationId,
        agent: AgentId,
        is_typing: bool,
        now: Instant,
    ) -> Option<Relay> {
        let mut typing = self.lock();
        if !is_typing && typing.active.remove(&(conversation, agent)).is_some() {
            return Some(Relay::Stop);
        }
        let recent = typing.recent.entry(agent).or_default();
        while recent
            .front()
            .is_some_and(|(_, at)| now.duration_since(*at) >= Duration::from_secs(1))
        {
            recent.pop_front();
        }
        if recent.len() >= TYPING_PER_AGENT_PER_SECOND
            || recent
                .iter()
                .any(|(c, at)| *c == conversation && now.duration_since(*at) < TYPING_INTERVAL)
        {
            return None;
        }
        recent.push_back((conversation, now));
        if typing.recent.len() > 1024 {
            typing.recent.retain(|_, r| {
                r.back()
                    .is_some_and(|(_, at)| now.duration_since(*at) < Duration::from_secs(1))
            });
        }
        if !is_typing {
            return Some(Relay::Stop);
        }
        let generation = self.generation.fetch_add(1, Ordering::Relaxed);
        typing.active.insert((conversation, agent), generation);
        Some(Relay::Start(generation))
    }

    /// Ends the state if it is still `generation`; whether it did.
    fn expire(&self, conversation: ConversationId, agent: AgentId, generation: u64) -> bool {
        let mut typing = self.lock();
        let key = (conversation, agent);
        let current = typing.active.get(&key) == Some(&generation);
        if current {
            typing.active.remove(&key);
        }
        current
    }
}

/// Relays a typing event to the conversation's other agents. The rate limits come first,
/// so a flood costs no database query: this instance's, then (for `true`) every
/// instance's, since the agent's sockets may be spread over several.
async fn relay_typing(state: &AppState, agent: &SocketAgent, data: TypingIn) {
    let conversation = data.conversation_id;
    let Some(relay) =
        state
            .runtime
            .typing
            .admit(conversation, agent.id, data.is_typing, Instant::now())
    else {
        return;
    };
    let forget = || {
        if let Relay::Start(generation) = relay {
            state
                .runtime
                .typing
                .expire(conversation, agent.id, generation);
        }
    };
    if let Relay::Start(_) = relay
        && !state
            .services
            .events
            .claim_typing(agent.id, conversation, TYPING_INTERVAL)
            .await
    {
        return forget();
    }
    let audience = match state.services.store.audience(conversation).await {
        Ok(a) if a.contains(agent.id) => a,
        Ok(_) => return forget(),
        Err(e) => {
            tracing::debug!(error = %e, "typing not relayed");
            return forget();
        }
    };
    let others = audience.without(agent.id);
    let event = TypingEvent {
        conversation_id: conversation,
        agent_id: agent.id,
        agent_name: agent.name.to_string(),
        is_typing: data.is_typing,
    };
    state.services.events.typing(&others, &event).await;
    if let Relay::Start(generation) = relay {
        let state = state.clone();
        tokio::spawn(async move {
            tokio::time::sleep(TYPING_TTL).await;
            if state
                .runtime
                .typing
                .expire(conversation, event.agent_id, generation)
            {
                let stopped = TypingEvent {
                    is_typing: false,
                    ..event
                };
                state.services.events.typing(&others, &stopped).await;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Conversation `c` and agent `a`'s ids.
    fn ids(c: u32, a: u32) -> (ConversationId, AgentId) {
        (
            c.to_string().parse().unwrap(),
            a.to_string().parse().unwrap(),
        )
    }

    #[test]
    fn typing_is_relayed_twice_a_second_per_conversation() {
        let t = TypingStates::default();
        let ((c, a), (d, other)) = (ids(1, 7), ids(2, 8));
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        assert!(matches!(t.admit(c, a, true, t0), Some(Relay::Start(_))));
        assert_eq!(t.admit(c, a, true, ms(499)), None);
        assert!(
            t.admit(d, a, true, ms(499)).is_some(),
            "another conversation"
        );
        assert!(t.admit(c, other, true, t0).is_some(), "another agent");
        assert!(t.admit(c, a, true, ms(500)).is_some());
    }

    #[test]
    fn an_agent_relays_at_most_ten_a_second_in_all() {
        let t = TypingStates::default();
        let t0 = Instant::now();
        let allowed = (0..50)
            .filter(|i| {
                let (c, a) = ids(*i, 7);
                t.admit(c, a, true, t0).is_some()
            })
            .count();
        assert_eq!(allowed, TYPING_PER_AGENT_PER_SECOND);
        assert!(
            t.admit(
                ids(99, 7).0,
                ids(99, 7).1,
                true,
                t0 + Duration::from_secs(1)
            )
            .is_some()
        );
    }

    #[test]
    fn false_that_ends_a_shown_state_is_always_relayed() {
        let t = TypingStates::default();
        let (c, a) = ids(1, 7);
        let t0 = Instant::now();
        let Some(Relay::Start(g)) = t.admit(c, a, true, t0) else {
            panic!("the first true is relayed")
        };
        assert_eq!(
            t.admit(c, a, false, t0),
            Some(Relay::Stop),
            "right after the true"
        );
        assert!(!t.expire(c, a, g), "already ended");
        // Other falses are limited like trues.
        assert_eq!(t.admit(c, a, false, t0), None);
        assert_eq!(
            t.admit(c, a, false, t0 + TYPING_INTERVAL),
            Some(Relay::Stop)
        );
    }

    #[test]
    fn an_expiry_ends_only_the_state_it_saw() {
        let t = TypingStates::default();
        let (c, a) = ids(1, 7);
        let t0 = Instant::now();
        let Some(Relay::Start(old)) = t.admit(c, a, true, t0) else {
            panic!("relayed")
        };
        let Some(Relay::Start(new)) = t.admit(c, a, true, t0 + TYPING_INTERVAL) else {
            panic!("relayed")
        };
        assert!(!t.expire(c, a, old), "renewed since");
        assert!(t.expire(c, a, new));
    }
}
