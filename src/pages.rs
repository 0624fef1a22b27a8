//! The agent's pages and their static files, embedded in the binary (read from `static/`
//! at run time in debug builds), served with a strict Content-Security-Policy.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Redirect, Response};
use rust_embed::RustEmbed;
use serde::Deserialize;

use crate::AppState;
use crate::auth::{request_token, token_hash};
use crate::error::{AppError, Query};

#[derive(RustEmbed)]
#[folder = "static/"]
#[exclude = "*.test.mjs"]
struct Assets;

pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
    img-src 'self' data: blob:; connect-src 'self' ws: wss:; object-src 'none'; \
    base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

fn asset(path: &str) -> Option<Response> {
    let file = Assets::get(path)?;
    let mime = file.metadata.mimetype().to_owned();
    Some(
        (
            [
                (header::CONTENT_TYPE, mime),
                // Revalidate every time: pages and their modules must never mix versions.
                (header::CACHE_CONTROL, "no-cache".to_owned()),
            ],
            file.data.into_owned(),
        )
            .into_response(),
    )
}

fn page(name: &str) -> Response {
    asset(name).unwrap_or_else(|| AppError::NotFound("page").into_response())
}

async fn signed_in(state: &AppState, headers: &HeaderMap) -> bool {
    match request_token(headers) {
        Some((token, _)) => matches!(
            state.store.session_agent(&token_hash(&token)).await,
            Ok(Some(_))
        ),
        None => false,
    }
}

pub async fn root(State(state): State<AppState>, headers: HeaderMap) -> Redirect {
    if signed_in(&state, &headers).await {
        Redirect::to("/agent/messages")
    } else {
        Redirect::to("/login")
    }
}

pub async fn login() -> Response {
    page("login.html")
}

pub async fn messages(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if signed_in(&state, &headers).await {
        page("messages.html")
    } else {
        Redirect::to("/login").into_response()
    }
}

#[derive(Deserialize)]
pub struct SetupQuery {
    token: Option<String>,
}

pub async fn setup(State(state): State<AppState>, Query(q): Query<SetupQuery>) -> Response {
    match q.token {
        Some(t) if state.setup_open(&t).await => page("setup.html"),
        _ => (
            StatusCode::NOT_FOUND,
            "This setup link is not valid (wrong, used, or from an earlier run).",
        )
            .into_response(),
    }
}

/// Any other path: a static file, or the contract's 404.
pub async fn fallback(uri: Uri) -> Response {
    let path = uri.path().trim_start_matches('/');
    if path.is_empty() || path.ends_with(".html") {
        return AppError::NotFound("route").into_response();
    }
    asset(path).unwrap_or_else(|| AppError::NotFound("route").into_response())
}

/// Security headers for every response.
pub async fn security_headers(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}
