//! The server's chores between requests: ends sessions as they expire (disconnecting their
//! sockets at once), checks that the sessions of this instance's sockets still hold (and
//! tells the sockets to catch up after Redis comes back), logs the sending queue's depth
//! while it is not empty, prunes what has expired (early statuses, login failures, pacing
//! rows, invites, pictures uploaded and never sent), so those tables stay small, reopens the
//! conversations whose snooze ran out, folds the changes of the views' counters into them,
//! and gives memory back once sockets stop coming and going.

use std::time::Duration;

use chrono::Utc;
use tokio::time::MissedTickBehavior;

use crate::AppState;
use crate::realtime;

/// Every 30 s: logs the queue's depth and oldest pending age while it is not empty, and
/// prunes what has expired. Also wakes when the first session with a socket here expires,
/// to end it and disconnect its sockets at once.
pub async fn run(state: AppState) {
    // The first round comes a period after start, not at once: what expired while the
    // server was down is refused already, and a round racing the first requests would prune
    // under them (a test that stored an expired session saw it gone before it asked).
    let period = Duration::from_secs(30);
    let mut every = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    loop {
        let next_expiry = state.runtime.connections.next_expiry();
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
            () = state.runtime.connections.expiries_changed.notified() => continue,
            () = state.runtime.shutdown.cancelled() => return,
        }
        if let Ok(stats) = state.services.store.queue_stats().await
            && stats.depth > 0
        {
            let oldest = stats.oldest.map(|t| (Utc::now() - t).num_seconds().max(0));
            tracing::info!(depth = stats.depth, oldest_pending_seconds = ?oldest, "sending queue");
        }
        realtime::end_expired_sessions(&state).await;
        prune(&state).await;
        crate::monitoring::upkeep();
    }
}

/// The most conversations one round reopens; more wait for the next round, at once.
const WAKE_BATCH: i64 = 200;

/// Every `period`, reopens the snoozed conversations whose time came, and tells their
/// agents. The store flips and names them in one statement, so with several instances each
/// conversation is reopened, and announced, once.
pub async fn wake_snoozed(state: AppState, period: Duration) {
    let mut every = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    every.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = every.tick() => {}
            () = state.runtime.shutdown.cancelled() => return,
        }
        loop {
            let woken = match state.services.store.wake_snoozed(WAKE_BATCH).await {
                Ok(woken) => woken,
                Err(e) => {
                    tracing::warn!(error = %e, "could not reopen snoozed conversations");
                    break;
                }
            };
            for change in &woken {
                state.services.events.conversation(change).await;
            }
            if (woken.len() as i64) < WAKE_BATCH {
                break;
            }
        }
    }
}

/// The most changes of the counters one fold takes: far more than a second brings (a move
/// of a conversation's status or assignee makes two), so a backlog is soon gone.
const FOLD_BATCH: i64 = 10_000;

/// How often the changes of the views' counters are folded into them: the counts read the
/// changes not folded yet too, so this only bounds how many they read.
const FOLD_PERIOD: Duration = Duration::from_secs(1);

/// Every [`FOLD_PERIOD`], folds the changes of the views' counters into them
/// (`Store::fold_counts`).
pub async fn fold_counts(state: AppState) {
    let mut every =
        tokio::time::interval_at(tokio::time::Instant::now() + FOLD_PERIOD, FOLD_PERIOD);
    every.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = every.tick() => {}
            () = state.runtime.shutdown.cancelled() => return,
        }
        if let Err(e) = state.services.store.fold_counts(FOLD_BATCH).await {
            tracing::warn!(error = %e, "could not fold the changes of the counts");
        }
    }
}

/// Every `period` (at most 30 s), and each time Redis comes back, asks the database whether
/// the sessions of this instance's sockets still hold and disconnects the others: a session
/// may end without this instance hearing of it (Redis down, or this instance's subscriber
/// dropped by Redis). After Redis came back it then sends the sockets left `resync`: what the
/// other instances published meanwhile never reached them (and, if this one delivered to its
/// own sockets only meanwhile, every instance's sockets: `Events::resync_after_outage`).
pub async fn check_sessions(state: AppState, period: Duration) {
    let mut every = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    every.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut resubscribed = state.services.events.resubscriptions();
    loop {
        let redis_back = async {
            let changed = match &mut resubscribed {
                Some(r) => r.changed().await.is_ok(),
                None => false,
            };
            if !changed {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            _ = every.tick() => realtime::check_sessions(&state).await,
            () = redis_back => {
                realtime::check_sessions(&state).await;
                state.services.events.resync_after_outage().await;
            }
            () = state.runtime.shutdown.cancelled() => return,
        }
    }
}

/// Once sockets have stopped coming and going for a second, hands the memory that their
/// handshakes left free back to the system. glibc keeps freed memory in its heaps, and a
/// burst of handshakes (every page reconnecting after a deploy) leaves it scattered between
/// the sockets' own allocations, where it stays resident: with 5,000 sockets on PostgreSQL,
/// 28 KiB per socket before `malloc_trim`, 22 KiB after.
pub async fn give_back_memory(state: AppState) {
    let connections = &state.runtime.connections;
    let mut seen = connections.churn();
    let mut moved = false;
    let mut every = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = every.tick() => {}
            () = state.runtime.shutdown.cancelled() => return,
        }
        let churn = connections.churn();
        if churn != seen {
            seen = churn;
            moved = true;
        } else if moved {
            moved = false;
            // It walks every heap under its lock: not on a thread that serves requests.
            let _ = tokio::task::spawn_blocking(release_free_memory).await;
        }
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn release_free_memory() {
    // SAFETY: malloc_trim takes no pointer and only walks glibc's own heaps, under their locks.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Other allocators give memory back by themselves, or not at all.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn release_free_memory() {}

/// Deletes what no longer counts: early statuses of messages that never showed up, login
/// failures out of the window, pacing rows whose slots are past, expired invites, and
/// pictures uploaded a day ago and never sent.
async fn prune(state: &AppState) {
    let store = &state.services.store;
    let pruned = [
        ("early statuses", store.prune_early_statuses().await),
        ("login failures", state.runtime.login_throttle.prune().await),
        ("pacing rows", store.prune_pacing().await),
        ("invites", store.prune_invites().await),
        ("unsent uploads", store.prune_uploads().await),
    ];
    for (what, outcome) in pruned {
        match outcome {
            Ok(0) => {}
            Ok(n) => tracing::debug!(rows = n, "pruned {what}"),
            Err(e) => tracing::debug!(error = %e, "pruning {what} skipped"),
        }
    }
}
