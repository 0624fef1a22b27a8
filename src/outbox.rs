//! The sending queue's workers: claim a pending message with a lease, call the Messages
//! API, and record what happened. Errors that prove nothing was sent are retried with
//! backoff; answers that leave it open are reconciled against Twilio's Messages list before
//! any second attempt, so a message is never sent twice.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::Utc;
use rand::Rng;

use crate::AppState;
use crate::model::{Message, Status};
use crate::realtime;
use crate::store::{Changed, SendJob};
use crate::twilio::errors::describe;
use crate::twilio::{Outgoing, TwilioError};

/// How long a claimed message stays with its worker before another may take it: longer
/// than a Twilio call can take (20 s client timeout) plus the bookkeeping around it.
const LEASE: Duration = Duration::from_secs(30);
/// After this long of failing to reach Twilio, a message is given up.
const GIVE_UP_AFTER: Duration = Duration::from_secs(600);
/// The longest pause between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// How often idle workers look for retries that came due.
const IDLE_POLL: Duration = Duration::from_secs(1);

pub const WORKERS: usize = 4;

pub async fn worker(state: AppState) {
    loop {
        if state.shutdown.is_cancelled() {
            return;
        }
        match state.store.claim_send(LEASE).await {
            Ok(Some(job)) => process(&state, job).await,
            Ok(None) => {
                tokio::select! {
                    _ = state.outbox.notified() => {}
                    _ = tokio::time::sleep(IDLE_POLL) => {}
                    _ = state.shutdown.cancelled() => return,
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "sending queue: cannot claim work");
                tokio::select! {
                    _ = tokio::time::sleep(IDLE_POLL) => {}
                    _ = state.shutdown.cancelled() => return,
                }
            }
        }
    }
}

