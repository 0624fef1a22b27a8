//! The sending queue: the API queues a message and rings [`SendQueue::wake`]; each
//! [`Worker`] claims a pending message with a lease, calls the Messages API, and records
//! what happened. Errors that prove nothing was sent are retried with backoff; answers
//! that leave it open are reconciled against Twilio's Messages list before any second
//! attempt, so a message is never sent twice.
//!
//! A claim's lease outlives the longest attempt and is renewed while the attempt runs; the
//! claim's token fences the renewal right before the create and every outcome write, so a
//! worker that lost its claim neither sends nor records.
//!
//! Twilio's `201` is final: the message exists, and is never posted again, whatever happens
//! to recording it. While the database cannot take it the worker tries again, and the other
//! workers of this instance record it rather than post; a worker that lost its claim keeps
//! the sid on the job for whoever holds it now.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::AppState;
use crate::config::StatusChecks;
use crate::events::Events;
use crate::model::{Direction, Message, MessageId, Status};
use crate::store::{Acceptance, Claim, CreateGate, PaceGate, SendJob, Store};
use crate::twilio::errors::describe;
use crate::twilio::{Outgoing, TwilioClient, TwilioError};
use crate::webhooks::StatusCallback;

mod lookalike;
mod pacer;
mod recording;
mod retrying;
mod status_checks;

use lookalike::is_our_send;
pub use pacer::{Pacer, SLOT_TOLERANCE};
use retrying::{backoff, give_up, tried_for};
pub use status_checks::StatusChecker;

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
    /// When the statuses that do not come are fetched.
    pub status_checks: StatusChecks,
    /// Where Twilio fetches the pictures of a message: `PUBLIC_URL/media/out/`, to which a
    /// link's token is added; `None` when Twilio could not reach it (live mode with a local
    /// `PUBLIC_URL`), and pictures are refused.
    pub media_base: Option<String>,
}

/// What the API shares with the workers: the bell that wakes them when a message is queued,
/// the pacing of sends per number, and the length of a claim's lease; and what the workers
/// share: the `201`s being recorded.
pub struct SendQueue {
    wake: Notify,
    pacer: Option<Pacer>,
    lease: Duration,
    /// Messages Twilio took whose answer the database has not taken yet, by message.
    unrecorded: Mutex<HashMap<MessageId, Acceptance>>,
}

impl SendQueue {
    /// `segments_per_second` per sending number (`SEND_RATE_PER_NUMBER`), when set; claims
    /// leased for `lease` (`SEND_LEASE_SECONDS`).
    pub fn new(segments_per_second: Option<f64>, lease: Duration) -> Arc<Self> {
        Arc::new(Self {
            wake: Notify::new(),
            pacer: segments_per_second.map(Pacer::new),
            lease,
            unrecorded: Mutex::default(),
        })
    }

    fn unrecorded(&self) -> std::sync::MutexGuard<'_, HashMap<MessageId, Acceptance>> {
        self.unrecorded.lock().unwrap_or_else(|p| p.into_inner())
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
        // Twilio has it already: a 201 this instance is still recording, one a worker kept on
        // the job, or a sid a status callback carrying our id recorded.
        if let Some(taken) = self.queue.unrecorded().get(&job.claim.message) {
            return Outcome::Accepted(taken.clone());
        }
        if let Some(sid) = job.created_sid.clone() {
            return Outcome::Accepted(self.taken(sid, Status::Queued, None, true));
        }
        if let Some(sid) = job.message.twilio_sid.clone() {
            return Outcome::Accepted(self.taken(sid, job.message.status, None, true));
        }
        if job.conversation_opted_out {
            return Outcome::Failed {
                code: Some(21610),
                reason: describe(21610).into(),
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

    async fn attempt(&self, job: &SendJob) -> Outcome {
        let message = &job.message;
        if let Err(not_yet) = self.pace(job).await {
            return not_yet;
        }
        // The create starts with a whole lease ahead, only while the claim is still ours and
        // no 201 was kept for it, and a message's share of the rate after its number's last.
        let gate = self.queue.pacer.map(|pacer| PaceGate {
            number: &message.from,
            cost_us: pacer.cost_us(message.segments),
            tolerance_us: SLOT_TOLERANCE.as_micros() as i64,
        });
        match self
            .store
            .ready_to_create(job.claim, self.queue.lease, gate)
            .await
        {
            Ok(CreateGate::Go(wait)) => tokio::time::sleep(wait).await,
            Ok(CreateGate::Wait(wait)) => return Outcome::Defer(wait),
            Ok(CreateGate::Created(sid)) => {
                return Outcome::Accepted(self.taken(sid, Status::Queued, None, true));
            }
            Ok(CreateGate::Lost) => {
                return Outcome::Dropped("another worker took the message over".into());
            }
            Err(e) => return Outcome::Dropped(format!("the lease could not be renewed ({e})")),
        }
        let status_callback = self
            .options
            .status_callback
            .as_ref()
            .map(|callback| callback.for_message(message.id));
        let media_urls = match (&self.options.media_base, job.media_tokens.as_slice()) {
            (_, []) => Vec::new(),
            (Some(base), tokens) => tokens.iter().map(|t| format!("{base}{t}")).collect(),
            (None, _) => {
                return Outcome::Failed {
                    code: None,
                    reason: "Twilio cannot fetch the pictures: PUBLIC_URL is not public".into(),
                };
            }
        };
        let out = Outgoing {
            to: &message.to,
            from: &message.from,
            messaging_service_sid: self.options.messaging_service_sid.as_deref(),
            body: &message.body,
            media_urls: &media_urls,
            status_callback,
        };
        match self.twilio.send(&out).await {
            Ok(created) => {
                let status = reported_status(&created.status);
                Outcome::Accepted(self.taken(created.sid, status, created.error_code, true))
            }
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
            let status = reported_status(&m.status);
            return Ok(Some(Outcome::Accepted(self.taken(
                m.sid,
                status,
                m.error_code,
                false,
            ))));
        }
        Ok(None)
    }
}

enum Outcome {
    /// Not sent: this number's pace says to wait.
    Defer(Duration),
    Accepted(Acceptance),
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

/// The status Twilio gave a message it has, as a callback's would count: one an outbound
/// message does not have (`received`), or one we do not track, is `queued`, as everything
/// Twilio has accepted is at least.
fn reported_status(reported: &str) -> Status {
    reported
        .parse::<Status>()
        .ok()
        .filter(|s| s.reported_for(Direction::Outbound))
        .unwrap_or(Status::Queued)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::twilio::client::{LIST_PAGE_TIMEOUT, LIST_PAGES, SEND_TIMEOUT};

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
    fn a_created_answer_s_status_counts_as_an_outbound_callback_s() {
        assert_eq!(reported_status("sent"), Status::Sent);
        assert_eq!(reported_status("failed"), Status::Failed);
        assert_eq!(reported_status("received"), Status::Queued);
        assert_eq!(reported_status("pending"), Status::Queued);
        assert_eq!(reported_status("receiving"), Status::Queued);
    }
}
