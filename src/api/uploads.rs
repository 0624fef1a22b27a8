//! `POST /api/crm/sms/uploads`: a picture to send, as the multipart part `file` (docs/api.md,
//! "Sending pictures"). Its kind is told by its bytes; it is read into one buffer, refused
//! as soon as it passes 5 MB, and handed to the store by value.

use axum::Router;
use axum::extract::multipart::{MultipartError, MultipartRejection};
use axum::extract::{DefaultBodyLimit, Multipart, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

use crate::AppState;
use crate::auth::CurrentAgent;
use crate::domain::Picture;
use crate::error::{AppError, AppResult, Json};

/// This route's body limit: a picture and the multipart framing around it. The rest of the
/// API keeps [`crate::BODY_LIMIT`].
pub const UPLOAD_BODY_LIMIT: usize = Picture::MAX_BYTES + 64 * 1024;

/// The part that holds the picture.
const FILE_PART: &str = "file";

pub fn router() -> Router<AppState> {
    Router::new().route(
        "/api/crm/sms/uploads",
        post(upload).layer(DefaultBodyLimit::max(UPLOAD_BODY_LIMIT)),
    )
}

async fn upload(
    State(state): State<AppState>,
    CurrentAgent(agent): CurrentAgent,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> AppResult<Response> {
    let is_multipart = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<mime::Mime>().ok())
        .is_some_and(|m| m.essence_str() == "multipart/form-data");
    if !is_multipart {
        return Err(AppError::UnsupportedMediaType(format!(
            "send the picture as multipart/form-data, in a part named {FILE_PART}"
        )));
    }
    let mut multipart = multipart.map_err(|e| AppError::BadRequest(e.body_text()))?;
    // The whole body's length is the picture's and a little framing: one allocation that
    // fits, instead of a buffer doubling its way up.
    let expected = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0)
        .min(Picture::MAX_BYTES);
    let bytes = read_file(&mut multipart, expected).await?;
    let kind = Picture::sniff(&bytes).map_err(|e| AppError::UnsupportedMediaType(e.to_string()))?;
    let upload = state
        .services
        .store
        .insert_upload(agent.id, kind, bytes)
        .await?;
    Ok((StatusCode::CREATED, Json(upload)).into_response())
}

/// The bytes of the one part named `file`, read into one buffer of at most
/// [`Picture::MAX_BYTES`]. Past that, or at a second `file`, the rest of the body is read
/// and dropped (the route's limit bounds it) so the client hears the answer rather than a
/// connection cut under its upload.
async fn read_file(multipart: &mut Multipart, expected: usize) -> AppResult<Vec<u8>> {
    let mut file: Option<Vec<u8>> = None;
    let mut refusal: Option<AppError> = None;
    while let Some(mut field) = multipart.next_field().await.map_err(multipart_error)? {
        if field.name() != Some(FILE_PART) || refusal.is_some() {
            continue;
        }
        if file.is_some() {
            refusal = Some(AppError::invalid(format!(
                "{FILE_PART}: send one picture at a time"
            )));
            continue;
        }
        let mut bytes = Vec::with_capacity(expected);
        while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
            if bytes.len() + chunk.len() > Picture::MAX_BYTES {
                refusal = Some(AppError::FileTooLarge);
                break;
            }
            bytes.extend_from_slice(&chunk);
        }
        file = Some(bytes);
    }
    if let Some(refused) = refusal {
        return Err(refused);
    }
    match file {
        None => Err(AppError::invalid(format!(
            "{FILE_PART} is missing: send the picture as the multipart part named {FILE_PART}"
        ))),
        Some(bytes) if bytes.is_empty() => Err(AppError::invalid(format!("{FILE_PART} is empty"))),
        Some(bytes) => Ok(bytes),
    }
}

fn multipart_error(e: MultipartError) -> AppError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        AppError::FileTooLarge
    } else {
        AppError::BadRequest(e.body_text())
    }
}
