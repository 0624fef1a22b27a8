//! `GET /healthz` (the process runs) and `GET /readyz` (the database answers, and how the
//! sending queue is doing).

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::error::{AppError, Json};
use crate::model::now;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

/// The answer of `/readyz` while the database answers.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Readiness {
    /// Always `"ready"`.
    pub status: String,
    /// `"postgres"` or `"sqlite"`.
    pub database: String,
    /// `null` when the queue could not be read.
    pub queue: Option<QueueDepth>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueDepth {
    pub depth: i64,
    pub oldest_pending_seconds: Option<i64>,
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(state): State<AppState>) -> Response {
    let store = &state.services.store;
    match store.ping().await {
        Ok(()) => {
            let queue = store.queue_stats().await.ok().map(|q| QueueDepth {
                depth: q.depth,
                oldest_pending_seconds: q.oldest.map(|t| (now() - t).num_seconds().max(0)),
            });
            let ready = Readiness {
                status: "ready".to_owned(),
                database: store.backend().to_owned(),
                queue,
            };
            (StatusCode::OK, Json(ready)).into_response()
        }
        Err(e) => {
            tracing::warn!(error = %e, "readiness check: database unavailable");
            AppError::Unavailable.into_response()
        }
    }
}
