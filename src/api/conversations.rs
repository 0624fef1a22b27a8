//! Conversations and their messages (docs/api.md): the agent's list, its views and their
//! counts, and searching it; opening one; naming its contact, closing, snoozing and assigning
//! it; its messages page by page, and its notes; marking it read; the agents one may assign
//! a conversation to.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use serde::{Deserialize, Serialize};

use super::{Cursor, PageQuery, PathId};
use crate::AppState;
use crate::auth::CurrentAgent;
use crate::domain::{ClientId, ContactName, NoteBody, PhoneNumber, SearchText, snooze_end};
use crate::error::{AppError, AppResult, Json, Query};
use crate::model::{
    Agent, AgentId, Colleague, Conversation, ConversationId, ConversationStatus, InboxCounts,
    Message,
};
use crate::store::{
    AssigneeFilter, ConversationEdit, EditOutcome, ListFilter, NewNote, NoteOutcome, StatusEdit,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/crm/sms/conversations",
            get(list_conversations).post(open_conversation),
        )
        .route("/api/crm/sms/conversations/counts", get(counts))
        .route("/api/crm/sms/conversations/{id}", patch(edit_conversation))
        .route(
            "/api/crm/sms/conversations/{id}/messages",
            get(list_messages),
        )
        .route("/api/crm/sms/conversations/{id}/notes", post(add_note))
        .route("/api/crm/sms/conversations/{id}/read", post(mark_read))
        .route("/api/crm/sms/agents", get(colleagues))
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

/// `?status=&assignee=&q=&limit=&cursor=` of the list: a view (by default the open
/// conversations, whoever they are assigned to), and `q` narrows it to what matches.
#[derive(Deserialize)]
struct ListQuery {
    q: Option<String>,
    status: Option<String>,
    assignee: Option<String>,
    #[serde(flatten)]
    page: PageQuery,
}

impl ListQuery {
    fn filter(&self, agent: &Agent) -> AppResult<ListFilter> {
        let status =
            match self.status.as_deref().filter(|s| !s.is_empty()) {
                None => Some(ConversationStatus::Open),
                Some("all") => None,
                Some(s) => Some(s.parse().map_err(|()| {
                    AppError::invalid("status must be open, snoozed, closed or all")
                })?),
            };
        let assignee =
            match self.assignee.as_deref().filter(|a| !a.is_empty()) {
                None => AssigneeFilter::Any,
                Some("me") => AssigneeFilter::Agent(agent.id),
                Some("none") => AssigneeFilter::Nobody,
                Some(id) => AssigneeFilter::Agent(id.parse().map_err(|()| {
                    AppError::invalid("assignee must be me, none or an agent's id")
                })?),
            };
        Ok(ListFilter { status, assignee })
    }
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
    let filter = q.filter(&agent)?;
    let search = q.q.as_deref().map(SearchText::parse).transpose()?.flatten();
    let store = &state.services.store;
    let list = match search {
        Some(search) => {
            store
                .search_conversations(agent.id, &search, filter, page)
                .await?
        }
        None => store.list_conversations(agent.id, filter, page).await?,
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

/// `PATCH /api/crm/sms/conversations/:id`: any of `contactName` (`null` or `""` clears
/// the name), `status` (with `snoozedUntil` when `snoozed`) and `assigneeId` (`null`
/// unassigns), for every agent of the number. A field left out is left as it is.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EditBody {
    #[serde(default, deserialize_with = "present")]
    contact_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    status: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    snoozed_until: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    assignee_id: Option<Option<serde_json::Value>>,
}

/// A field that is in the body (`Some`, even if `null`), as opposed to left out (`None`).
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::deserialize(d).map(Some)
}

