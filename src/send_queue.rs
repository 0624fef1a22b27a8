//! The sending queue: the API queues a message and rings [`SendQueue::wake`]; each
//! [`Worker`] claims a pending message with a lease, calls the Messages API, and records
//! what happened. Errors that prove nothing was sent are retried with backoff; answers
//! that leave it open are reconciled against Twilio's Messages list before any second
//! attempt, so a message is never sent twice.
//!
//! A claim's lease outlives the longest attempt and is renewed while the attempt runs; the
//! claim's token fences the renewal right before the create and every outcome write, so a
//! worker that lost its claim neither sends nor records.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use rand::Rng;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::AppState;
use crate::events::Events;
use crate::model::{Message, Status};
use crate::store::{Accepted, Claim, SendJob, Store};
use crate::twilio::client::MessageResource;
use crate::twilio::errors::describe;
use crate::twilio::{Outgoing, TwilioClient, TwilioError};
use crate::webhooks::StatusCallback;

mod lookalike;
mod pacer;

use lookalike::is_our_send;
pub use pacer::{Pacer, SLOT_TOLERANCE};

/// After this long of failing to reach Twilio, a message is given up.
const GIVE_UP_AFTER: Duration = Duration::from_secs(600);
/// The longest pause between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// How often idle workers look for retries that came due.
const IDLE_POLL: Duration = Duration::from_secs(1);
/// How far Twilio's clock may be behind ours: a message it dates this much before our
/// first attempt may still be ours.
const CLOCK_SKEW: Duration = Duration::from_secs(60);

/// How many workers send at once.
pub const WORKERS: usize = 4;

/// How the workers ask Twilio to send, decided at start.
#[derive(Clone, Debug, Default)]
pub struct SendOptions {
    /// Sends go through this Messaging Service (`MessagingServiceSid`) instead of `From`.
    pub messaging_service_sid: Option<String>,
    /// Where Twilio posts each message's statuses; `None` when Twilio could not reach it
    /// (live mode with a local `PUBLIC_URL`).
    pub status_callback: Option<StatusCallback>,
}

/// What the API shares with the workers: the bell that wakes them when a message is queued,
/// the pacing of sends per number, and the length of a claim's lease.
pub struct SendQueue {
    wake: Notify,
    pacer: Option<Pacer>,
    lease: Duration,
}

impl SendQueue {
    /// `segments_per_second` per sending number (`SEND_RATE_PER_NUMBER`), when set; claims
    /// leased for `lease` (`SEND_LEASE_SECONDS`).
    pub fn new(segments_per_second: Option<f64>, lease: Duration) -> Arc<Self> {
        Arc::new(Self {
            wake: Notify::new(),
            pacer: segments_per_second.map(Pacer::new),
            lease,
        })
    }

    /// How often a running attempt renews its lease.
    fn heartbeat(&self) -> Duration {
        self.lease / 4
    }

    /// Wakes a worker: a message was queued.
    pub fn wake(&self) {
        self.wake.notify_one();
    }
}

/// Everything a worker uses, and nothing else.
pub struct Worker {
    store: Arc<Store>,
    twilio: TwilioClient,
    events: Events,
    options: SendOptions,
    queue: Arc<SendQueue>,
    shutdown: CancellationToken,
}

impl Worker {
    pub fn new(state: &AppState) -> Self {
        Self {
            store: state.services.store.clone(),
            twilio: state.services.twilio.clone(),
            events: state.services.events.clone(),
            options: state.config.sending.clone(),
            queue: state.runtime.send_queue.clone(),
            shutdown: state.runtime.shutdown.clone(),
        }
    }

    /// Takes messages off the queue until shutdown, which it heeds between two messages.
    pub async fn run(self: Arc<Self>) {
        loop {
            if self.shutdown.is_cancelled() {
                return;
            }
            match self.store.claim_send(self.queue.lease).await {
                Ok(Some(job)) => {
                    let span = tracing::info_span!(
                        "send",
                        message = %job.claim.message,
                        attempt = job.attempts,
                    );
                    self.process(job).instrument(span).await;
                }
                Ok(None) => {
                    tokio::select! {
                        _ = self.queue.wake.notified() => {}
                        _ = tokio::time::sleep(IDLE_POLL) => {}
                        _ = self.shutdown.cancelled() => return,
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "sending queue: cannot claim work");
                    tokio::select! {
                        _ = tokio::time::sleep(IDLE_POLL) => {}
                        _ = self.shutdown.cancelled() => return,
                    }
                }
            }
        }
    }

