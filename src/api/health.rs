//! `GET /healthz` (the process runs) and `GET /readyz` (the database answers, how the
//! sending queue is doing, and whether Redis carries events between instances). With
//! `METRICS_TOKEN` set, `/readyz` says only up or down unless the request carries the token:
//! its detail is the instance's load, for operators, not for whoever reaches the port.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::error::{AppError, Json};
use crate::model::now;
use crate::monitoring;

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
    /// With `REDIS_URL` only: `"up"`, or `"down"` while events reach this instance's sockets
    /// only. Still ready when down: the database is what must answer, and a balancer that
    /// dropped every instance at once over Redis would help no one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redis: Option<String>,
    /// socket.io connections held by this instance: with several instances, how the
    /// balancer spreads them.
    pub sockets: usize,
}

/// The answer of `/readyz` while the database answers, to a request without the
/// `METRICS_TOKEN` that is set: ready, and nothing more.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ready {
    /// Always `"ready"`.
    pub status: String,
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

async fn readyz(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let store = &state.services.store;
    match store.ping().await {
        Ok(()) if !monitoring::allowed(&state, &headers) => {
            let ready = Ready {
                status: "ready".to_owned(),
            };
            (StatusCode::OK, Json(ready)).into_response()
        }
        Ok(()) => {
            let queue = store.queue_stats().await.ok().map(|q| QueueDepth {
                depth: q.depth,
                oldest_pending_seconds: q.oldest.map(|t| (now() - t).num_seconds().max(0)),
            });
            let ready = Readiness {
                status: "ready".to_owned(),
                database: store.backend().to_owned(),
                queue,
                redis: state
                    .services
                    .events
                    .redis_up()
                    .map(|up| if up { "up" } else { "down" }.to_owned()),
                sockets: state.runtime.connections.sockets(),
            };
            (StatusCode::OK, Json(ready)).into_response()
        }
        Err(e) => {
            tracing::warn!(error = %e, "readiness check: database unavailable");
            AppError::Unavailable.into_response()
        }
    }
}
