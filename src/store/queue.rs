//! The durable sending queue: claims with a lease and a fencing token, and what a worker
//! records about its attempt. Every write after the claim names it and changes nothing
//! (answering `false`, `None` or [`Accepted::LostClaim`]) once it is no longer the job's,
//! with one exception: the sid of a `201`, which is kept on the job for whoever holds it,
//! so that no one posts the message again.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::db::{Tx, new_seq, on_pool, on_tx};
use super::pacing::pass_gate;
use super::reads::{audience, conversation_by_id, message_by_id};
use super::status_checks::plan_status_check;
use super::statuses::{StatusChange, advance_status, apply_early, locked_status};
use super::{
    Acceptance, Accepted, Claim, CreateGate, DbClock, DbTime, MessageChange, MessageEvent,
    PaceGate, QueueStats, SendJob, Store, StoreResult,
};
use crate::model::{Direction, MessageId, Status, now};

/// The claim statement, with what locks the chosen row on backends that need it.
macro_rules! claim_sql {
    ($lock:literal) => {
        concat!(
            "UPDATE send_jobs SET lease_until = $1, attempts = attempts + 1, \
               claim = claim + 1, \
               first_tried_at = COALESCE(first_tried_at, $2), \
               maybe_sent = (maybe_sent OR lease_until IS NOT NULL) \
             WHERE message_id = (SELECT message_id FROM send_jobs \
                 WHERE run_at <= $2 AND (lease_until IS NULL OR lease_until < $2) \
                 ORDER BY run_at, message_id LIMIT 1",
            $lock,
            ") AND (lease_until IS NULL OR lease_until < $2) \
             RETURNING message_id, claim, attempts, first_tried_at, maybe_sent, last_error, \
               slot_us, twilio_sid, (SELECT now_us FROM db_clock) AS now_us"
        )
    };
}

pub(super) use claim_sql;

/// A job as the claim statement returns it.
#[derive(sqlx::FromRow)]
struct ClaimedRow {
    message_id: MessageId,
    /// The claim's fencing token.
    claim: i64,
    attempts: i64,
    first_tried_at: Option<DateTime<Utc>>,
    maybe_sent: bool,
    last_error: Option<String>,
    slot_us: Option<i64>,
    twilio_sid: Option<String>,
    /// The database's clock at the claim.
    now_us: i64,
}

const DELETE_JOB: &str = "DELETE FROM send_jobs WHERE message_id = $1 AND claim = $2";

impl Store {
    /// Claims the first due job for `lease`.
    #[tracing::instrument(skip_all, err)]
    pub async fn claim_send(&self, lease: Duration) -> StoreResult<Option<SendJob>> {
        let t = now();
        let until = t + chrono::Duration::from_std(lease).unwrap_or_default();
        let mut tx = self.writer.begin().await?;
        let sql = tx.dialect().claim;
        let claimed: Option<ClaimedRow> = on_tx!(&mut tx, |db| {
            sqlx::query_as(sql)
                .bind(until)
                .bind(t)
                .fetch_optional(db)
                .await
        })?;
        let Some(row) = claimed else {
            return Ok(None);
        };
        let message = message_by_id(&mut tx, row.message_id).await?;
        let opted_out: bool = on_tx!(&mut tx, |db| {
            sqlx::query_scalar("SELECT opted_out FROM conversations WHERE id = $1")
                .bind(message.conversation_id)
                .fetch_one(db)
                .await
        })?;
        let media_tokens = on_tx!(&mut tx, |db| {
            sqlx::query_scalar("SELECT token FROM message_media WHERE message_id = $1 ORDER BY n")
                .bind(row.message_id)
                .fetch_all(db)
                .await
        })?;
        tx.commit().await?;
        Ok(Some(SendJob {
            claim: Claim {
                message: row.message_id,
                token: row.claim,
            },
            message,
            conversation_opted_out: opted_out,
            attempts: row.attempts,
            first_tried_at: row.first_tried_at.unwrap_or(t),
            maybe_sent: row.maybe_sent,
            last_error: row.last_error,
            created_sid: row.twilio_sid,
            slot: row.slot_us.map(DbTime),
            claimed: DbClock::read_now(row.now_us),
            media_tokens,
        }))
    }

    /// Extends the claim's lease to `lease` from now.
    #[tracing::instrument(skip_all, err)]
    pub async fn renew_lease(&self, claim: Claim, lease: Duration) -> StoreResult<bool> {
        let until = now() + chrono::Duration::from_std(lease).unwrap_or_default();
        let renewed = on_pool!(&self.writer, |db| {
            sqlx::query(
                "UPDATE send_jobs SET lease_until = $3 WHERE message_id = $1 AND claim = $2",
            )
            .bind(claim.message)
            .bind(claim.token)
            .bind(until)
            .execute(db)
            .await
            .map(|r| r.rows_affected())
        })?;
        Ok(renewed > 0)
    }

