//! Agents, their numbers, and their sessions. A disabled agent has no session (ending them
//! is part of disabling, in `admin.rs`), and none of theirs is honoured meanwhile.

use std::collections::HashSet;

use chrono::{DateTime, Utc};

use super::db::{Tx, on_pool, on_tx};
use super::rows::{AgentRow, SessionRow, agent_select};
use super::{Session, SigningIn, Store, StoreResult};
use crate::domain::{NewAgent, PhoneNumber};
use crate::model::{Agent, AgentId, Role, now};

const INSERT_NUMBER: &str =
    "INSERT INTO agent_numbers (agent_id, number) VALUES ($1, $2) ON CONFLICT DO NOTHING";

/// Inserts agent `$1`–`$4` (email, name, password hash, created at) with role `$5`, unless
/// the email is taken; their id. While no active admin exists, the new agent is one: the
/// oldest active agent is the admin then, however the first agents came to be.
const INSERT_AGENT: &str = "INSERT INTO agents \
    (email, name, password_hash, created_at, role) VALUES ($1, $2, $3, $4, \
    CASE WHEN $5 = 'admin' OR NOT EXISTS \
    (SELECT 1 FROM agents WHERE role = 'admin' AND NOT disabled) THEN 'admin' ELSE 'agent' END) \
    ON CONFLICT (email) DO NOTHING RETURNING id";

/// Inserts session `$1` of agent `$2` (created at `$3`, expiring at `$4`) only if the agent
/// is not disabled, reading their row with `$lock`.
macro_rules! insert_session {
    ($lock:literal) => {
        concat!(
            "INSERT INTO sessions (token_hash, agent_id, created_at, expires_at) \
             SELECT $1, id, $3, $4 FROM agents WHERE id = $2 AND NOT disabled",
            $lock
        )
    };
}
pub(super) use insert_session;

/// Whether session `s` of agent `a` still holds at `$2`: not expired, its agent enabled.
macro_rules! session_holds {
    () => {
        "s.expires_at > $2 AND NOT a.disabled"
    };
}

/// Of the sessions whose token hashes are the JSON array `$1`, listed by `$each` (each
/// backend's way to read one), those that hold at `$2`: their token hashes.
macro_rules! live_sessions_sql {
    ($each:literal) => {
        concat!(
            "SELECT s.token_hash FROM sessions s JOIN agents a ON a.id = s.agent_id \
             WHERE s.token_hash IN (",
            $each,
            ") AND ",
            $crate::store::agents::session_holds!()
        )
    };
}

pub(super) use {live_sessions_sql, session_holds};

impl Store {
    #[tracing::instrument(skip_all, err)]
    pub async fn count_agents(&self) -> StoreResult<i64> {
        let count: i64 = on_pool!(&self.reader, |db| {
            sqlx::query_scalar("SELECT COUNT(*) FROM agents")
                .fetch_one(db)
                .await
        })?;
        Ok(count)
    }

    /// An agent (an admin if there is none yet); `None` when the email is taken.
    pub async fn create_agent(
        &self,
        agent: &NewAgent,
        password_hash: &str,
    ) -> StoreResult<Option<Agent>> {
        self.create_agent_as(agent, password_hash, Role::Agent)
            .await
    }

    /// An agent with `role` (or an admin if there is none yet); `None` when the email is
    /// taken.
    #[tracing::instrument(skip_all, err)]
    pub async fn create_agent_as(
        &self,
        agent: &NewAgent,
        password_hash: &str,
        role: Role,
    ) -> StoreResult<Option<Agent>> {
        let mut tx = self.writer.begin().await?;
        lock_agents(&mut tx).await?;
        let id = insert_agent(&mut tx, agent, password_hash, role).await?;
        add_numbers(tx, id, &agent.numbers).await
    }