impl EditBody {
    fn edit(self) -> AppResult<ConversationEdit> {
        if self.contact_name.is_none() && self.status.is_none() && self.assignee_id.is_none() {
            return Err(AppError::invalid(
                "give contactName, status or assigneeId (or several)",
            ));
        }
        let contact_name = match self.contact_name {
            None => None,
            Some(None) => Some(None),
            Some(Some(raw)) => Some(ContactName::parse(&raw).map_err(|e| {
                AppError::invalid(e.to_string().replacen("name", "contactName", 1))
            })?),
        };
        let until = self.snoozed_until.flatten();
        let status = match self.status {
            None if until.is_some() => {
                return Err(AppError::invalid("snoozedUntil goes with status snoozed"));
            }
            None => None,
            Some(raw) => Some(match (raw.as_deref(), until) {
                (Some("snoozed"), Some(until)) => {
                    StatusEdit::Snoozed(snooze_end(&until, crate::model::now())?)
                }
                (Some("snoozed"), None) => {
                    return Err(AppError::invalid(
                        "snoozedUntil is required to snooze a conversation",
                    ));
                }
                (Some("open" | "closed"), Some(_)) => {
                    return Err(AppError::invalid("snoozedUntil goes with status snoozed"));
                }
                (Some("open"), None) => StatusEdit::Open,
                (Some("closed"), None) => StatusEdit::Closed,
                _ => {
                    return Err(AppError::invalid("status must be open, snoozed or closed"));
                }
            }),
        };
        let assignee = match self.assignee_id {
            None => None,
            Some(None) => Some(None),
            Some(Some(raw)) => Some(Some(
                serde_json::from_value::<AgentId>(raw).map_err(|_| assignee_invalid())?,
            )),
        };
        Ok(ConversationEdit {
            contact_name,
            status,
            assignee,
        })
    }
}

fn assignee_invalid() -> AppError {
    AppError::InvalidAs {
        code: "assignee_invalid",
        message: "assigneeId must be an enabled agent who has the conversation's number".into(),
    }
}

async fn edit_conversation(
    State(state): State<AppState>,
    CurrentAgent(agent): CurrentAgent,
    PathId(id): PathId<ConversationId>,
    Json(body): Json<EditBody>,
) -> AppResult<Json<Conversation>> {
    let conversation = visible_conversation(&state, &agent, id).await?;
    let edit = body.edit()?;
    match state
        .services
        .store
        .edit_conversation(conversation.id, &edit)
        .await?
    {
        EditOutcome::Edited(change) => {
            state.services.events.conversation(&change).await;
            Ok(Json(change.conversation))
        }
        EditOutcome::AssigneeInvalid => Err(assignee_invalid()),
    }
}

/// `GET /api/crm/sms/conversations/counts`: how many conversations each view holds.
async fn counts(
    State(state): State<AppState>,
    CurrentAgent(agent): CurrentAgent,
) -> AppResult<Json<InboxCounts>> {
    Ok(Json(state.services.store.inbox_counts(agent.id).await?))
}

/// The agents who share a number with the caller (the caller too), each with the numbers
/// they share.
#[derive(Debug, Serialize, Deserialize)]
pub struct Colleagues {
    pub agents: Vec<Colleague>,
}

/// `GET /api/crm/sms/agents`: whom the caller may assign their conversations to, and who
/// may have written their messages.
async fn colleagues(
    State(state): State<AppState>,
    CurrentAgent(agent): CurrentAgent,
) -> AppResult<Json<Colleagues>> {
    let agents = state.services.store.colleagues(agent.id).await?;
    Ok(Json(Colleagues { agents }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NoteBodyJson {
    body: String,
    client_id: String,
}

/// The answer of `notes`: the note as stored (`201` when new, `200` when the `clientId` had
/// already made it).
#[derive(Debug, Serialize, Deserialize)]
pub struct Noted {
    pub message: Message,
}

/// `POST /api/crm/sms/conversations/:id/notes`: a note for the agents of the number only.
async fn add_note(
    State(state): State<AppState>,
    CurrentAgent(agent): CurrentAgent,
    PathId(id): PathId<ConversationId>,
    Json(body): Json<NoteBodyJson>,
) -> AppResult<Response> {
    let client_id = ClientId::try_from(body.client_id)?;
    let text = NoteBody::try_from(body.body)?;
    let conversation = visible_conversation(&state, &agent, id).await?;
    let note = NewNote {
        conversation_id: conversation.id,
        agent_id: agent.id,
        client_id,
        body: text,
    };
    match state.services.store.insert_note(&note).await? {
        NoteOutcome::Created(created) => {
            state.services.events.message(&created).await;
            let noted = Noted {
                message: created.message,
            };
            Ok((StatusCode::CREATED, Json(noted)).into_response())
        }
        NoteOutcome::Existing(message) => {
            Ok((StatusCode::OK, Json(Noted { message: *message })).into_response())
        }
        NoteOutcome::ClientIdReused => Err(AppError::conflict(
            "client_id_reused",
            "this clientId was already used for another message",
        )),
    }
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