    /// Sends one claimed message, or finds it sent, and records what happened.
    async fn process(&self, job: SendJob) {
        let outcome = self.with_heartbeat(job.claim, self.decide(&job)).await;
        self.record(&job, outcome).await;
    }

    /// Runs `work` while renewing the claim's lease. Losing the lease does not stop the work:
    /// the renewal before a create and every outcome write are fenced by the claim anyway.
    async fn with_heartbeat<T>(&self, claim: Claim, work: impl Future<Output = T>) -> T {
        let mut work = std::pin::pin!(work);
        let beat = async {
            loop {
                tokio::time::sleep(self.queue.heartbeat()).await;
                match self.store.renew_lease(claim, self.queue.lease).await {
                    Ok(true) => {}
                    Ok(false) => return,
                    Err(e) => {
                        tracing::warn!(error = %e, message = %claim.message, "sending queue: could not renew a lease")
                    }
                }
            }
        };
        tokio::select! {
            out = &mut work => return out,
            () = beat => tracing::warn!(message = %claim.message, "sending queue: lost the lease mid-attempt"),
        }
        work.await
    }

    async fn decide(&self, job: &SendJob) -> Outcome {
        if job.conversation_opted_out {
            return Outcome::Failed {
                code: Some(21610),
                reason: describe(21610).into(),
            };
        }
        // A status callback carrying our id recorded the sid already: it was sent.
        if let Some(sid) = &job.message.twilio_sid {
            return Outcome::Accepted {
                sid: sid.clone(),
                status: job.message.status,
            };
        }
        if job.maybe_sent {
            let last_error = job.last_error.as_deref().unwrap_or("no answer");
            match self.reconcile(job).await {
                Ok(Some(found)) => return found,
                Ok(None) => {
                    // Past the deadline nothing is sent any more, however the claims before
                    // ended (a lease that ran out, a result not recorded).
                    if let Some(reason) = give_up(tried_for(job), true, last_error) {
                        return Outcome::Failed { code: None, reason };
                    }
                }
                Err(e) => {
                    return Outcome::Retry {
                        after: backoff(job.attempts, None),
                        code: None,
                        error: format!("looking the message up in Twilio failed: {e}"),
                        maybe_sent: true,
                    };
                }
            }
        }
        self.attempt(job).await
    }

