//! `GET /api/crm/sms/sync?since=&limit=`: every message of the agent created or changed
//! after a `seq`, in change order, so a page that was offline misses nothing.

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use serde::{Deserialize, Serialize};

use super::limit;
use crate::AppState;
use crate::auth::CurrentAgent;
use crate::error::{AppError, AppResult, Json, Query};
use crate::model::Message;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/crm/sms/sync", get(sync))
}

/// What changed since the asked `seq`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Changes {
    pub messages: Vec<Message>,
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
    let messages = state.services.store.changes(agent.id, since, limit).await?;
    let cursor = messages.last().map_or(since, |m| m.seq);
    let has_more = messages.len() as i64 == limit;
    Ok(Json(Changes {
        messages,
        cursor,
        has_more,
    }))
}
