//! Per-number pacing shared by every instance: a row per sending number holds its next free
//! slot on the database's clock. A message takes its slot with one statement, in the same
//! transaction that keeps the slot with its queue row, so waking at the slot, a retry, or
//! another instance taking the job over never takes a second one.
//!
//! A slot spreads a backlog out, but a message may go later than its slot (an instance died
//! holding it, a worker woke late), and the next one's slot may then be moments away. So the
//! row also holds when the number's last create went out plus that message's share of the
//! rate, and a create goes only once that is past ([`pass_gate`], right before the call):
//! two creates from one number are always a message's share apart, on the database's clock.

use std::time::Duration;

use super::db::{Tx, on_pool, on_tx};
use super::{Claim, CreateGate, DbClock, DbTime, PaceGate, Store, StoreResult};

/// How long a number's row outlives its last slot: a row whose slot has passed paces
/// nothing (the next slot is now), so dropping it changes nothing.
const KEEP_PAST_SLOTS_US: i64 = 60 * 1_000_000;

impl Store {
    /// Gives the claimed message the next free slot of `number`, `cost_us` long, and keeps
    /// it with the message's queue row. Returns the slot and the database's clock, or
    /// `None` when the claim is no longer the job's (nothing is taken then).
    #[tracing::instrument(skip_all, err)]
    pub async fn take_slot(
        &self,
        claim: Claim,
        number: &str,
        cost_us: i64,
    ) -> StoreResult<Option<(DbTime, DbClock)>> {
        let mut tx = self.writer.begin().await?;
        // One statement reads and advances the number's schedule: concurrent senders, on any
        // instance, queue on the row and each get their own slot.
        let (slot, db_now): (i64, i64) = on_tx!(&mut tx, |db| {
            sqlx::query_as(
                "INSERT INTO send_pace (number, next_free_us) \
                 VALUES ($1, (SELECT now_us FROM db_clock) + $2) \
                 ON CONFLICT (number) DO UPDATE SET next_free_us = \
                   CASE WHEN send_pace.next_free_us > (SELECT now_us FROM db_clock) \
                     THEN send_pace.next_free_us ELSE (SELECT now_us FROM db_clock) END + $2 \
                 RETURNING next_free_us - $2, (SELECT now_us FROM db_clock)",
            )
            .bind(number)
            .bind(cost_us)
            .fetch_one(db)
            .await
        })?;
        let kept = on_tx!(&mut tx, |db| {
            sqlx::query("UPDATE send_jobs SET slot_us = $3 WHERE message_id = $1 AND claim = $2")
                .bind(claim.message)
                .bind(claim.token)
                .bind(slot)
                .execute(db)
                .await
                .map(|r| r.rows_affected())
        })?;
        if kept == 0 {
            // Dropping the transaction gives the slot back.
            return Ok(None);
        }
        tx.commit().await?;
        Ok(Some((DbTime(slot), DbClock::read_now(db_now))))
    }

    /// Forgets numbers whose last slot is long past.
    #[tracing::instrument(skip_all, err)]
    pub async fn prune_pacing(&self) -> StoreResult<u64> {
        let pruned = on_pool!(&self.writer, |db| {
            sqlx::query(
                "DELETE FROM send_pace WHERE next_free_us < (SELECT now_us FROM db_clock) - $1",
            )
            .bind(KEEP_PAST_SLOTS_US)
            .execute(db)
            .await
            .map(|r| r.rows_affected())
        })?;
        Ok(pruned)
    }
}

/// Lets a create from `pace.number` go if the number's last one went out at least its share
/// of the rate ago (less the tolerance, which the worker then waits out), and counts this one;
/// otherwise says how much later to try. Also moves the number's next free slot past it, so
/// messages queued from now on are given slots after it.
pub(super) async fn pass_gate(tx: &mut Tx, pace: PaceGate<'_>) -> StoreResult<CreateGate> {
    let passed: Option<i64> = on_tx!(&mut *tx, |db| {
        sqlx::query_scalar(
            "INSERT INTO send_pace (number, next_free_us, sent_until_us) \
             VALUES ($1, (SELECT now_us FROM db_clock) + $2, (SELECT now_us FROM db_clock) + $2) \
             ON CONFLICT (number) DO UPDATE SET \
               sent_until_us = CASE WHEN send_pace.sent_until_us > (SELECT now_us FROM db_clock) \
                 THEN send_pace.sent_until_us ELSE (SELECT now_us FROM db_clock) END + $2, \
               next_free_us = CASE \
                 WHEN send_pace.next_free_us > send_pace.sent_until_us + $2 \
                   AND send_pace.next_free_us > (SELECT now_us FROM db_clock) + $2 \
                 THEN send_pace.next_free_us \
                 WHEN send_pace.sent_until_us > (SELECT now_us FROM db_clock) \
                 THEN send_pace.sent_until_us + $2 \
                 ELSE (SELECT now_us FROM db_clock) + $2 END \
             WHERE send_pace.sent_until_us <= (SELECT now_us FROM db_clock) + $3 \
             RETURNING sent_until_us - $2 - (SELECT now_us FROM db_clock)",
        )
        .bind(pace.number)
        .bind(pace.cost_us)
        .bind(pace.tolerance_us)
        .fetch_optional(db)
        .await
    })?;
    if let Some(wait_us) = passed {
        return Ok(CreateGate::Go(micros(wait_us)));
    }
    let wait_us: i64 = on_tx!(tx, |db| {
        sqlx::query_scalar(
            "SELECT sent_until_us - (SELECT now_us FROM db_clock) FROM send_pace \
             WHERE number = $1",
        )
        .bind(pace.number)
        .fetch_one(db)
        .await
    })?;
    Ok(CreateGate::Wait(micros(wait_us)))
}

fn micros(us: i64) -> Duration {
    Duration::from_micros(u64::try_from(us).unwrap_or(0))
}
