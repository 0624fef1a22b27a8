//! Statuses: Twilio's reports applied to stored messages, and reports for a sid not recorded
//! yet kept until it is. Whether a status may replace the stored one is decided in Rust
//! ([`Status::may_replace`]) on the locked row; the SQL only writes the decision.

use super::db::{Tx, new_seq, on_pool, on_tx};
use super::reads::audience_column;
use super::rows::{MessageRow, returning_columns};
use super::{
    Audience, MessageChange, MessageEvent, StatusOutcome, StatusReport, Store, StoreResult,
};
use crate::model::{Direction, Message, MessageId, Status, now};
use crate::twilio::errors::describe as describe_error;

/// The statement that finds a status callback's message by `$by` = `$1`, with its status,
/// locked (`$lock`) where writers are not serialised anyway.
macro_rules! status_target {
    ($by:literal, $lock:literal) => {
        concat!(
            "SELECT id, twilio_sid, direction, status FROM messages WHERE ",
            $by,
            " = $1",
            $lock
        )
    };
}

pub(super) use status_target;

/// A status callback's message, as `Dialect::status_target` finds it.
#[derive(sqlx::FromRow)]
struct Target {
    id: MessageId,
    twilio_sid: Option<String>,
    direction: Direction,
    /// Locked until the transaction ends.
    status: Status,
}

/// A status to write to a message, with its error and the sid it was reported for.
pub(super) struct StatusChange<'a> {
    pub status: Status,
    pub error_code: Option<i64>,
    pub error_message: Option<String>,
    pub sid: Option<&'a str>,
}

impl<'a> StatusChange<'a> {
    /// As Twilio reported it: an error code only counts with a failure, and is stored with
    /// its readable text.
    pub(super) fn reported(status: Status, error_code: Option<i64>, sid: &'a str) -> Self {
        let error_code = error_code.filter(|_| status.is_failure());
        Self {
            status,
            error_code,
            error_message: error_code.map(|c| describe_error(c).to_owned()),
            sid: Some(sid),
        }
    }
}

impl Store {
    /// Applies a status callback to the message it names (our id, else the sid), or keeps
    /// it until a send records the sid.
    #[tracing::instrument(skip_all, err)]
    pub async fn apply_status(&self, report: &StatusReport) -> StoreResult<StatusOutcome> {
        let mut tx = self.writer.begin().await?;
        let sql = tx.dialect().status_target[usize::from(report.message_id.is_none())];
        let found: Option<Target> = match report.message_id {
            Some(id) => on_tx!(&mut tx, |db| {
                sqlx::query_as(sql).bind(id).fetch_optional(db).await
            })?,
            None => on_tx!(&mut tx, |db| {
                sqlx::query_as(sql)
                    .bind(&report.twilio_sid)
                    .fetch_optional(db)
                    .await
            })?,
        };
        let Some(target) = found else {
            // Only an outbound message can still be given this sid (when its send is
            // recorded), so a status of the other direction will never apply.
            if report.message_id.is_some() || !report.status.reported_for(Direction::Outbound) {
                return Ok(StatusOutcome::Stale);
            }
            keep_early(&mut tx, report).await?;
            tx.commit().await?;
            return Ok(StatusOutcome::Deferred);
        };
        let id = target.id;
        if !report.status.reported_for(target.direction) {
            tracing::info!(
                message = %id,
                status = report.status.as_str(),
                direction = target.direction.as_str(),
                "status callback of the other direction; ignored"
            );
            return Ok(StatusOutcome::Stale);
        }
        if target.twilio_sid.is_some_and(|s| s != report.twilio_sid) {
            tracing::warn!(
                message = %id,
                sid = %report.twilio_sid,
                "status callback names another sid than the message has; ignored"
            );
            return Ok(StatusOutcome::Stale);
        }
        let change = StatusChange::reported(report.status, report.error_code, &report.twilio_sid);
        let Some((message, audience)) = write_status(&mut tx, id, target.status, &change).await?
        else {
            return Ok(StatusOutcome::Stale);
        };
        tx.commit().await?;
        Ok(StatusOutcome::Applied(Box::new(MessageChange {
            event: MessageEvent::Status,
            message,
            conversation: None,
            audience,
        })))
    }