    async fn record(&self, job: &SendJob, outcome: Outcome) {
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
            Outcome::Accepted { sid, status } => {
                match self.store.mark_accepted(claim, &sid, status).await {
                    Ok(Accepted::Recorded(changed)) => self.events.message(&changed).await,
                    Ok(Accepted::SidTaken) => {
                        let error = format!("Twilio's message {sid} is another message's");
                        self.retry(job, backoff(job.attempts, None), None, error, true)
                            .await;
                    }
                    Ok(Accepted::LostClaim) => lost(claim),
                    Err(e) => not_recorded(claim, &e),
                }
            }
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

    async fn attempt(&self, job: &SendJob) -> Outcome {
        let message = &job.message;
        if let Err(not_yet) = self.pace(job).await {
            return not_yet;
        }
        // The create starts with a whole lease ahead, and only while the claim is still ours.
        match self.store.renew_lease(job.claim, self.queue.lease).await {
            Ok(true) => {}
            Ok(false) => return Outcome::Dropped("another worker took the message over".into()),
            Err(e) => return Outcome::Dropped(format!("the lease could not be renewed ({e})")),
        }
        let status_callback = self
            .options
            .status_callback
            .as_ref()
            .map(|callback| callback.for_message(message.id));
        let out = Outgoing {
            to: &message.to,
            from: &message.from,
            messaging_service_sid: self.options.messaging_service_sid.as_deref(),
            body: &message.body,
            status_callback,
        };
        match self.twilio.send(&out).await {
            Ok(resource) => Outcome::accepted(resource),
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

    /// Waits for the message's slot on its number's schedule (`SEND_RATE_PER_NUMBER`): takes
    /// one the first time, then keeps it. Without pacing, nothing is asked of the database.
    async fn pace(&self, job: &SendJob) -> Result<(), Outcome> {
        let Some(pacer) = &self.queue.pacer else {
            return Ok(());
        };
        let message = &job.message;
        let (slot, now) = match job.slot {
            Some(slot) => (slot, job.claimed.now()),
            None => {
                let cost = pacer.cost_us(message.segments);
                match self.store.take_slot(job.claim, &message.from, cost).await {
                    Ok(Some((slot, clock))) => (slot, clock.now()),
                    Ok(None) => {
                        return Err(Outcome::Dropped(
                            "another worker took the message over".into(),
                        ));
                    }
                    Err(e) => {
                        return Err(Outcome::Retry {
                            after: backoff(job.attempts, None),
                            code: None,
                            error: format!("no pacing slot could be taken ({e})"),
                            maybe_sent: job.maybe_sent,
                        });
                    }
                }
            }
        };
        match pacer.wait(slot, now) {
            None => Ok(()),
            Some(wait) => Err(Outcome::Defer(wait)),
        }
    }

    /// Looks in Twilio's Messages list for a message an earlier attempt may have sent. A sid
    /// that one of our messages already holds is that message's, however alike the two are.
    async fn reconcile(&self, job: &SendJob) -> Result<Option<Outcome>, String> {
        let message: &Message = &job.message;
        let service = self.options.messaging_service_sid.as_deref();
        let from = service.map_or(message.from.as_str(), |_| "");
        let skew = chrono::Duration::from_std(CLOCK_SKEW).unwrap_or_default();
        let window = (job.first_tried_at - skew, Utc::now() + skew);
        let sent = self
            .twilio
            .list_sent(&message.to, from, window.0)
            .await
            .map_err(|e| e.to_string())?;
        for m in sent {
            if !is_our_send(&m, message, service, window) {
                continue;
            }
            if self
                .store
                .has_sid(&m.sid)
                .await
                .map_err(|e| e.to_string())?
            {
                tracing::info!(message = %message.id, sid = %m.sid, "reconcile: a look-alike that another message holds; not ours");
                continue;
            }
            tracing::info!(message = %message.id, sid = %m.sid, "reconciled: Twilio already had this message");
            return Ok(Some(Outcome::accepted(m)));
        }
        Ok(None)
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
    /// Not sent and nothing to record: the claim is gone, or could not be checked.
    Dropped(String),
}

impl Outcome {
    /// Twilio has the message, with the status it gave: one we do not track is `queued`, as
    /// everything Twilio has accepted is at least.
    fn accepted(resource: MessageResource) -> Self {
        Self::Accepted {
            status: resource.status.parse().unwrap_or(Status::Queued),
            sid: resource.sid,
        }
    }
}

fn tried_for(job: &SendJob) -> Duration {
    (Utc::now() - job.first_tried_at)
        .to_std()
        .unwrap_or_default()
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
    use crate::twilio::client::{LIST_PAGE_TIMEOUT, LIST_PAGES, SEND_TIMEOUT};

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

    /// The default lease (`config.rs`) outlives the longest one claim's calls to Twilio can
    /// take, a lookup of at most [`LIST_PAGES`] pages then a create, each cut off at its
    /// timeout, with room for the database writes around them.
    #[test]
    fn a_lease_outlives_the_worst_attempt_and_is_renewed_within_it() {
        use crate::config::DEFAULT_LEASE;
        let worst_attempt = LIST_PAGES * LIST_PAGE_TIMEOUT + SEND_TIMEOUT;
        assert!(DEFAULT_LEASE >= worst_attempt + Duration::from_secs(15));
        let queue = SendQueue::new(None, DEFAULT_LEASE);
        assert!(
            queue.heartbeat() * 2 < DEFAULT_LEASE,
            "a missed renewal does not lose the lease"
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
