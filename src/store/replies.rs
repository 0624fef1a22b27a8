//! Canned replies (docs/api.md, "Canned replies"): one list shared by every agent. The unique
//! shortcut is the database's to keep: of two agents adding the same one at once, one gets
//! it. Who may change or delete a reply is [`Reply::may_be_changed_by`], decided in the same
//! transaction as the write.

use chrono::{DateTime, Utc};

use super::db::{Tx, on_pool, on_tx};
use super::{Store, StoreResult};
use crate::domain::{MessageBody, Shortcut};
use crate::model::{Agent, AgentId, Reply, ReplyId, now};

/// A reply's columns, as [`ReplyRow`] reads them.
macro_rules! reply_columns {
    () => {
        "id, shortcut, body, agent_id, updated_at"
    };
}

#[derive(sqlx::FromRow)]
struct ReplyRow {
    id: ReplyId,
    shortcut: String,
    body: String,
    agent_id: AgentId,
    updated_at: DateTime<Utc>,
}

impl From<ReplyRow> for Reply {
    fn from(r: ReplyRow) -> Self {
        Reply {
            id: r.id,
            shortcut: r.shortcut,
            body: r.body,
            agent_id: r.agent_id,
            updated_at: r.updated_at,
        }
    }
}

/// What a `PATCH` of a reply changes; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct ReplyChanges {
    pub shortcut: Option<Shortcut>,
    pub body: Option<MessageBody>,
}

/// How changing or deleting a reply went.
#[derive(Clone, Debug)]
pub enum ReplyOutcome<T> {
    Done(T),
    NotFound,
    /// The agent who asked is neither its author nor an admin.
    NotAllowed,
    /// Another reply has the shortcut asked for.
    ShortcutTaken,
}

impl Store {
    /// Every reply, by shortcut.
    #[tracing::instrument(skip_all, err)]
    pub async fn replies(&self) -> StoreResult<Vec<Reply>> {
        let rows: Vec<ReplyRow> = on_pool!(&self.reader, |db| {
            sqlx::query_as(concat!(
                "SELECT ",
                reply_columns!(),
                " FROM replies ORDER BY shortcut"
            ))
            .fetch_all(db)
            .await
        })?;
        Ok(rows.into_iter().map(Reply::from).collect())
    }

    /// A new reply by `author`; `None` when the shortcut is taken.
    #[tracing::instrument(skip_all, err)]
    pub async fn create_reply(
        &self,
        author: AgentId,
        shortcut: &Shortcut,
        body: &MessageBody,
    ) -> StoreResult<Option<Reply>> {
        let row: Option<ReplyRow> = on_pool!(&self.writer, |db| {
            sqlx::query_as(concat!(
                "INSERT INTO replies (shortcut, body, agent_id, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $4) ON CONFLICT (shortcut) DO NOTHING RETURNING ",
                reply_columns!()
            ))
            .bind(shortcut.as_str())
            .bind(body.as_str())
            .bind(author)
            .bind(now())
            .fetch_optional(db)
            .await
        })?;
        Ok(row.map(Reply::from))
    }

    /// Applies `changes` to reply `id` for `by`.
    #[tracing::instrument(skip_all, err)]
    pub async fn update_reply(
        &self,
        id: ReplyId,
        by: &Agent,
        changes: &ReplyChanges,
    ) -> StoreResult<ReplyOutcome<Reply>> {
        let mut tx = self.writer.begin_write().await?;
        if let Some(refused) = check_author(&mut tx, id, by).await? {
            return Ok(refused);
        }
        let updated: Result<Option<ReplyRow>, sqlx::Error> = on_tx!(&mut tx, |db| {
            sqlx::query_as(concat!(
                "UPDATE replies SET shortcut = COALESCE($2, shortcut), \
                 body = COALESCE($3, body), updated_at = $4 WHERE id = $1 RETURNING ",
                reply_columns!()
            ))
            .bind(id)
            .bind(changes.shortcut.as_ref().map(Shortcut::as_str))
            .bind(changes.body.as_ref().map(MessageBody::as_str))
            .bind(now())
            .fetch_optional(db)
            .await
        });
        let reply = match updated {
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                return Ok(ReplyOutcome::ShortcutTaken);
            }
            Err(e) => return Err(e.into()),
            // Deleted since the check above.
            Ok(None) => return Ok(ReplyOutcome::NotFound),
            Ok(Some(row)) => Reply::from(row),
        };
        tx.commit().await?;
        Ok(ReplyOutcome::Done(reply))
    }

    /// Deletes reply `id` for `by`.
    #[tracing::instrument(skip_all, err)]
    pub async fn delete_reply(&self, id: ReplyId, by: &Agent) -> StoreResult<ReplyOutcome<()>> {
        let mut tx = self.writer.begin_write().await?;
        if let Some(refused) = check_author(&mut tx, id, by).await? {
            return Ok(refused);
        }
        let deleted = on_tx!(&mut tx, |db| {
            sqlx::query("DELETE FROM replies WHERE id = $1")
                .bind(id)
                .execute(db)
                .await
                .map(|r| r.rows_affected())
        })?;
        tx.commit().await?;
        Ok(if deleted == 0 {
            ReplyOutcome::NotFound
        } else {
            ReplyOutcome::Done(())
        })
    }
}

/// Why `by` may not touch reply `id`, if they may not: it is not there, or it is not theirs
/// to change. Its author never changes, so what this reads still holds at the write.
async fn check_author<T>(
    tx: &mut Tx,
    id: ReplyId,
    by: &Agent,
) -> StoreResult<Option<ReplyOutcome<T>>> {
    let row: Option<ReplyRow> = on_tx!(tx, |db| {
        sqlx::query_as(concat!(
            "SELECT ",
            reply_columns!(),
            " FROM replies WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(db)
        .await
    })?;
    Ok(match row.map(Reply::from) {
        None => Some(ReplyOutcome::NotFound),
        Some(reply) if !reply.may_be_changed_by(by) => Some(ReplyOutcome::NotAllowed),
        Some(_) => None,
    })
}