    /// The first agent, made by the setup link: `None` when any agent exists, whoever made
    /// it (this process, the CLI, another instance), decided in the write itself.
    #[tracing::instrument(skip_all, err)]
    pub async fn create_first_agent(
        &self,
        agent: &NewAgent,
        password_hash: &str,
    ) -> StoreResult<Option<Agent>> {
        let mut tx = self.writer.begin().await?;
        lock_agents(&mut tx).await?;
        let id: Option<AgentId> = on_tx!(&mut tx, |db| {
            sqlx::query_scalar(
                "INSERT INTO agents (email, name, password_hash, created_at, role) \
                 SELECT $1, $2, $3, $4, 'admin' WHERE NOT EXISTS (SELECT 1 FROM agents) \
                 ON CONFLICT (email) DO NOTHING RETURNING id",
            )
            .bind(agent.email.as_str())
            .bind(agent.name.as_str())
            .bind(password_hash)
            .bind(now())
            .fetch_optional(db)
            .await
        })?;
        add_numbers(tx, id, &agent.numbers).await
    }

    /// The agent with this email, disabled or not, as a sign-in checks them.
    #[tracing::instrument(skip_all, err)]
    pub async fn signing_in(&self, email: &str) -> StoreResult<Option<SigningIn>> {
        let row: Option<AgentRow> = on_pool!(&self.reader, |db| {
            sqlx::query_as(concat!(agent_select!(), "WHERE a.email = $1"))
                .bind(email)
                .fetch_optional(db)
                .await
        })?;
        Ok(row.map(AgentRow::into_signing_in))
    }

    /// The agent with this email, and their password hash.
    #[tracing::instrument(skip_all, err)]
    pub async fn agent_by_email(&self, email: &str) -> StoreResult<Option<(Agent, String)>> {
        let row: Option<AgentRow> = on_pool!(&self.reader, |db| {
            sqlx::query_as(concat!(agent_select!(), "WHERE a.email = $1"))
                .bind(email)
                .fetch_optional(db)
                .await
        })?;
        Ok(row.map(AgentRow::into_credentials))
    }

    #[tracing::instrument(skip_all, err)]
    pub async fn list_agents(&self) -> StoreResult<Vec<Agent>> {
        let rows: Vec<AgentRow> = on_pool!(&self.reader, |db| {
            sqlx::query_as(concat!(agent_select!(), "ORDER BY a.id"))
                .fetch_all(db)
                .await
        })?;
        Ok(rows.into_iter().map(AgentRow::into_agent).collect())
    }

    #[tracing::instrument(skip_all, err)]
    pub async fn change_numbers(
        &self,
        agent: AgentId,
        add: &[PhoneNumber],
        remove: &[PhoneNumber],
    ) -> StoreResult<Agent> {
        let mut tx = self.writer.begin().await?;
        set_numbers(&mut tx, agent, add).await?;
        for number in remove {
            on_tx!(&mut tx, |db| {
                sqlx::query("DELETE FROM agent_numbers WHERE agent_id = $1 AND number = $2")
                    .bind(agent)
                    .bind(number.as_str())
                    .execute(db)
                    .await
                    .map(|r| r.rows_affected())
            })?;
        }
        // This process has no sockets to tell: pages see it in their next `sync`.
        super::inbox::unassign_lost(&mut tx, agent).await?;
        let agent = agent_by_id(&mut tx, agent).await?;
        tx.commit().await?;
        Ok(agent)
    }

