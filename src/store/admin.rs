//! What an admin does to agents (docs/api.md, "Administration"): invite them, change their name, numbers
//! and role, disable them. The rule that some active admin remains is decided inside the
//! write, with the other writers of `agents` held off (`lock_agents`), so two admins
//! demoting each other at once leave one.

use chrono::{DateTime, Utc};

use super::agents::{agent_by_id, insert_agent, lock_agents, set_numbers};
use super::db::{Tx, on_pool, on_tx};
use super::inbox::unassign_lost;
use super::rows::{AgentRow, agent_select};
use super::{ConversationChange, Store, StoreError, StoreResult};
use crate::domain::{AgentName, NewAgent, PhoneNumber};
use crate::model::{Agent, AgentId, ManagedAgent, Role, now};

/// A one-time link to choose a password: what the database keeps of it.
#[derive(Clone, Copy, Debug)]
pub struct Invite<'a> {
    /// The SHA-256 of the link's token (the token itself is only in the link).
    pub token_hash: &'a str,
    pub expires_at: DateTime<Utc>,
}

/// What a `PATCH /api/admin/agents/:id` changes; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct AgentChanges {
    pub name: Option<AgentName>,
    pub numbers: Option<Vec<PhoneNumber>>,
    pub role: Option<Role>,
    pub disabled: Option<bool>,
}

/// How an [`AgentChanges`] went.
#[derive(Debug)]
pub enum AgentUpdate {
    /// Done; when the agent was disabled, the token hashes of the sessions that ended; the
    /// conversations that lost their assignee with it (the agent was disabled, or lost their
    /// number).
    Updated {
        agent: ManagedAgent,
        ended_sessions: Vec<String>,
        unassigned: Vec<ConversationChange>,
    },
    NotFound,
    /// It would leave no active admin.
    LastAdmin,
    /// The admin who asked is no longer one (another admin got there first).
    NotAdmin,
}

impl Store {
    /// Every agent, oldest first, as the admin view shows them.
    #[tracing::instrument(skip_all, err)]
    pub async fn managed_agents(&self) -> StoreResult<Vec<ManagedAgent>> {
        let rows: Vec<AgentRow> = on_pool!(&self.reader, |db| {
            sqlx::query_as(concat!(agent_select!(), "ORDER BY a.id"))
                .fetch_all(db)
                .await
        })?;
        Ok(rows.into_iter().map(AgentRow::into_managed).collect())
    }

    /// An invited agent, without a password until they accept the invite whose token hash
    /// is given; `None` when the email is taken.
    #[tracing::instrument(skip_all, err)]
    pub async fn invite_agent(
        &self,
        agent: &NewAgent,
        role: Role,
        invite: Invite<'_>,
    ) -> StoreResult<Option<ManagedAgent>> {
        let mut tx = self.writer.begin().await?;
        lock_agents(&mut tx).await?;
        let Some(id) = insert_agent(&mut tx, agent, "", role).await? else {
            return Ok(None);
        };
        set_numbers(&mut tx, id, &agent.numbers).await?;
        insert_invite(&mut tx, id, invite).await?;
        let agent = managed_by_id(&mut tx, id).await?;
        tx.commit().await?;
        Ok(Some(agent))
    }

    /// A new invite for an agent who has not accepted theirs (the old links die); `None`
    /// when there is no such agent, or they chose a password already.
    #[tracing::instrument(skip_all, err)]
    pub async fn renew_invite(
        &self,
        agent: AgentId,
        invite: Invite<'_>,
    ) -> StoreResult<Option<ManagedAgent>> {
        let mut tx = self.writer.begin().await?;
        let pending: Option<AgentId> = on_tx!(&mut tx, |db| {
            sqlx::query_scalar("SELECT id FROM agents WHERE id = $1 AND password_hash = ''")
                .bind(agent)
                .fetch_optional(db)
                .await
        })?;
        if pending.is_none() {
            return Ok(None);
        }
        delete_invites(&mut tx, agent).await?;
        insert_invite(&mut tx, agent, invite).await?;
        let agent = managed_by_id(&mut tx, agent).await?;
        tx.commit().await?;
        Ok(Some(agent))
    }

    /// The email of the agent this invite is for, if it can still be accepted: known,
    /// unused, not expired, and its agent not disabled.
    #[tracing::instrument(skip_all, err)]
    pub async fn open_invite(&self, token_hash: &str) -> StoreResult<Option<String>> {
        let email: Option<String> = on_pool!(&self.reader, |db| {
            sqlx::query_scalar(
                "SELECT a.email FROM invites i JOIN agents a ON a.id = i.agent_id \
                 WHERE i.token_hash = $1 AND i.expires_at > $2 AND NOT a.disabled",
            )
            .bind(token_hash)
            .bind(now())
            .fetch_optional(db)
            .await
        })?;
        Ok(email)
    }

    /// Uses the invite up and gives its agent the password; `None` when the invite cannot
    /// be accepted (of concurrent uses, one succeeds).
    #[tracing::instrument(skip_all, err)]
    pub async fn accept_invite(
        &self,
        token_hash: &str,
        password_hash: &str,
    ) -> StoreResult<Option<Agent>> {
        let mut tx = self.writer.begin().await?;
        let agent: Option<AgentId> = on_tx!(&mut tx, |db| {
            sqlx::query_scalar(
                "DELETE FROM invites WHERE token_hash = $1 AND expires_at > $2 \
                 RETURNING agent_id",
            )
            .bind(token_hash)
            .bind(now())
            .fetch_optional(db)
            .await
        })?;
        let Some(agent) = agent else { return Ok(None) };
        let set = on_tx!(&mut tx, |db| {
            sqlx::query(
                "UPDATE agents SET password_hash = $2 \
                 WHERE id = $1 AND password_hash = '' AND NOT disabled",
            )
            .bind(agent)
            .bind(password_hash)
            .execute(db)
            .await
            .map(|r| r.rows_affected())
        })?;
        if set == 0 {
            return Ok(None);
        }
        delete_invites(&mut tx, agent).await?;
        let agent = agent_by_id(&mut tx, agent).await?;
        tx.commit().await?;
        Ok(Some(agent))
    }

