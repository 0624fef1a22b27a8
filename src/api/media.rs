//! An MMS's media, served inert (docs/security.md, "Media"):
//! `GET /api/crm/sms/messages/{id}/media/{n}` to the agents (an inbound message's fetched from
//! Twilio with the account's credentials, an outbound one's from the database), and
//! `GET /media/out/{token}` to Twilio, which fetches the pictures we send by that link alone.

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
use crate::model::{Direction, MessageId};
use crate::store::{StoredPicture, is_token};
use crate::twilio::media::{MEDIA_LINK_PATH, OCTET_STREAM, normalize_content_type, presentation};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/crm/sms/messages/{id}/media/{n}", get(media))
        .route(&format!("{MEDIA_LINK_PATH}{{token}}"), get(linked))
}

/// `GET /media/out/{token}`: a picture of a message we sent, to whoever holds its link (Twilio)
/// until the link expires; a token that is not a live link's is `404`, as any other.
async fn linked(State(state): State<AppState>, Path(token): Path<String>) -> AppResult<Response> {
    if !is_token(&token) {
        return Err(AppError::NotFound("media"));
    }
    let picture = state
        .services
        .store
        .linked_picture(&token)
        .await?
        .ok_or(AppError::NotFound("media"))?;
    Ok(serve_picture(picture, "picture"))
}

/// A stored picture, inert: its own type (only ever an image one, told by its bytes at
/// upload), never sniffed, kept out of shared caches.
fn serve_picture(picture: StoredPicture, stem: &str) -> Response {
    let shown = presentation(&picture.content_type, stem);
    (
        [
            (header::CONTENT_TYPE, shown.content_type),
            (header::CONTENT_DISPOSITION, shown.disposition),
            (header::CACHE_CONTROL, "private, max-age=86400".to_owned()),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
            (header::CONTENT_SECURITY_POLICY, "sandbox".to_owned()),
        ],
        picture.bytes,
    )
        .into_response()
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
    let index = n
        .parse::<usize>()
        .ok()
        .filter(|i| *i < message.media.len())
        .ok_or(AppError::NotFound("media"))?;
    let item = &message.media[index];
    if message.direction == Direction::Outbound {
        let picture = state
            .services
            .store
            .message_picture(message.id, index as i64)
            .await?
            .ok_or(AppError::NotFound("media"))?;
        return Ok(serve_picture(picture, &format!("media-{}-{n}", message.id)));
    }
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
