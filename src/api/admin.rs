//! Managing the agents (docs/api.md, "Administration"), for admins only: list them, invite one (a one-time
//! link valid 7 days), change an agent's name, numbers and role, disable or enable them.
//! Disabling ends the agent's sessions and disconnects their sockets on every instance.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, patch, post};
use chrono::Duration;
use serde::{Deserialize, Serialize};

use super::PathId;
use crate::AppState;
use crate::auth::{self, CurrentAdmin};
use crate::domain::{AgentName, NewAgent};
use crate::error::{AppError, AppResult, Json};
use crate::model::{AgentId, ManagedAgent, Role, now};
use crate::store::{AgentChanges, AgentUpdate, Invite};

/// How long an invite link works.
pub const INVITE_DAYS: i64 = 7;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/admin/agents", get(list).post(invite))
        .route("/api/admin/agents/{id}", patch(update))
        .route("/api/admin/agents/{id}/invite", post(reinvite))
}

/// `GET /api/admin/agents`.
#[derive(Debug, Serialize, Deserialize)]
pub struct Agents {
    pub agents: Vec<ManagedAgent>,
}

/// An invited agent and the link to send them.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Invited {
    pub agent: ManagedAgent,
    pub invite_url: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InviteBody {
    email: String,
    name: String,
    numbers: Vec<String>,
    role: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateBody {
    name: Option<String>,
    numbers: Option<Vec<String>>,
    role: Option<String>,
    disabled: Option<bool>,
}

fn parse_role(raw: Option<&str>) -> AppResult<Option<Role>> {
    raw.map(|r| {
        r.parse()
            .map_err(|()| AppError::invalid("role must be admin or agent"))
    })
    .transpose()
}

async fn list(State(state): State<AppState>, _: CurrentAdmin) -> AppResult<Json<Agents>> {
    let agents = state.services.store.managed_agents().await?;
    Ok(Json(Agents { agents }))
}

/// A new invite token: the link for the agent, and what the database keeps.
fn new_invite(state: &AppState) -> (String, String, chrono::DateTime<chrono::Utc>) {
    let (token, hash) = auth::new_token();
    let url = format!("{}/invite?token={token}", state.config.public_url);
    (url, hash, now() + Duration::days(INVITE_DAYS))
}

/// `POST /api/admin/agents`: an agent who chooses their password through the invite link.
async fn invite(
    State(state): State<AppState>,
    CurrentAdmin(admin): CurrentAdmin,
    Json(body): Json<InviteBody>,
) -> AppResult<(StatusCode, Json<Invited>)> {
    let new = NewAgent::parse_invited(&body.email, &body.name, &body.numbers)?;
    let role = parse_role(body.role.as_deref())?.unwrap_or(Role::Agent);
    let (invite_url, hash, expires_at) = new_invite(&state);
    let agent = state
        .services
        .store
        .invite_agent(
            &new,
            role,
            Invite {
                token_hash: &hash,
                expires_at,
            },
        )
        .await?
        .ok_or_else(|| {
            AppError::conflict("email_taken", "an agent with this email exists already")
        })?;
    tracing::info!(agent = %agent.id, by = %admin.id, "agent invited");
    Ok((StatusCode::CREATED, Json(Invited { agent, invite_url })))
}

/// `POST /api/admin/agents/:id/invite`: a new link for an agent whose invite was lost or
/// expired; the earlier links stop working.
async fn reinvite(
    State(state): State<AppState>,
    _: CurrentAdmin,
    PathId(id): PathId<AgentId>,
) -> AppResult<(StatusCode, Json<Invited>)> {
    let (invite_url, hash, expires_at) = new_invite(&state);
    let agent = state
        .services
        .store
        .renew_invite(
            id,
            Invite {
                token_hash: &hash,
                expires_at,
            },
        )
        .await?
        .ok_or_else(|| {
            AppError::conflict(
                "not_invited",
                "this agent has no pending invite (they chose a password already)",
            )
        })?;
    Ok((StatusCode::CREATED, Json(Invited { agent, invite_url })))
}

/// `PATCH /api/admin/agents/:id`.
async fn update(
    State(state): State<AppState>,
    CurrentAdmin(admin): CurrentAdmin,
    PathId(id): PathId<AgentId>,
    Json(body): Json<UpdateBody>,
) -> AppResult<Json<ManagedAgent>> {
    let changes = AgentChanges {
        name: body.name.as_deref().map(AgentName::try_from).transpose()?,
        numbers: body
            .numbers
            .as_deref()
            .map(NewAgent::parse_numbers)
            .transpose()?,
        role: parse_role(body.role.as_deref())?,
        disabled: body.disabled,
    };
    let store = &state.services.store;
    match store.update_agent(admin.id, id, &changes).await? {
        AgentUpdate::Updated {
            agent,
            ended_sessions,
            unassigned,
        } => {
            if !ended_sessions.is_empty() {
                state.services.events.end_sessions(&ended_sessions).await;
            }
            for change in &unassigned {
                state.services.events.conversation(change).await;
            }
            tracing::info!(agent = %agent.id, by = %admin.id, "agent changed");
            Ok(Json(agent))
        }
        AgentUpdate::NotFound => Err(AppError::NotFound("agent")),
        AgentUpdate::LastAdmin => Err(AppError::conflict(
            "last_admin",
            "this is the last active admin: make another agent admin first",
        )),
        AgentUpdate::NotAdmin => Err(AppError::Forbidden(
            "only an admin may manage agents".into(),
        )),
    }
}