/// Every 30 s: logs the queue's depth and oldest pending age while it is not empty, and
/// prunes what has expired. Also wakes when the first session with a socket here expires,
/// to end it and disconnect its sockets at once.
pub async fn housekeeping(state: AppState) {
    let mut every = tokio::time::interval(Duration::from_secs(30));
    loop {
        let next_expiry = state.connections.next_expiry();
        let until_expiry = async {
            match next_expiry {
                Some(t) => tokio::time::sleep((t - Utc::now()).to_std().unwrap_or_default()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = every.tick() => {}
            () = until_expiry => {
                realtime::end_expired_sessions(&state).await;
                continue;
            }
            () = state.connections.expiries_changed.notified() => continue,
            () = state.shutdown.cancelled() => return,
        }
        if let Ok(stats) = state.store.queue_stats().await
            && stats.depth > 0
        {
            let oldest = stats.oldest.map(|t| (Utc::now() - t).num_seconds().max(0));
            tracing::info!(depth = stats.depth, oldest_pending_seconds = ?oldest, "sending queue");
        }
        realtime::end_expired_sessions(&state).await;
        match state.store.prune().await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(rows = n, "pruned stale statuses"),
            Err(e) => tracing::debug!(error = %e, "pruning skipped"),
        }
    }
}

/// Paces sends per sending number (`SEND_RATE_PER_NUMBER` segments per second). Each message
/// gets its own future slot, so a backlog from one number waits in our queue, each job
/// waking once at its time, while other numbers go straight through.
pub struct Pacer {
    seconds_per_segment: f64,
    state: Mutex<PacerState>,
}

#[derive(Default)]
struct PacerState {
    next_free: HashMap<String, Instant>,
    reserved: HashMap<i64, Instant>,
}

/// A slot this close is taken as now.
const SLOT_TOLERANCE: Duration = Duration::from_millis(20);

impl Pacer {
    pub fn new(segments_per_second: f64) -> Self {
        Self {
            seconds_per_segment: 1.0 / segments_per_second,
            state: Mutex::new(PacerState::default()),
        }
    }

    /// `Ok` to send now, or how long to wait for this message's slot.
    pub fn admit(&self, number: &str, message: i64, segments: i64) -> Result<(), Duration> {
        let now = Instant::now();
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(slot) = st.reserved.get(&message).copied() {
            if slot <= now + SLOT_TOLERANCE {
                st.reserved.remove(&message);
                return Ok(());
            }
            return Err(slot - now);
        }
        if st.next_free.len() > 10_000 {
            st.next_free.retain(|_, t| *t > now);
            st.reserved
                .retain(|_, t| *t + Duration::from_secs(600) > now);
        }
        let cost = Duration::from_secs_f64(segments.max(1) as f64 * self.seconds_per_segment);
        let slot = st.next_free.get(number).copied().unwrap_or(now).max(now);
        st.next_free.insert(number.to_owned(), slot + cost);
        if slot <= now + SLOT_TOLERANCE {
            Ok(())
        } else {
            st.reserved.insert(message, slot);
            Err(slot - now)
        }
    }
}

enum Outcome {
    /// Not sent: this number's pace says to wait.
    Defer(Duration),
    Accepted {
        sid: String,
        status: Status,
    },
    Failed {
        code: Option<i64>,
        reason: String,
    },
    Retry {
        after: Duration,
        /// Twilio's code for the failure, if it answered with one.
        code: Option<i64>,
        error: String,
        maybe_sent: bool,
    },
}

async fn process(state: &AppState, job: SendJob) {
    let message = &job.message;
    let outcome = if job.conversation_opted_out {
        Outcome::Failed {
            code: Some(21610),
            reason: describe(21610).into(),
        }
    } else if job.maybe_sent {
        match reconcile(state, &job).await {
            Ok(Some(found)) => found,
            Ok(None) => attempt(state, &job).await,
            Err(e) => Outcome::Retry {
                after: backoff(job.attempts, None),
                code: None,
                error: format!("looking the message up in Twilio failed: {e}"),
                maybe_sent: true,
            },
        }
    } else {
        attempt(state, &job).await
    };
    let recorded = match outcome {
        Outcome::Defer(wait) => {
            let at = Utc::now() + chrono::Duration::from_std(wait).unwrap_or_default();
            if let Err(e) = state.store.defer(message.id, at).await {
                tracing::warn!(error = %e, "sending queue: could not defer; the lease will expire");
            }
            return;
        }
        Outcome::Accepted { sid, status } => {
            state.store.mark_accepted(message.id, &sid, status).await
        }
        Outcome::Failed { code, reason } => {
            tracing::warn!(message = %message.id, ?code, "sending failed: {reason}");
            state
                .store
                .mark_failed(message.id, code, &reason, code == Some(21610))
                .await
        }
        Outcome::Retry {
            after,
            code,
            error,
            maybe_sent,
        } => {
            let tried_for = (Utc::now() - job.first_tried_at)
                .to_std()
                .unwrap_or_default();
            if let Some(reason) = give_up(tried_for, maybe_sent, &error) {
                state
                    .store
                    .mark_failed(message.id, code, &reason, false)
                    .await
            } else {
                tracing::info!(message = %message.id, ?after, "sending will be retried: {error}");
                let at = Utc::now() + chrono::Duration::from_std(after).unwrap_or_default();
                if let Err(e) = state
                    .store
                    .reschedule(message.id, at, &error, maybe_sent)
                    .await
                {
                    tracing::warn!(error = %e, "sending queue: could not reschedule; the lease will expire");
                }
                return;
            }
        }
    };
    match recorded {
        Ok(changed) => announce(state, &changed).await,
        Err(e) => tracing::warn!(
            error = %e,
            message = %message.id,
            "sending queue: result not recorded; the message will be looked up in Twilio after its lease"
        ),
    }
}

async fn announce(state: &AppState, changed: &Changed) {
    realtime::message_status(&state.io, &changed.audience, &changed.message).await;
    if let Some(conversation) = &changed.conversation {
        realtime::conversation_updated(&state.io, &changed.audience, conversation).await;
    }
}

async fn attempt(state: &AppState, job: &SendJob) -> Outcome {
    let message = &job.message;
    if let Some(pacer) = &state.pacer
        && let Err(wait) = pacer.admit(&message.from, message.id.0, message.segments)
    {
        return Outcome::Defer(wait);
    }
    let status_callback = state.status_callbacks.then(|| {
        format!(
            "{}/api/crm/sms/status-webhook?mid={}",
            state.public_url, message.id
        )
    });
    let out = Outgoing {
        to: &message.to,
        from: &message.from,
        messaging_service_sid: state.messaging_service_sid.as_deref(),
        body: &message.body,
        status_callback,
    };
    match state.twilio.send(&out).await {
        Ok(resource) => Outcome::Accepted {
            status: resource.status.parse().unwrap_or(Status::Queued),
            sid: resource.sid,
        },
        Err(TwilioError::Api {
            status,
            code,
            message: text,
            retry_after,
        }) => match status {
            429 => Outcome::Retry {
                after: backoff(job.attempts, retry_after),
                code: code.or(Some(20429)),
                error: format!("Twilio is rate limiting ({text})"),
                maybe_sent: false,
            },
            500.. => Outcome::Retry {
                after: backoff(job.attempts, retry_after),
                code,
                error: format!("Twilio answered {status} ({text})"),
                maybe_sent: true,
            },
            _ => Outcome::Failed {
                reason: match code {
                    Some(c) if describe(c) != describe(0) => describe(c).to_owned(),
                    _ => text,
                },
                code,
            },
        },
        Err(e @ TwilioError::NotSent(_)) => Outcome::Retry {
            after: backoff(job.attempts, None),
            code: None,
            error: e.to_string(),
            maybe_sent: false,
        },
        Err(e @ TwilioError::NoAnswer(_)) => Outcome::Retry {
            after: backoff(job.attempts, None),
            code: None,
            error: e.to_string(),
            maybe_sent: true,
        },
    }
}

/// Looks in Twilio's Messages list for a message an earlier attempt may have sent.
async fn reconcile(state: &AppState, job: &SendJob) -> Result<Option<Outcome>, TwilioError> {
    let message: &Message = &job.message;
    let from = state
        .messaging_service_sid
        .as_deref()
        .map_or(message.from.as_str(), |_| "");
    let since = job.first_tried_at - chrono::Duration::days(1);
    let sent = state.twilio.list_sent(&message.to, from, since).await?;
    // Clocks differ a little; an identical text sent well before our first try is another message.
    let earliest = job.first_tried_at - chrono::Duration::minutes(5);
    let found = sent.into_iter().find(|m| {
        m.body.as_deref() == Some(message.body.as_str())
            && m.created().is_none_or(|c| c >= earliest)
    });
    Ok(found.map(|m| {
        tracing::info!(message = %message.id, sid = %m.sid, "reconciled: Twilio already had this message");
        Outcome::Accepted {
            status: m.status.parse().unwrap_or(Status::Queued),
            sid: m.sid,
        }
    }))
}

/// After [`GIVE_UP_AFTER`] of failing, the reason the message is marked failed. A late
/// status callback can still move it on (a `delivered` replaces `failed`).
fn give_up(tried_for: Duration, maybe_sent: bool, last_error: &str) -> Option<String> {
    (tried_for >= GIVE_UP_AFTER).then(|| {
        if maybe_sent {
            format!("Twilio did not confirm the message in 10 minutes (it may have been sent): {last_error}")
        } else {
            format!("Twilio could not be reached for 10 minutes: {last_error}")
        }
    })
}

/// Exponential backoff with full jitter, never shorter than Twilio's `Retry-After`.
fn backoff(attempts: i64, retry_after: Option<Duration>) -> Duration {
    let exp = attempts.clamp(1, 16) as u32 - 1;
    let ceiling = Duration::from_millis(500u64.saturating_mul(1 << exp)).min(MAX_BACKOFF);
    let jittered = ceiling.mul_f64(rand::thread_rng().gen_range(0.5..=1.0));
    jittered.max(retry_after.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retrying_is_bounded() {
        assert_eq!(give_up(Duration::from_secs(30), false, "x"), None);
        assert_eq!(give_up(Duration::from_secs(30), true, "x"), None);
        assert!(
            give_up(GIVE_UP_AFTER, false, "refused")
                .unwrap()
                .contains("refused")
        );
        assert!(
            give_up(GIVE_UP_AFTER, true, "timeout")
                .unwrap()
                .contains("may have been sent")
        );
    }

    #[test]
    fn pacer_gives_each_message_its_own_slot_per_number() {
        let pacer = Pacer::new(2.0);
        assert!(pacer.admit("+1A", 1, 1).is_ok());
        let w2 = pacer.admit("+1A", 2, 1).unwrap_err();
        let w3 = pacer.admit("+1A", 3, 2).unwrap_err();
        assert!(w2 > Duration::from_millis(400) && w2 <= Duration::from_millis(500));
        assert!(w3 > Duration::from_millis(900) && w3 <= Duration::from_secs(1));
        // A second look at a reserved message keeps its slot instead of taking a new one.
        let again = pacer.admit("+1A", 2, 1).unwrap_err();
        assert!(again <= w2);
        assert!(
            pacer.admit("+1B", 4, 1).is_ok(),
            "other numbers are not held up"
        );
        let w5 = pacer.admit("+1A", 5, 1).unwrap_err();
        assert!(
            w5 > Duration::from_millis(1900),
            "after the two-segment message"
        );
    }

    #[test]
    fn backoff_grows_is_capped_and_honours_retry_after() {
        assert!(backoff(1, None) <= Duration::from_millis(500));
        assert!(backoff(4, None) >= Duration::from_secs(2));
        assert!(backoff(40, None) <= MAX_BACKOFF);
        assert!(backoff(1, Some(Duration::from_secs(30))) >= Duration::from_secs(30));
    }
}
