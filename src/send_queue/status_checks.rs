//! Statuses that never arrive: a status callback can be lost (a balancer that answered 502
//! while every instance restarted, an outage longer than Twilio's patience), and Twilio does
//! not post it again. So a sent message whose status is not final is fetched from Twilio
//! (`GET …/Messages/{sid}.json`) at the times [`StatusChecks`] gives, counted from when
//! Twilio took it, and then no more. Twilio's answer goes through the same rules as a
//! callback's ([`Store::apply_status`]) and is pushed as `message:status`.
//!
//! One checker runs per instance and fetches one message at a time, `pace` apart; each check
//! is claimed in the database (`store/status_checks.rs`), so instances never fetch a message
//! twice for one check.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use crate::AppState;
use crate::config::StatusChecks;
use crate::events::Events;
use crate::model::{Direction, Status, now};
use crate::store::{StatusCheck, StatusOutcome, StatusReport, Store};
use crate::twilio::{TwilioClient, TwilioError};

/// How long a claimed check is this instance's: longer than a fetch may take (the client's
/// timeout), so no other instance fetches the message meanwhile.
const CHECK_LEASE: Duration = Duration::from_secs(60);
/// The longest an idle checker sleeps before looking for due checks again.
const MAX_IDLE: Duration = Duration::from_secs(30);

pub struct StatusChecker {
    store: Arc<Store>,
    twilio: TwilioClient,
    events: Events,
    checks: StatusChecks,
    shutdown: CancellationToken,
}

/// What became of one check.
enum Checked {
    /// Twilio was asked: pause before the next fetch.
    Fetched { settled: bool },
    /// Nothing was asked of Twilio (the message was final already).
    Skipped,
}

impl StatusChecker {
    pub fn new(state: &AppState) -> Self {
        Self {
            store: state.services.store.clone(),
            twilio: state.services.twilio.clone(),
            events: state.services.events.clone(),
            checks: state.config.sending.status_checks.clone(),
            shutdown: state.runtime.shutdown.clone(),
        }
    }

    /// Checks due messages until shutdown.
    pub async fn run(self) {
        loop {
            let pause = match self.store.claim_status_check(CHECK_LEASE).await {
                Ok(Some(check)) => match self.check(&check).await {
                    Checked::Fetched { .. } => self.checks.pace,
                    Checked::Skipped => Duration::ZERO,
                },
                Ok(None) => self.idle().await,
                Err(e) => {
                    tracing::warn!(error = %e, "status checks: cannot claim one");
                    Duration::from_secs(1)
                }
            };
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                () = self.shutdown.cancelled() => return,
            }
        }
    }

    /// How long to sleep with nothing due: until the next check, but never so long that a
    /// check planned meanwhile (due at the first of `after` at the soonest) comes late by
    /// more than that.
    async fn idle(&self) -> Duration {
        let longest = self
            .checks
            .after
            .first()
            .copied()
            .unwrap_or(MAX_IDLE)
            .min(MAX_IDLE);
        match self.store.next_status_check().await {
            // A check due already is another instance's (claimed meanwhile): look again a
            // pace later, not at once.
            Ok(Some(due)) => until(due).max(self.checks.pace).min(longest),
            Ok(None) => longest,
            Err(_) => Duration::from_secs(1),
        }
    }

    /// Fetches the message's status unless it is final already, applies it, and plans the
    /// next check or ends them.
    async fn check(&self, check: &StatusCheck) -> Checked {
        let id = check.message;
        let checked = if check.status.is_final() {
            Checked::Skipped
        } else {
            let settled = match self.twilio.fetch(&check.sid).await {
                Ok(resource) => {
                    let reported = resource.status.parse::<Status>();
                    match reported {
                        Ok(status) => self.apply(check, status, resource.error_code).await,
                        Err(()) => false,
                    }
                }
                // Twilio no longer knows it: nothing more to learn.
                Err(TwilioError::Api { status: 404, .. }) => true,
                Err(e) => {
                    tracing::info!(error = %e, message = %id, "status check: Twilio did not answer");
                    false
                }
            };
            Checked::Fetched { settled }
        };
        let next = match checked {
            Checked::Fetched { settled: false } => self.checks.after.get(check.nth as usize),
            _ => None,
        };
        let planned = match next {
            Some(after) => {
                let at = check.accepted_at + chrono::Duration::from_std(*after).unwrap_or_default();
                self.store.reschedule_status_check(id, at.max(now())).await
            }
            None => self.store.end_status_check(id).await,
        };
        if let Err(e) = planned {
            tracing::warn!(error = %e, message = %id, "status check: not planned; it comes back when its claim runs out");
        }
        checked
    }

    /// Applies a fetched status as a callback's; whether the message is final now.
    async fn apply(&self, check: &StatusCheck, status: Status, error_code: Option<i64>) -> bool {
        let report = StatusReport {
            message_id: Some(check.message),
            twilio_sid: check.sid.clone(),
            status,
            error_code,
        };
        match self.store.apply_status(&report).await {
            Ok(StatusOutcome::Applied(changed)) => {
                tracing::info!(message = %check.message, status = status.as_str(), "status check: Twilio had moved the message on");
                let settled = changed.message.status.is_final();
                self.events.message(&changed).await;
                settled
            }
            // Not further than what is stored (a callback may have come meanwhile), or of
            // the other direction.
            Ok(StatusOutcome::Stale | StatusOutcome::Deferred) => {
                status.is_final() && status.reported_for(Direction::Outbound)
            }
            Err(e) => {
                tracing::warn!(error = %e, message = %check.message, "status check: not recorded");
                false
            }
        }
    }
}

fn until(t: DateTime<Utc>) -> Duration {
    (t - Utc::now()).to_std().unwrap_or_default()
}