    /// Starts a session of `agent` unless they are disabled, which the insert itself
    /// decides; whether it started. A disable that ends the agent's sessions meanwhile
    /// either finds this one or makes it find the agent disabled (the dialect's
    /// `insert_session`).
    #[tracing::instrument(skip_all, err)]
    pub async fn create_session(
        &self,
        token_hash: &str,
        agent: AgentId,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let insert = self.writer.dialect().insert_session;
        let inserted = on_pool!(&self.writer, |db| {
            sqlx::query(insert)
                .bind(token_hash)
                .bind(agent)
                .bind(now())
                .bind(expires_at)
                .execute(db)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(inserted == 1)
    }

    /// The session with this token hash, if it has not expired.
    #[tracing::instrument(skip_all, err)]
    pub async fn session(&self, token_hash: &str) -> StoreResult<Option<Session>> {
        let row: Option<SessionRow> = on_pool!(&self.reader, |db| {
            sqlx::query_as(concat!(
                agent_select!(", s.expires_at"),
                "JOIN sessions s ON s.agent_id = a.id WHERE s.token_hash = $1 AND ",
                session_holds!()
            ))
            .bind(token_hash)
            .bind(now())
            .fetch_optional(db)
            .await
        })?;
        Ok(row.map(|r| Session {
            agent: r.agent.into_agent(),
            expires_at: r.expires_at,
        }))
    }

    /// Which of these sessions (by token hash) still hold, as [`Store::session`] decides it
    /// for one: a single query however many there are.
    #[tracing::instrument(skip_all, fields(sessions = token_hashes.len()), err)]
    pub async fn live_sessions(&self, token_hashes: &[&str]) -> StoreResult<HashSet<String>> {
        let list = serde_json::Value::from(token_hashes).to_string();
        let sql = self.reader.dialect().live_sessions;
        let live: Vec<String> = on_pool!(&self.reader, |db| {
            sqlx::query_scalar(sql)
                .bind(&list)
                .bind(now())
                .fetch_all(db)
                .await
        })?;
        Ok(live.into_iter().collect())
    }

    pub async fn session_agent(&self, token_hash: &str) -> StoreResult<Option<Agent>> {
        Ok(self.session(token_hash).await?.map(|s| s.agent))
    }

    #[tracing::instrument(skip_all, err)]
    pub async fn delete_session(&self, token_hash: &str) -> StoreResult<()> {
        on_pool!(&self.writer, |db| {
            sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
                .bind(token_hash)
                .execute(db)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(())
    }

    /// Deletes the sessions that have expired; their token hashes.
    #[tracing::instrument(skip_all, err)]
    pub async fn end_expired_sessions(&self) -> StoreResult<Vec<String>> {
        let hashes: Vec<String> = on_pool!(&self.writer, |db| {
            sqlx::query_scalar("DELETE FROM sessions WHERE expires_at <= $1 RETURNING token_hash")
                .bind(now())
                .fetch_all(db)
                .await
        })?;
        Ok(hashes)
    }
}

/// Makes other writers of `agents` wait for this transaction where writers are not
/// serialised anyway, so that what it read of the roles still holds when it commits.
pub(super) async fn lock_agents(tx: &mut Tx) -> StoreResult<()> {
    if let Some(lock) = tx.dialect().lock_agents {
        on_tx!(tx, |db| sqlx::query(lock)
            .execute(db)
            .await
            .map(|r| r.rows_affected()))?;
    }
    Ok(())
}

/// [`INSERT_AGENT`]; `None` when the email is taken.
pub(super) async fn insert_agent(
    tx: &mut Tx,
    agent: &NewAgent,
    password_hash: &str,
    role: Role,
) -> StoreResult<Option<AgentId>> {
    let id: Option<AgentId> = on_tx!(tx, |db| {
        sqlx::query_scalar(INSERT_AGENT)
            .bind(agent.email.as_str())
            .bind(agent.name.as_str())
            .bind(password_hash)
            .bind(now())
            .bind(role)
            .fetch_optional(db)
            .await
    })?;
    Ok(id)
}

pub(super) async fn agent_by_id(tx: &mut Tx, id: AgentId) -> StoreResult<Agent> {
    let row: AgentRow = on_tx!(tx, |db| {
        sqlx::query_as(concat!(agent_select!(), "WHERE a.id = $1"))
            .bind(id)
            .fetch_one(db)
            .await
    })?;
    Ok(row.into_agent())
}

/// Gives a just-inserted agent (`id`, `None` if nothing was inserted) its numbers and commits.
async fn add_numbers(
    mut tx: Tx,
    id: Option<AgentId>,
    numbers: &[PhoneNumber],
) -> StoreResult<Option<Agent>> {
    let Some(id) = id else { return Ok(None) };
    set_numbers(&mut tx, id, numbers).await?;
    let agent = agent_by_id(&mut tx, id).await?;
    tx.commit().await?;
    Ok(Some(agent))
}

/// Gives agent `id` these numbers (besides any they hold).
pub(super) async fn set_numbers(
    tx: &mut Tx,
    id: AgentId,
    numbers: &[PhoneNumber],
) -> StoreResult<()> {
    for number in numbers {
        on_tx!(tx, |db| {
            sqlx::query(INSERT_NUMBER)
                .bind(id)
                .bind(number.as_str())
                .execute(db)
                .await
                .map(|r| r.rows_affected())
        })?;
    }
    Ok(())
}