    /// Deletes early statuses whose message never showed up (kept a day: Twilio's
    /// callbacks for messages sent elsewhere land there too).
    #[tracing::instrument(skip_all, err)]
    pub async fn prune_early_statuses(&self) -> StoreResult<u64> {
        let pruned = on_pool!(&self.writer, |db| {
            sqlx::query("DELETE FROM early_statuses WHERE received_at < $1")
                .bind(now() - chrono::Duration::days(1))
                .execute(db)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(pruned)
    }
}

async fn keep_early(tx: &mut Tx, report: &StatusReport) -> StoreResult<()> {
    on_tx!(tx, |db| {
        sqlx::query(
            "INSERT INTO early_statuses (twilio_sid, status, error_code, received_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind(&report.twilio_sid)
        .bind(report.status)
        .bind(report.error_code)
        .bind(now())
        .execute(db)
        .await
        .map(|r| r.rows_affected())
    })?;
    Ok(())
}

/// Applies the statuses kept for `sid` before it was recorded for outbound message `id`, as
/// if they had come in now, in the order they arrived.
pub(super) async fn apply_early(tx: &mut Tx, id: MessageId, sid: &str) -> StoreResult<()> {
    let early: Vec<(Status, Option<i64>)> = on_tx!(&mut *tx, |db| {
        sqlx::query_as(
            "SELECT status, error_code FROM early_statuses WHERE twilio_sid = $1 \
             ORDER BY received_at",
        )
        .bind(sid)
        .fetch_all(db)
        .await
    })?;
    if early.is_empty() {
        return Ok(());
    }
    on_tx!(&mut *tx, |db| {
        sqlx::query("DELETE FROM early_statuses WHERE twilio_sid = $1")
            .bind(sid)
            .execute(db)
            .await
            .map(|r| r.rows_affected())
    })?;
    if let Some((status, code)) = Status::settle(Direction::Outbound, early) {
        let change = StatusChange::reported(status, code, sid);
        advance_status(tx, id, &change).await?;
    }
    Ok(())
}

/// Message `id`'s status, locked until the transaction ends (see [`super::dialect::Dialect`]).
pub(super) async fn locked_status(tx: &mut Tx, id: MessageId) -> StoreResult<Option<Status>> {
    let sql = tx.dialect().lock_status;
    let status: Option<Status> = on_tx!(tx, |db| {
        sqlx::query_scalar(sql).bind(id).fetch_optional(db).await
    })?;
    Ok(status)
}

/// Writes `change` to message `id` if its status may replace the stored one; `None` if it
/// may not.
pub(super) async fn advance_status(
    tx: &mut Tx,
    id: MessageId,
    change: &StatusChange<'_>,
) -> StoreResult<Option<Message>> {
    let Some(current) = locked_status(tx, id).await? else {
        return Ok(None);
    };
    let written = write_status(tx, id, current, change).await?;
    Ok(written.map(|(message, _)| message))
}

/// A message as a status write returns it, with who hears about it.
#[derive(sqlx::FromRow)]
struct WrittenRow {
    #[sqlx(flatten)]
    row: MessageRow,
    audience: Option<String>,
}

/// Writes `change` over `current`, the status of message `id` as read under its lock, if it
/// may replace it; the message as written and its audience, read in the same statement. The
/// sid is written only to a message without one, and only if no other message holds it (one
/// that Twilio's `201` gave a sid another message held: its callbacks, found by our id,
/// still move it on).
async fn write_status(
    tx: &mut Tx,
    id: MessageId,
    current: Status,
    change: &StatusChange<'_>,
) -> StoreResult<Option<(Message, Audience)>> {
    if !change.status.may_replace(current) {
        return Ok(None);
    }
    let nth = tx.change()?;
    let written: WrittenRow = on_tx!(tx, |db| {
        sqlx::query_as(concat!(
            "UPDATE messages SET status = $2, status_rank = $3, error_code = $4, \
               error_message = $5, \
               twilio_sid = CASE WHEN twilio_sid IS NOT NULL \
                 OR EXISTS (SELECT 1 FROM messages held WHERE held.twilio_sid = $6) \
                 THEN twilio_sid ELSE $6 END, \
               updated_at = $7, seq = ",
            new_seq!("8"),
            " WHERE id = $1 RETURNING ",
            returning_columns!(),
            ", ",
            audience_column!()
        ))
        .bind(id)
        .bind(change.status)
        .bind(change.status.rank())
        .bind(change.error_code)
        .bind(change.error_message.as_deref())
        .bind(change.sid)
        .bind(now())
        .bind(nth)
        .fetch_one(db)
        .await
    })?;
    let audience = Audience::parse(written.audience.as_deref())?;
    Ok(Some((written.row.into(), audience)))
}
