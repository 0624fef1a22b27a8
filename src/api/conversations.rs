//! Conversations and their messages (docs/api.md, "Conversations" and "Search"): the agent's list and searching it,
//! opening one, naming its contact, a conversation's messages page by page, and marking it
//! read.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, patch, post};
use serde::{Deserialize, Serialize};

use super::{Cursor, PageQuery, PathId};
use crate::AppState;
use crate::auth::CurrentAgent;
use crate::domain::{ContactName, PhoneNumber, SearchText};
use crate::error::{AppError, AppResult, Json, Query};
use crate::model::{Agent, Conversation, ConversationId, Message};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/crm/sms/conversations",
            get(list_conversations).post(open_conversation),
        )
        .route("/api/crm/sms/conversations/{id}", patch(rename_contact))
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

/// `?q=&limit=&cursor=` of the list: `q` narrows it to what matches (docs/api.md, "Search").
#[derive(Deserialize)]
struct ListQuery {
    q: Option<String>,
    #[serde(flatten)]
    page: PageQuery,
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
    id: ConversationId,
) -> AppResult<Conversation> {
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
    Query(q): Query<ListQuery>,
) -> AppResult<Json<ConversationPage>> {
    let page = q.page.page(50, 200)?;
    let search = q.q.as_deref().map(SearchText::parse).transpose()?.flatten();
    let store = &state.services.store;
    let list = match search {
        Some(search) => store.search_conversations(agent.id, &search, page).await?,
        None => store.list_conversations(agent.id, page).await?,
    };
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
        .open_conversation(&from, &phone, name.as_ref())
        .await?;
    if name.is_some() {
        state.services.events.conversation(&opened).await;
    }
    Ok(Json(opened.conversation))
}

/// `PATCH /api/crm/sms/conversations/:id` `{contactName}`: names the contact (`null` or
/// `""` clears the name), for every agent of the number.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RenameBody {
    #[serde(deserialize_with = "present")]
    contact_name: Option<String>,
}

/// `contactName` must be in the body, even if `null`: a body without it changes nothing a
/// client meant to change.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Option::deserialize(d)
}

async fn rename_contact(
    State(state): State<AppState>,
    CurrentAgent(agent): CurrentAgent,
    PathId(id): PathId<ConversationId>,
    Json(body): Json<RenameBody>,
) -> AppResult<Json<Conversation>> {
    let conversation = visible_conversation(&state, &agent, id).await?;
    let name = match body.contact_name.as_deref() {
        Some(raw) => ContactName::parse(raw)
            .map_err(|e| AppError::invalid(e.to_string().replacen("name", "contactName", 1)))?,
        None => None,
    };
    let renamed = state
        .services
        .store
        .rename_contact(conversation.id, name.as_ref())
        .await?;
    state.services.events.conversation(&renamed).await;
    Ok(Json(renamed.conversation))
}

async fn list_messages(
    State(state): State<AppState>,
    CurrentAgent(agent): CurrentAgent,
    PathId(id): PathId<ConversationId>,
    Query(q): Query<PageQuery>,
) -> AppResult<Json<MessagePage>> {
    let conversation = visible_conversation(&state, &agent, id).await?;
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
    PathId(id): PathId<ConversationId>,
) -> AppResult<StatusCode> {
    let conversation = visible_conversation(&state, &agent, id).await?;
    if let Some(read) = state.services.store.mark_read(conversation.id).await? {
        state.services.events.conversation(&read).await;
    }
    Ok(StatusCode::NO_CONTENT)
}
