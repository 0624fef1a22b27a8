//! What a worker records of its attempt: the outcome written under its claim, and the
//! events that follow. A `201` is recorded until the database takes it.

use std::time::Duration;

use chrono::Utc;

use super::retrying::{backoff, give_up, tried_for};
use super::{Outcome, Worker};
use crate::model::{Status, now};
use crate::store::{Acceptance, Accepted, Claim, SendJob};

/// How soon, then how often at most, a `201` the database could not take is recorded again.
const RECORD_AGAIN: Duration = Duration::from_millis(100);
const MAX_RECORD_PAUSE: Duration = Duration::from_secs(2);

impl Worker {
    /// Writes the attempt's outcome under the claim, and tells the agents what changed.
    pub(super) async fn record(&self, job: &SendJob, outcome: Outcome) {
        let claim = job.claim;
        match outcome {
            Outcome::Dropped(why) => {
                tracing::info!(message = %claim.message, "sending queue: attempt dropped: {why}");
            }
            Outcome::Defer(wait) => {
                let at = Utc::now() + chrono::Duration::from_std(wait).unwrap_or_default();
                match self.store.defer(claim, at).await {
                    Ok(true) => self.wake_at(wait),
                    Ok(false) => lost(claim),
                    Err(e) => {
                        tracing::warn!(error = %e, "sending queue: could not defer; the lease will expire")
                    }
                }
            }
            Outcome::Accepted(taken) => self.record_accepted(job, taken).await,
            Outcome::Failed { code, reason } => {
                tracing::warn!(message = %claim.message, ?code, "sending failed: {reason}");
                self.fail(claim, code, &reason, code == Some(21610)).await;
            }
            Outcome::Retry {
                after,
                code,
                error,
                maybe_sent,
            } => self.retry(job, after, code, error, maybe_sent).await,
        }
    }

    /// Records a message Twilio has. A created one (a `201`) is recorded again while the
    /// database cannot take it, and meanwhile this instance's other workers record it rather
    /// than post it if they claim it; it ends only recorded, in another worker's hands, or at
    /// shutdown (then its next claim looks it up in Twilio's Messages list).
    async fn record_accepted(&self, job: &SendJob, taken: Acceptance) {
        let claim = job.claim;
        let mut pause = RECORD_AGAIN;
        loop {
            match self.store.mark_accepted(claim, &taken).await {
                Ok(Accepted::Recorded(changed)) => {
                    self.queue.unrecorded().remove(&claim.message);
                    return self.events.message(&changed).await;
                }
                Ok(Accepted::SidTaken) => {
                    let error = format!("Twilio's message {} is another message's", taken.sid);
                    return self
                        .retry(job, backoff(job.attempts, None), None, error, true)
                        .await;
                }
                Ok(Accepted::LostClaim) => {
                    self.queue.unrecorded().remove(&claim.message);
                    return lost(claim);
                }
                Err(e) if !taken.created => return not_recorded(claim, &e),
                Err(e) => {
                    self.queue.unrecorded().insert(claim.message, taken.clone());
                    tracing::warn!(error = %e, message = %claim.message, sid = %taken.sid, "Twilio took the message, but it could not be recorded; recording it again");
                }
            }
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                () = self.shutdown.cancelled() => {
                    return tracing::warn!(message = %claim.message, sid = %taken.sid, "shutting down before Twilio's answer was recorded; the message will be looked up in Twilio");
                }
            }
            pause = (pause * 2).min(MAX_RECORD_PAUSE);
        }
    }

    /// What to record of a message Twilio has, and when to check on its status.
    pub(super) fn taken(
        &self,
        sid: String,
        status: Status,
        error_code: Option<i64>,
        created: bool,
    ) -> Acceptance {
        let first_check = self.options.status_checks.after.first();
        Acceptance {
            sid,
            status,
            error_code,
            created,
            check_at: first_check
                .map(|d| now() + chrono::Duration::from_std(*d).unwrap_or_default()),
        }
    }

    /// Rings the bell when a deferred message's slot comes, so that it is sent then rather
    /// than at the next idle look. (If this instance dies first, another one's look finds it.)
    fn wake_at(&self, wait: Duration) {
        let (queue, shutdown) = (self.queue.clone(), self.shutdown.clone());
        tokio::spawn(async move {
            tokio::select! {
                () = tokio::time::sleep(wait) => queue.wake(),
                () = shutdown.cancelled() => {}
            }
        });
    }

    /// Schedules another attempt, or fails the message once it has been tried for too long.
    async fn retry(
        &self,
        job: &SendJob,
        after: Duration,
        code: Option<i64>,
        error: String,
        maybe_sent: bool,
    ) {
        let claim = job.claim;
        if let Some(reason) = give_up(tried_for(job), maybe_sent, &error) {
            return self.fail(claim, code, &reason, false).await;
        }
        tracing::info!(message = %claim.message, ?after, "sending will be retried: {error}");
        let at = Utc::now() + chrono::Duration::from_std(after).unwrap_or_default();
        match self.store.reschedule(claim, at, &error, maybe_sent).await {
            Ok(true) => {}
            Ok(false) => lost(claim),
            Err(e) => {
                tracing::warn!(error = %e, "sending queue: could not reschedule; the lease will expire")
            }
        }
    }

    async fn fail(&self, claim: Claim, code: Option<i64>, reason: &str, opt_out: bool) {
        match self.store.mark_failed(claim, code, reason, opt_out).await {
            Ok(Some(changed)) => self.events.message(&changed).await,
            Ok(None) => lost(claim),
            Err(e) => not_recorded(claim, &e),
        }
    }
}

fn lost(claim: Claim) {
    tracing::warn!(
        message = %claim.message,
        "sending queue: another worker took this message over; its outcome is left to that worker"
    );
}

fn not_recorded(claim: Claim, e: &dyn std::fmt::Display) {
    tracing::warn!(
        error = %e,
        message = %claim.message,
        "sending queue: result not recorded; the message will be looked up in Twilio after its lease"
    );
}