    /// Applies `changes` to agent `id` for the admin `by`. Disabling also ends the agent's
    /// sessions (their sockets are the caller's to disconnect).
    #[tracing::instrument(skip_all, err)]
    pub async fn update_agent(
        &self,
        by: AgentId,
        id: AgentId,
        changes: &AgentChanges,
    ) -> StoreResult<AgentUpdate> {
        let mut tx = self.writer.begin().await?;
        lock_agents(&mut tx).await?;
        if !is_active_admin(&mut tx, by).await? {
            return Ok(AgentUpdate::NotAdmin);
        }
        let Some(current) = find_managed(&mut tx, id).await? else {
            return Ok(AgentUpdate::NotFound);
        };
        let stays_admin = changes.role.unwrap_or(current.role) == Role::Admin
            && !changes.disabled.unwrap_or(current.disabled);
        if current.role == Role::Admin
            && !current.disabled
            && !stays_admin
            && active_admins_besides(&mut tx, id).await? == 0
        {
            return Ok(AgentUpdate::LastAdmin);
        }
        on_tx!(&mut tx, |db| {
            sqlx::query(
                "UPDATE agents SET name = COALESCE($2, name), role = COALESCE($3, role), \
                 disabled = COALESCE($4, disabled) WHERE id = $1",
            )
            .bind(id)
            .bind(changes.name.as_ref().map(AgentName::as_str))
            .bind(changes.role)
            .bind(changes.disabled)
            .execute(db)
            .await
            .map(|r| r.rows_affected())
        })?;
        if let Some(numbers) = &changes.numbers {
            on_tx!(&mut tx, |db| {
                sqlx::query("DELETE FROM agent_numbers WHERE agent_id = $1")
                    .bind(id)
                    .execute(db)
                    .await
                    .map(|r| r.rows_affected())
            })?;
            set_numbers(&mut tx, id, numbers).await?;
        }
        let ended_sessions: Vec<String> = if changes.disabled == Some(true) {
            on_tx!(&mut tx, |db| {
                sqlx::query_scalar("DELETE FROM sessions WHERE agent_id = $1 RETURNING token_hash")
                    .bind(id)
                    .fetch_all(db)
                    .await
            })?
        } else {
            Vec::new()
        };
        let unassigned = if changes.numbers.is_some() || changes.disabled == Some(true) {
            unassign_lost(&mut tx, id).await?
        } else {
            Vec::new()
        };
        let agent = managed_by_id(&mut tx, id).await?;
        tx.commit().await?;
        Ok(AgentUpdate::Updated {
            agent,
            ended_sessions,
            unassigned,
        })
    }

    /// Deletes the invites that expired unused.
    #[tracing::instrument(skip_all, err)]
    pub async fn prune_invites(&self) -> StoreResult<u64> {
        let pruned = on_pool!(&self.writer, |db| {
            sqlx::query("DELETE FROM invites WHERE expires_at <= $1")
                .bind(now())
                .execute(db)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(pruned)
    }
}

async fn is_active_admin(tx: &mut Tx, id: AgentId) -> StoreResult<bool> {
    let found: Option<AgentId> = on_tx!(tx, |db| {
        sqlx::query_scalar(
            "SELECT id FROM agents WHERE id = $1 AND role = 'admin' AND NOT disabled",
        )
        .bind(id)
        .fetch_optional(db)
        .await
    })?;
    Ok(found.is_some())
}

async fn active_admins_besides(tx: &mut Tx, id: AgentId) -> StoreResult<i64> {
    let count: i64 = on_tx!(tx, |db| {
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM agents WHERE role = 'admin' AND NOT disabled AND id <> $1",
        )
        .bind(id)
        .fetch_one(db)
        .await
    })?;
    Ok(count)
}

async fn find_managed(tx: &mut Tx, id: AgentId) -> StoreResult<Option<ManagedAgent>> {
    let row: Option<AgentRow> = on_tx!(tx, |db| {
        sqlx::query_as(concat!(agent_select!(), "WHERE a.id = $1"))
            .bind(id)
            .fetch_optional(db)
            .await
    })?;
    Ok(row.map(AgentRow::into_managed))
}

/// Agent `id`, whom this transaction wrote.
async fn managed_by_id(tx: &mut Tx, id: AgentId) -> StoreResult<ManagedAgent> {
    find_managed(tx, id)
        .await?
        .ok_or(StoreError::Other(sqlx::Error::RowNotFound))
}

async fn insert_invite(tx: &mut Tx, agent: AgentId, invite: Invite<'_>) -> StoreResult<()> {
    on_tx!(tx, |db| {
        sqlx::query(
            "INSERT INTO invites (token_hash, agent_id, created_at, expires_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(invite.token_hash)
        .bind(agent)
        .bind(now())
        .bind(invite.expires_at)
        .execute(db)
        .await
        .map(|r| r.rows_affected())
    })?;
    Ok(())
}

async fn delete_invites(tx: &mut Tx, agent: AgentId) -> StoreResult<()> {
    on_tx!(tx, |db| {
        sqlx::query("DELETE FROM invites WHERE agent_id = $1")
            .bind(agent)
            .execute(db)
            .await
            .map(|r| r.rows_affected())
    })?;
    Ok(())
}
