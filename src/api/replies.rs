//! Canned replies (docs/api.md, "Canned replies"): one list shared by every agent. Any agent
//! adds one; its author or an admin changes or deletes it. Every change is pushed to every
//! agent (`reply:changed`, `reply:deleted`).

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, patch};
use serde::{Deserialize, Serialize};

use super::PathId;
use crate::AppState;
use crate::auth::CurrentAgent;
use crate::domain::{MessageBody, Shortcut};
use crate::error::{AppError, AppResult, Json};
use crate::model::{Reply, ReplyId};
use crate::store::{ReplyChanges, ReplyOutcome};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/crm/sms/replies", get(list).post(create))
        .route("/api/crm/sms/replies/{id}", patch(update).delete(delete))
}

/// `GET /api/crm/sms/replies`.
#[derive(Debug, Serialize, Deserialize)]
pub struct Replies {
    pub replies: Vec<Reply>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    shortcut: String,
    body: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateBody {
    shortcut: Option<String>,
    body: Option<String>,
}

impl UpdateBody {
    /// The changes asked for: at least one, each valid.
    fn changes(self) -> AppResult<ReplyChanges> {
        if self.shortcut.is_none() && self.body.is_none() {
            return Err(AppError::invalid("give shortcut, body, or both"));
        }
        Ok(ReplyChanges {
            shortcut: self.shortcut.map(Shortcut::try_from).transpose()?,
            body: self.body.map(MessageBody::try_from).transpose()?,
        })
    }
}

async fn list(State(state): State<AppState>, _: CurrentAgent) -> AppResult<Json<Replies>> {
    let replies = state.services.store.replies().await?;
    Ok(Json(Replies { replies }))
}

/// `POST /api/crm/sms/replies`: any agent may add one.
async fn create(
    State(state): State<AppState>,
    CurrentAgent(agent): CurrentAgent,
    Json(body): Json<CreateBody>,
) -> AppResult<(StatusCode, Json<Reply>)> {
    let shortcut = Shortcut::try_from(body.shortcut)?;
    let text = MessageBody::try_from(body.body)?;
    let reply = state
        .services
        .store
        .create_reply(agent.id, &shortcut, &text)
        .await?
        .ok_or_else(shortcut_taken)?;
    state.services.events.reply_changed(&reply).await;
    Ok((StatusCode::CREATED, Json(reply)))
}

/// `PATCH /api/crm/sms/replies/:id`: its author or an admin.
async fn update(
    State(state): State<AppState>,
    CurrentAgent(agent): CurrentAgent,
    PathId(id): PathId<ReplyId>,
    Json(body): Json<UpdateBody>,
) -> AppResult<Json<Reply>> {
    let changes = body.changes()?;
    let outcome = state
        .services
        .store
        .update_reply(id, &agent, &changes)
        .await?;
    let reply = done(outcome)?;
    state.services.events.reply_changed(&reply).await;
    Ok(Json(reply))
}

/// `DELETE /api/crm/sms/replies/:id`: its author or an admin.
async fn delete(
    State(state): State<AppState>,
    CurrentAgent(agent): CurrentAgent,
    PathId(id): PathId<ReplyId>,
) -> AppResult<StatusCode> {
    done(state.services.store.delete_reply(id, &agent).await?)?;
    state.services.events.reply_deleted(id).await;
    Ok(StatusCode::NO_CONTENT)
}

/// What a change of a reply answers when it was not made.
fn done<T>(outcome: ReplyOutcome<T>) -> AppResult<T> {
    match outcome {
        ReplyOutcome::Done(done) => Ok(done),
        ReplyOutcome::NotFound => Err(AppError::NotFound("reply")),
        ReplyOutcome::NotAllowed => Err(AppError::Forbidden(
            "only the agent who added this reply, or an admin, may change or delete it".into(),
        )),
        ReplyOutcome::ShortcutTaken => Err(shortcut_taken()),
    }
}

fn shortcut_taken() -> AppError {
    AppError::conflict("shortcut_taken", "another reply has this shortcut")
}
