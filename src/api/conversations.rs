//! Conversations and their messages (contract §4): the agent's list, opening one, a
//! conversation's messages page by page, and marking it read.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};

use super::{Cursor, PageQuery, parse_id};
use crate::AppState;
use crate::auth::CurrentAgent;
use crate::domain::{ContactName, PhoneNumber};
use crate::error::{AppError, AppResult, Json, Query};
use crate::model::{Agent, Conversation, Message};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/crm/sms/conversations",
            get(list_conversations).post(open_conversation),
        )
        .route(
            "/api/crm/sms/conversations/{id}/messages",
            get(list_messages),
        )
        .route("/api/crm/sms/conversations/{id}/read", post(mark_read))
}

/// A page of the agent's conversations, newest activity first.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConversationPage {
    pub conversations: Vec<Conversation>,
    /// Where the next page starts; `null` on the last.
    pub next_cursor: Option<Cursor>,
    /// Where the page's `sync` may start without missing a change this page does not show
    /// (a change still committing while the page was read has a higher `seq`).
    pub sync_cursor: i64,
}

/// A page of a conversation's messages, newest first.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessagePage {
    pub messages: Vec<Message>,
    /// Where the next (older) page starts; `null` on the last.
    pub next_cursor: Option<Cursor>,
}

#[derive(Deserialize)]
struct OpenBody {
    phone: String,
    name: Option<String>,
    from: Option<String>,
}

/// The agent's number to send from: the one asked for (which must be theirs), or their first.
pub(super) fn our_number(agent: &Agent, from: Option<&str>) -> AppResult<PhoneNumber> {
    match from.filter(|f| !f.trim().is_empty()) {
        Some(f) => {
            let n = PhoneNumber::parse("from", f)?;
            if agent.numbers.iter().any(|a| a == n.as_str()) {
                Ok(n)
            } else {
                Err(AppError::invalid("from is not one of your numbers"))
            }
        }
        None => agent
            .numbers
            .first()
            .cloned()
            .map(PhoneNumber::from_store)
            .ok_or_else(|| AppError::invalid("you have no Twilio number to send from")),
    }
}

/// The conversation `id`, if the agent may see it; another agent's is not found.
pub(super) async fn visible_conversation(
    state: &AppState,
    agent: &Agent,
    id: &str,
) -> AppResult<Conversation> {
    let id = parse_id(id, "conversation")?;
    state
        .services
        .store
        .conversation(agent.id, id)
        .await?
        .ok_or(AppError::NotFound("conversation"))
}

async fn list_conversations(
    State(state): State<AppState>,
    CurrentAgent(agent): CurrentAgent,
    Query(q): Query<PageQuery>,
) -> AppResult<Json<ConversationPage>> {
    let list = state
        .services
        .store
        .list_conversations(agent.id, q.page(50, 200)?)
        .await?;
    Ok(Json(ConversationPage {
        conversations: list.conversations,
        next_cursor: list.next.map(Cursor),
        sync_cursor: list.sync_from,
    }))
}

/// `POST /api/crm/sms/conversations`: the conversation with `phone`, created if need be.
async fn open_conversation(
    State(state): State<AppState>,
    CurrentAgent(agent): CurrentAgent,
    Json(body): Json<OpenBody>,
) -> AppResult<Json<Conversation>> {
    let phone = PhoneNumber::parse("phone", &body.phone)?;
    let from = our_number(&agent, body.from.as_deref())?;
    let name = body.name.as_deref().map(ContactName::parse).transpose()?;
    let name = name.flatten();
    let opened = state
        .services
        .store
        .open_conversation(
            from.as_str(),
            phone.as_str(),
            name.as_ref().map(ContactName::as_str),
        )
        .await?;
    if name.is_some() {
        state.services.events.conversation(&opened).await;
    }
    Ok(Json(opened.conversation))
}

async fn list_messages(
    State(state): State<AppState>,
    CurrentAgent(agent): CurrentAgent,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
) -> AppResult<Json<MessagePage>> {
    let conversation = visible_conversation(&state, &agent, &id).await?;
    let (messages, next) = state
        .services
        .store
        .list_messages(conversation.id, q.page(50, 200)?)
        .await?;
    Ok(Json(MessagePage {
        messages,
        next_cursor: next.map(Cursor),
    }))
}

async fn mark_read(
    State(state): State<AppState>,
    CurrentAgent(agent): CurrentAgent,
    Path(id): Path<String>,
) -> AppResult<StatusCode> {
    let conversation = visible_conversation(&state, &agent, &id).await?;
    if let Some(read) = state.services.store.mark_read(conversation.id).await? {
        state.services.events.conversation(&read).await;
    }
    Ok(StatusCode::NO_CONTENT)
}
