//! Sending (docs/api.md, "Sending"): `send` and `retry` store the message `pending` with its
//! queue entry (and its pictures), wake the sending queue and answer `202`; the same
//! `clientId` gives the same message back.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::{Deserialize, Serialize};

use super::PathId;
use super::conversations::{our_number, visible_conversation};
use crate::AppState;
use crate::auth::CurrentAgent;
use crate::domain::{ClientId, MessageBody, PhoneNumber};
use crate::error::{AppError, AppResult, Json};
use crate::model::{Agent, Conversation, ConversationId, Direction, Message, MessageId, UploadId};
use crate::sms::segments;
use crate::store::{MAX_PICTURES, NewOutbound, Outbound};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/crm/sms/send", post(send))
        .route("/api/crm/sms/messages/{id}/retry", post(retry))
}

/// The answer of `send` and `retry`: the message as stored (`202` when new, `200` when the
/// `clientId` had already made it).
#[derive(Debug, Serialize, Deserialize)]
pub struct Queued {
    pub message: Message,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SendBody {
    conversation_id: Option<ConversationId>,
    to: Option<String>,
    from: Option<String>,
    #[serde(default)]
    body: String,
    client_id: String,
    /// The sender's uploads to send as pictures, in order.
    #[serde(default)]
    media_ids: Vec<UploadId>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RetryBody {
    client_id: String,
}

/// `POST /api/crm/sms/send`: to a conversation, or to a number (opening the conversation).
async fn send(
    State(state): State<AppState>,
    CurrentAgent(agent): CurrentAgent,
    Json(body): Json<SendBody>,
) -> AppResult<Response> {
    let client_id = ClientId::try_from(body.client_id)?;
    let media = pictures(&state, body.media_ids)?;
    let text = MessageBody::caption(body.body, !media.is_empty())?;
    let conversation = match (body.conversation_id, body.to.as_deref()) {
        (Some(id), _) => visible_conversation(&state, &agent, id).await?,
        (None, Some(to)) => {
            let to = PhoneNumber::parse("to", to)?;
            let from = our_number(&agent, body.from.as_deref())?;
            state
                .services
                .store
                .open_conversation(&from, &to, None)
                .await?
                .conversation
        }
        (None, None) => return Err(AppError::invalid("give conversationId, or to")),
    };
    queue_message(&state, &agent, &conversation, text, client_id, None, media).await
}

/// The pictures a send asks for: at most [`MAX_PICTURES`], each once, and only where Twilio
/// can fetch them.
fn pictures(state: &AppState, ids: Vec<UploadId>) -> AppResult<Vec<UploadId>> {
    if ids.len() > MAX_PICTURES {
        return Err(AppError::invalid(format!(
            "mediaIds: at most {MAX_PICTURES} pictures a message"
        )));
    }
    if ids.iter().enumerate().any(|(i, id)| ids[..i].contains(id)) {
        return Err(AppError::invalid("mediaIds: each picture once"));
    }
    if !ids.is_empty() && state.config.sending.media_base.is_none() {
        return Err(media_needs_public_url());
    }
    Ok(ids)
}

/// Twilio fetches a message's pictures from `PUBLIC_URL`, which it cannot reach.
fn media_needs_public_url() -> AppError {
    AppError::unprocessable(
        "media_needs_public_url",
        "pictures cannot be sent while PUBLIC_URL is not reachable by Twilio (localhost or a \
         private address): set PUBLIC_URL to a public URL, e.g. an ngrok URL",
    )
}

/// `POST /api/crm/sms/messages/{id}/retry`: a failed message's text, as a new message, once:
/// asked again (another tab, a double click), it answers `200` with that message.
async fn retry(
    State(state): State<AppState>,
    CurrentAgent(agent): CurrentAgent,
    PathId(id): PathId<MessageId>,
    Json(body): Json<RetryBody>,
) -> AppResult<Response> {
    let client_id = ClientId::try_from(body.client_id)?;
    let original = state
        .services
        .store
        .message(agent.id, id)
        .await?
        .ok_or(AppError::NotFound("message"))?;
    if original.direction != Direction::Outbound || !original.status.is_failure() {
        return Err(AppError::conflict(
            "not_retryable",
            "only a failed or undelivered outbound message can be retried",
        ));
    }
    let conversation = visible_conversation(&state, &agent, original.conversation_id).await?;
    if !original.media.is_empty() && state.config.sending.media_base.is_none() {
        return Err(media_needs_public_url());
    }
    // It was a body when it was sent; a body it stays.
    let text = MessageBody::from_store(original.body);
    queue_message(
        &state,
        &agent,
        &conversation,
        text,
        client_id,
        Some(original.id),
        Vec::new(),
    )
    .await
}

/// Stores an outbound message as `pending`, wakes the sending queue, and tells the agents.
/// A retry (`retry_of`) carries its original's pictures, and `media` is empty.
async fn queue_message(
    state: &AppState,
    agent: &Agent,
    conversation: &Conversation,
    text: MessageBody,
    client_id: ClientId,
    retry_of: Option<MessageId>,
    media: Vec<UploadId>,
) -> AppResult<Response> {
    if conversation.contact.opted_out {
        return Err(opted_out());
    }
    let new = NewOutbound {
        conversation_id: conversation.id,
        agent_id: agent.id,
        // A picture without text is still one message.
        segments: segments(text.as_str()).max(1),
        body: text,
        client_id,
        retry_of,
        assign: conversation.assignee.is_none(),
        media,
    };
    match state.services.store.insert_outbound(&new).await? {
        Outbound::Created(created) => {
            state.runtime.send_queue.wake();
            state.services.events.message(&created).await;
            let queued = Queued {
                message: created.message,
            };
            Ok((StatusCode::ACCEPTED, Json(queued)).into_response())
        }
        Outbound::Existing(message) => {
            Ok((StatusCode::OK, Json(Queued { message: *message })).into_response())
        }
        Outbound::ClientIdReused => Err(AppError::conflict(
            "client_id_reused",
            "this clientId was already used for another message",
        )),
        Outbound::OptedOut => Err(opted_out()),
        Outbound::UnknownMedia(id) => Err(AppError::invalid(format!(
            "mediaIds: {id} is not one of your uploaded pictures (uploads not sent within 24 hours are deleted)"
        ))),
        Outbound::MediaTooLarge => Err(AppError::invalid(
            "mediaIds: the pictures together are larger than 5 MB",
        )),
    }
}

fn opted_out() -> AppError {
    AppError::conflict(
        "opted_out",
        "this contact has opted out (replied STOP); they must reply START before you can message them",
    )
}
