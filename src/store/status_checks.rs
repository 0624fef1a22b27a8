//! Checks of sent messages' statuses: when Twilio takes a message whose status is not final,
//! a row plans a fetch of it from Twilio, in case its status callbacks never come. Each check
//! is claimed by moving the row's due time a lease ahead, in one statement, so instances
//! sharing the database never fetch the same message for the same check.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::db::{Tx, on_pool, on_tx};
use super::{StatusCheck, Store, StoreResult};
use crate::model::{MessageId, Status, now};

/// A check as the claim returns it.
#[derive(sqlx::FromRow)]
struct ClaimedCheck {
    message_id: MessageId,
    twilio_sid: String,
    accepted_at: DateTime<Utc>,
    checks: i64,
}

impl Store {
    /// Claims the first due check for `lease`: another instance takes it only if this one
    /// has neither ended nor rescheduled it by then.
    #[tracing::instrument(skip_all, err)]
    pub async fn claim_status_check(&self, lease: Duration) -> StoreResult<Option<StatusCheck>> {
        let t = now();
        let until = t + chrono::Duration::from_std(lease).unwrap_or_default();
        let mut tx = self.writer.begin().await?;
        // Two claims of the same row queue on it; the second finds it no longer due (its due
        // time is re-read once the first commits) and claims nothing this time.
        let claimed: Option<ClaimedCheck> = on_tx!(&mut tx, |db| {
            sqlx::query_as(
                "UPDATE status_checks SET due_at = $1, checks = checks + 1 \
                 WHERE message_id = (SELECT message_id FROM status_checks WHERE due_at <= $2 \
                     ORDER BY due_at, message_id LIMIT 1) \
                   AND due_at <= $2 \
                 RETURNING message_id, twilio_sid, accepted_at, checks",
            )
            .bind(until)
            .bind(t)
            .fetch_optional(db)
            .await
        })?;
        let Some(check) = claimed else {
            return Ok(None);
        };
        let status: Status = on_tx!(&mut tx, |db| {
            sqlx::query_scalar("SELECT status FROM messages WHERE id = $1")
                .bind(check.message_id)
                .fetch_one(db)
                .await
        })?;
        tx.commit().await?;
        Ok(Some(StatusCheck {
            message: check.message_id,
            sid: check.twilio_sid,
            accepted_at: check.accepted_at,
            nth: check.checks,
            status,
        }))
    }

    /// When the next check is due, if any is planned.
    #[tracing::instrument(skip_all, err)]
    pub async fn next_status_check(&self) -> StoreResult<Option<DateTime<Utc>>> {
        let due = on_pool!(&self.reader, |db| {
            sqlx::query_scalar("SELECT MIN(due_at) FROM status_checks")
                .fetch_one(db)
                .await
        })?;
        Ok(due)
    }

    /// Plans message `id`'s next check at `at`.
    #[tracing::instrument(skip_all, err)]
    pub async fn reschedule_status_check(
        &self,
        id: MessageId,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        on_pool!(&self.writer, |db| {
            sqlx::query("UPDATE status_checks SET due_at = $2 WHERE message_id = $1")
                .bind(id)
                .bind(at)
                .execute(db)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(())
    }

    /// Checks message `id` no more.
    #[tracing::instrument(skip_all, err)]
    pub async fn end_status_check(&self, id: MessageId) -> StoreResult<()> {
        on_pool!(&self.writer, |db| {
            sqlx::query("DELETE FROM status_checks WHERE message_id = $1")
                .bind(id)
                .execute(db)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(())
    }
}

/// Plans the first check of message `id`, which Twilio took as `sid`, at `at`.
pub(super) async fn plan_status_check(
    tx: &mut Tx,
    id: MessageId,
    sid: &str,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    on_tx!(tx, |db| {
        sqlx::query(
            "INSERT INTO status_checks (message_id, twilio_sid, accepted_at, due_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind(id)
        .bind(sid)
        .bind(now())
        .bind(at)
        .execute(db)
        .await
        .map(|r| r.rows_affected())
    })?;
    Ok(())
}
