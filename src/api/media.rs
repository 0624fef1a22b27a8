//! `GET /api/crm/sms/messages/{id}/media/{n}`: an MMS's media, fetched from Twilio with the
//! account's credentials and served inert (docs/security.md, "Media is inert and no SSRF tool").

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::PathId;
use crate::AppState;
use crate::auth::CurrentAgent;
use crate::error::{AppError, AppResult};
use crate::model::MessageId;
use crate::twilio::media::{OCTET_STREAM, normalize_content_type, presentation};

pub fn router() -> Router<AppState> {
    Router::new().route("/api/crm/sms/messages/{id}/media/{n}", get(media))
}

async fn media(
    State(state): State<AppState>,
    CurrentAgent(agent): CurrentAgent,
    PathId(id): PathId<MessageId>,
    Path((_, n)): Path<(String, String)>,
) -> AppResult<Response> {
    let message = state
        .services
        .store
        .message(agent.id, id)
        .await?
        .ok_or(AppError::NotFound("message"))?;
    let item = n
        .parse::<usize>()
        .ok()
        .and_then(|n| message.media.get(n))
        .ok_or(AppError::NotFound("media"))?;
    let upstream = state
        .services
        .twilio
        .fetch_media(&item.url)
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, message = %message.id, n = %n, "media not served");
            AppError::NotFound("media")
        })?;
    let content_type = upstream
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(normalize_content_type)
        .or_else(|| normalize_content_type(&item.content_type))
        .unwrap_or_else(|| OCTET_STREAM.to_owned());
    let shown = presentation(&content_type, &format!("media-{}-{n}", message.id));
    Ok((
        [
            (header::CONTENT_TYPE, shown.content_type),
            (header::CONTENT_DISPOSITION, shown.disposition),
            (header::CACHE_CONTROL, "private, max-age=86400".to_owned()),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
            // Even a media response opened as a page gets a unique origin and no script.
            (header::CONTENT_SECURITY_POLICY, "sandbox".to_owned()),
        ],
        Body::from_stream(upstream.bytes_stream()),
    )
        .into_response())
}