    /// Gets the claimed message ready for its create: renews the lease (the create starts a
    /// whole lease ahead), makes sure no `201` was kept on the job meanwhile, and with
    /// `pace`, lets the create go only once the number's last one is a message's length
    /// past, counting this one (`pacing.rs`).
    #[tracing::instrument(skip_all, err)]
    pub async fn ready_to_create(
        &self,
        claim: Claim,
        lease: Duration,
        pace: Option<PaceGate<'_>>,
    ) -> StoreResult<CreateGate> {
        let until = now() + chrono::Duration::from_std(lease).unwrap_or_default();
        let mut tx = self.writer.begin().await?;
        let job: Option<Option<String>> = on_tx!(&mut tx, |db| {
            sqlx::query_scalar(
                "UPDATE send_jobs SET lease_until = $3 WHERE message_id = $1 AND claim = $2 \
                 RETURNING twilio_sid",
            )
            .bind(claim.message)
            .bind(claim.token)
            .bind(until)
            .fetch_optional(db)
            .await
        })?;
        let gate = match (job, pace) {
            (None, _) => return Ok(CreateGate::Lost),
            (Some(Some(sid)), _) => CreateGate::Created(sid),
            (Some(None), None) => CreateGate::Go(Duration::ZERO),
            (Some(None), Some(pace)) => pass_gate(&mut tx, pace).await?,
        };
        tx.commit().await?;
        Ok(gate)
    }

    /// Records a message Twilio has: its sid, the status Twilio gave (if it may replace the
    /// stored one, as a callback's), any status that came in for the sid before, and when
    /// to check its status if none final comes. A sid another message holds is refused if it
    /// came from the Messages list; if Twilio answered our create with it, the message is
    /// recorded without it, and never posted again.
    #[tracing::instrument(skip_all, err)]
    pub async fn mark_accepted(&self, claim: Claim, taken: &Acceptance) -> StoreResult<Accepted> {
        let id = claim.message;
        let mut tx = self.writer.begin().await?;
        // Returning early drops the transaction, which puts the job back.
        let ours = on_tx!(&mut tx, |db| {
            sqlx::query(DELETE_JOB)
                .bind(id)
                .bind(claim.token)
                .execute(db)
                .await
                .map(|r| r.rows_affected())
        })?;
        if ours == 0 {
            if taken.created {
                keep_created_sid(&mut tx, id, &taken.sid).await?;
                tx.commit().await?;
            }
            return Ok(Accepted::LostClaim);
        }
        let holder: Option<MessageId> = on_tx!(&mut tx, |db| {
            sqlx::query_scalar("SELECT id FROM messages WHERE twilio_sid = $1 AND id <> $2")
                .bind(&taken.sid)
                .bind(id)
                .fetch_optional(db)
                .await
        })?;
        let sid = match holder {
            None => Some(taken.sid.as_str()),
            Some(_) if !taken.created => return Ok(Accepted::SidTaken),
            Some(holder) => {
                tracing::warn!(message = %id, sid = %taken.sid, %holder, "Twilio answered a create with the sid of another message; recorded without it, not sent again");
                None
            }
        };
        // As a callback's: a callback naming our id may have moved the message on already.
        let current = locked_status(&mut tx, id).await?;
        let replace = taken.status.reported_for(Direction::Outbound)
            && current.is_some_and(|current| taken.status.may_replace(current));
        let reported = StatusChange::reported(taken.status, taken.error_code, &taken.sid);
        let nth = tx.change()?;
        let recorded = on_tx!(&mut tx, |db| {
            sqlx::query(concat!(
                "UPDATE messages SET twilio_sid = COALESCE(twilio_sid, $2), \
                   status = CASE WHEN $3 THEN $4 ELSE status END, \
                   status_rank = CASE WHEN $3 THEN $5 ELSE status_rank END, \
                   error_code = CASE WHEN $3 THEN $8 ELSE error_code END, \
                   error_message = CASE WHEN $3 THEN $9 ELSE error_message END, \
                   updated_at = $6, seq = ",
                new_seq!("7"),
                " WHERE id = $1"
            ))
            .bind(id)
            .bind(sid)
            .bind(replace)
            .bind(taken.status)
            .bind(taken.status.rank())
            .bind(now())
            .bind(nth)
            .bind(reported.error_code)
            .bind(reported.error_message.as_deref())
            .execute(db)
            .await
            .map(|r| r.rows_affected())
        });
        match recorded {
            // Another message took the sid since the check above; a created message is
            // recorded again, and then finds it taken.
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() && !taken.created => {
                return Ok(Accepted::SidTaken);
            }
            Err(e) => return Err(e.into()),
            Ok(_) => {}
        }
        if let Some(sid) = sid {
            apply_early(&mut tx, id, sid).await?;
        }
        let message = message_by_id(&mut tx, id).await?;
        if let (Some(sid), Some(at)) = (sid, taken.check_at)
            && !message.status.is_final()
        {
            plan_status_check(&mut tx, id, sid, at).await?;
        }
        let audience = audience(&mut tx, message.conversation_id).await?;
        tx.commit().await?;
        Ok(Accepted::Recorded(Box::new(MessageChange {
            event: MessageEvent::Status,
            message,
            conversation: None,
            audience,
        })))
    }

