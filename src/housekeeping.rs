//! The server's chores between requests: ends sessions as they expire (disconnecting their
//! sockets at once), logs the sending queue's depth while it is not empty, and prunes what
//! has expired (early statuses, login failures, pacing rows), so those tables stay small.

use std::time::Duration;

use chrono::Utc;

use crate::AppState;
use crate::realtime;

/// Every 30 s: logs the queue's depth and oldest pending age while it is not empty, and
/// prunes what has expired. Also wakes when the first session with a socket here expires,
/// to end it and disconnect its sockets at once.
pub async fn run(state: AppState) {
    let mut every = tokio::time::interval(Duration::from_secs(30));
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

/// Deletes what no longer counts: early statuses of messages that never showed up, login
/// failures out of the window, and pacing rows whose slots are past.
async fn prune(state: &AppState) {
    let store = &state.services.store;
    let pruned = [
        ("early statuses", store.prune().await),
        ("login failures", state.runtime.login_throttle.prune().await),
        ("pacing rows", store.prune_pacing().await),
        ("invites", store.prune_invites().await),
    ];
    for (what, outcome) in pruned {
        match outcome {
            Ok(0) => {}
            Ok(n) => tracing::debug!(rows = n, "pruned {what}"),
            Err(e) => tracing::debug!(error = %e, "pruning {what} skipped"),
        }
    }
}
