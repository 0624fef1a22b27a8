//! `GET /api/crm/sms/sync?since=&limit=`: every message of the agent created or changed
//! after a `seq`, in change order, and every conversation whose own state changed after it,
//! so a page that was offline, or missed an event, misses nothing.

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use serde::{Deserialize, Serialize};

use super::limit;
use crate::AppState;
use crate::auth::CurrentAgent;
use crate::error::{AppError, AppResult, Json, Query};
use crate::model::{Conversation, Message};

pub fn router() -> Router<AppState> {
    Router::new().route("/api/crm/sms/sync", get(sync))
}

/// What changed since the asked `seq`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Changes {
    pub messages: Vec<Message>,
    /// The conversations whose name, opt-out, unread count, status, snooze or assignee
    /// changed, as they are now.
    pub conversations: Vec<Conversation>,
    /// The highest `seq` returned, or `since` when nothing is new: the next call's `since`.
    pub cursor: i64,
    /// Whether more changes wait beyond `limit`.
    pub has_more: bool,
}

#[derive(Deserialize)]
struct SyncQuery {
    since: Option<String>,
    limit: Option<String>,
}

async fn sync(
    State(state): State<AppState>,
    CurrentAgent(agent): CurrentAgent,
    Query(q): Query<SyncQuery>,
) -> AppResult<Json<Changes>> {
    let since = match q.since.as_deref().filter(|s| !s.is_empty()) {
        None => 0,
        Some(s) => s
            .parse::<i64>()
            .ok()
            .filter(|s| *s >= 0)
            .ok_or_else(|| AppError::invalid("since must be a seq number (0 or more)"))?,
    };
    let limit = limit(q.limit.as_deref(), 500, 1000)?;
    crate::monitoring::sync_request();
    let store = &state.services.store;
    // Both reads stop at one watermark, read first: nothing at or below it can still commit,
    // so the cursor handed out never passes a change either read could miss. It is read once
    // the writes running now have ended, so that it covers everything committed before this
    // call, which a socket that has just (re)joined may have missed live.
    let up_to = store.settled_up_to().await?;
    let mut messages = store.changes(agent.id, since, up_to, limit).await?;
    let mut conversations = store
        .conversation_changes(agent.id, since, up_to, limit)
        .await?;
    let mut bound = up_to;
    let mut has_more = false;
    if messages.len() as i64 == limit {
        has_more = true;
        bound = bound.min(messages.last().map_or(up_to, |m| m.seq));
    }
    if conversations.len() as i64 == limit {
        has_more = true;
        let first = conversations.first().map_or(since, |c| c.1);
        let last = conversations.last().map_or(since, |c| c.1);
        if first == last {
            // One change of many conversations (an agent's unassigned at once) fills the
            // page: all of it, or the cursor could never pass it.
            conversations = store
                .conversation_changes(agent.id, last - 1, last, i64::MAX)
                .await?;
            bound = bound.min(last);
        } else {
            // Others of the last change may lie beyond the page: that change comes next time.
            bound = bound.min(last - 1);
        }
    }
    messages.retain(|m| m.seq <= bound);
    conversations.retain(|c| c.1 <= bound);
    let cursor = messages
        .last()
        .map(|m| m.seq)
        .into_iter()
        .chain(conversations.iter().map(|c| c.1))
        .max()
        .unwrap_or(since);
    Ok(Json(Changes {
        messages,
        conversations: conversations.into_iter().map(|c| c.0).collect(),
        cursor,
        has_more,
    }))
}