    /// Fails the claimed message for good (with `reason` as its error text), and marks the
    /// contact opted out when Twilio said so.
    #[tracing::instrument(skip_all, err)]
    pub async fn mark_failed(
        &self,
        claim: Claim,
        code: Option<i64>,
        reason: &str,
        opt_out: bool,
    ) -> StoreResult<Option<MessageChange>> {
        let id = claim.message;
        let mut tx = self.writer.begin().await?;
        let ours = on_tx!(&mut tx, |db| {
            sqlx::query(DELETE_JOB)
                .bind(id)
                .bind(claim.token)
                .execute(db)
                .await
                .map(|r| r.rows_affected())
        })?;
        if ours == 0 {
            return Ok(None);
        }
        let failed = StatusChange {
            status: Status::Failed,
            error_code: code,
            error_message: Some(reason.to_owned()),
            sid: None,
        };
        advance_status(&mut tx, id, &failed).await?;
        let message = message_by_id(&mut tx, id).await?;
        let conversation_id = message.conversation_id;
        let conversation = if opt_out {
            let nth = tx.change()?;
            on_tx!(&mut tx, |db| {
                sqlx::query(concat!(
                    "UPDATE conversations SET opted_out = TRUE, ",
                    super::inbox::touch!("2"),
                    " WHERE id = $1"
                ))
                .bind(conversation_id)
                .bind(nth)
                .execute(db)
                .await
                .map(|r| r.rows_affected())
            })?;
            Some(conversation_by_id(&mut tx, conversation_id).await?)
        } else {
            None
        };
        let audience = audience(&mut tx, conversation_id).await?;
        tx.commit().await?;
        Ok(Some(MessageChange {
            event: MessageEvent::Status,
            message,
            conversation,
            audience,
        }))
    }

    /// Puts the claimed message back, to be tried again at `at`.
    #[tracing::instrument(skip_all, err)]
    pub async fn reschedule(
        &self,
        claim: Claim,
        at: DateTime<Utc>,
        error: &str,
        maybe_sent: bool,
    ) -> StoreResult<bool> {
        let ours = on_pool!(&self.writer, |db| {
            sqlx::query(
                "UPDATE send_jobs SET run_at = $3, lease_until = NULL, maybe_sent = $4, \
                   last_error = $5 WHERE message_id = $1 AND claim = $2",
            )
            .bind(claim.message)
            .bind(claim.token)
            .bind(at)
            .bind(maybe_sent)
            .bind(error)
            .execute(db)
            .await
            .map(|r| r.rows_affected())
        })?;
        Ok(ours > 0)
    }

    /// Puts a claimed message back without counting the claim as an attempt.
    #[tracing::instrument(skip_all, err)]
    pub async fn defer(&self, claim: Claim, at: DateTime<Utc>) -> StoreResult<bool> {
        // SET reads the old row: undo the claim's attempt, and its first try if it was one.
        let ours = on_pool!(&self.writer, |db| {
            sqlx::query(
                "UPDATE send_jobs SET run_at = $3, lease_until = NULL, \
                   attempts = attempts - 1, \
                   first_tried_at = CASE WHEN attempts <= 1 THEN NULL ELSE first_tried_at END \
                 WHERE message_id = $1 AND claim = $2",
            )
            .bind(claim.message)
            .bind(claim.token)
            .bind(at)
            .execute(db)
            .await
            .map(|r| r.rows_affected())
        })?;
        Ok(ours > 0)
    }

    #[tracing::instrument(skip_all, err)]
    pub async fn queue_stats(&self) -> StoreResult<QueueStats> {
        let (depth, oldest): (i64, Option<DateTime<Utc>>) = on_pool!(&self.reader, |db| {
            sqlx::query_as(
                "SELECT COUNT(*), MIN(m.created_at) FROM send_jobs j \
                 JOIN messages m ON m.id = j.message_id",
            )
            .fetch_one(db)
            .await
        })?;
        Ok(QueueStats { depth, oldest })
    }
}

/// Keeps the sid of a `201` on message `id`'s job, whoever holds it: it records that sid
/// rather than post again (`ready_to_create`). The first kept stays.
async fn keep_created_sid(tx: &mut Tx, id: MessageId, sid: &str) -> StoreResult<()> {
    on_tx!(tx, |db| {
        sqlx::query(
            "UPDATE send_jobs SET twilio_sid = $2 WHERE message_id = $1 AND twilio_sid IS NULL",
        )
        .bind(id)
        .bind(sid)
        .execute(db)
        .await
        .map(|r| r.rows_affected())
    })?;
    Ok(())
}
