//! Sockets never outlive their session. Whoever ends a session disconnects its sockets on
//! every instance at once (`events`); these catch what that missed: sessions that expired,
//! and sessions that ended while this instance did not hear of it (Redis down, or its
//! subscriber dropped by Redis), found by asking the database about every session that has
//! a socket here.

use chrono::Utc;

use crate::AppState;

/// Ends the sessions that have expired: deletes them, and disconnects their sockets (also
/// those whose session another process deleted first).
pub async fn end_expired_sessions(state: &AppState) {
    let mut hashes: Vec<String> = state
        .runtime
        .connections
        .take_expired(Utc::now())
        .iter()
        .map(|h| h.to_string())
        .collect();
    match state.services.store.end_expired_sessions().await {
        Ok(deleted) => {
            if !deleted.is_empty() {
                tracing::debug!(sessions = deleted.len(), "expired sessions ended");
            }
            hashes.extend(deleted);
        }
        Err(e) => tracing::debug!(error = %e, "expired sessions not deleted this time"),
    }
    hashes.sort();
    hashes.dedup();
    state.services.events.end_sessions(&hashes).await;
}

/// Disconnects this instance's sockets whose session no longer holds (logged out, expired,
/// its agent disabled), in one query for all of them. A database that does not answer
/// disconnects no one.
pub async fn check_sessions(state: &AppState) {
    let held = state.runtime.connections.sessions();
    if held.is_empty() {
        return;
    }
    let hashes: Vec<&str> = held.iter().map(|h| &**h).collect();
    let live = match state.services.store.live_sessions(&hashes).await {
        Ok(live) => live,
        Err(e) => {
            tracing::debug!(error = %e, "sessions not checked this time");
            return;
        }
    };
    let ended: Vec<&str> = hashes.into_iter().filter(|h| !live.contains(*h)).collect();
    if !ended.is_empty() {
        tracing::info!(
            sessions = ended.len(),
            "[Socket.io] sessions ended without this instance hearing of it: disconnecting their sockets"
        );
        state.services.events.end_sessions_here(&ended).await;
    }
}
