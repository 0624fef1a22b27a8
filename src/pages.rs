//! The agent's pages and their static files, embedded in the binary (read from `static/`
//! at run time in debug builds), served with a strict Content-Security-Policy. A page that
//! needs a fact only the server knows (the invited email, the Twilio mode) gets it written
//! into its HTML, escaped, instead of asking for it with a request of its own.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
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
    img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; \
    base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

/// A static file with a strong `ETag` (from the SHA-256 rust-embed keeps for every file);
/// `304 Not Modified` when `request` already holds it, so a reload revalidates the page's
/// modules without downloading them again.
fn asset(path: &str, request: &HeaderMap) -> Option<Response> {
    let file = Assets::get(path)?;
    let etag = etag(&file.metadata.sha256_hash());
    let validators = [
        (header::ETAG, etag.clone()),
        // Revalidate every time: pages and their modules must never mix versions.
        (header::CACHE_CONTROL, "no-cache".to_owned()),
    ];
    if holds(request, &etag) {
        return Some((StatusCode::NOT_MODIFIED, validators).into_response());
    }
    let mime = file.metadata.mimetype().to_owned();
    Some(
        (
            [(header::CONTENT_TYPE, mime)],
            validators,
            file.data.into_owned(),
        )
            .into_response(),
    )
}

fn etag(sha256: &[u8; 32]) -> String {
    let hex: String = sha256[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

/// Whether `If-None-Match` names `etag` (compared weakly, RFC 9110 §13.1.2) or is `*`.
fn holds(request: &HeaderMap, etag: &str) -> bool {
    request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
}

/// The pages: `/` sends to the right one, `/login`, the one-time `/setup`, an invited
/// agent's `/invite`, and the inbox.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(root))
        .route("/login", get(login))
        .route("/setup", get(setup))
        .route("/invite", get(invite))
        .route("/agent/messages", get(messages))
}

fn page(name: &str) -> Response {
    asset(name, &HeaderMap::new()).unwrap_or_else(|| AppError::NotFound("page").into_response())
}

/// The page `name` with every `{{key}}` replaced by its value, escaped for HTML text and
/// attributes alike.
fn filled(name: &str, values: &[(&str, &str)]) -> Response {
    let Some(file) = Assets::get(name) else {
        return AppError::NotFound("page").into_response();
    };
    let mut html = String::from_utf8_lossy(&file.data).into_owned();
    for (key, value) in values {
        html = html.replace(&format!("{{{{{key}}}}}"), &escape_html(value));
    }
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        html,
    )
        .into_response()
}

fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A link that can no longer be used (`404`, as the API says) still gets a page: what
/// happened, in the app's style, and the way to sign in.
fn gone(title: &str, message: &str) -> Response {
    let page = filled("notice.html", &[("title", title), ("message", message)]);
    (StatusCode::NOT_FOUND, page).into_response()
}

async fn signed_in(state: &AppState, headers: &HeaderMap) -> bool {
    match request_token(headers) {
        Some((token, _)) => matches!(
            state
                .services
                .store
                .session_agent(&token_hash(&token))
                .await,
            Ok(Some(_))
        ),
        None => false,
    }
}

async fn root(State(state): State<AppState>, headers: HeaderMap) -> Redirect {
    if signed_in(&state, &headers).await {
        Redirect::to("/agent/messages")
    } else {
        Redirect::to("/login")
    }
}

async fn login() -> Response {
    page("login.html")
}

/// The inbox, told whether the server runs the Twilio simulator (it then offers "Simulate
/// incoming SMS").
async fn messages(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if signed_in(&state, &headers).await {
        let mode = match state.services.simulator {
            Some(_) => "simulated",
            None => "live",
        };
        filled("messages.html", &[("twilio", mode)])
    } else {
        Redirect::to("/login").into_response()
    }
}

#[derive(Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

async fn setup(State(state): State<AppState>, Query(q): Query<TokenQuery>) -> Response {
    let setup_token = &state.runtime.setup_token;
    match q.token {
        Some(t) if setup_token.is_open(&state.services.store, &t).await => page("setup.html"),
        _ => gone(
            "This setup link can’t be used",
            "It was used already, or it is from an earlier run of the server. Sign in with \
             the account it created, or restart the server to print a new link.",
        ),
    }
}

/// The invite link's page, where the invited agent chooses a password for the email it
/// names; `404` unless the invite can still be accepted.
async fn invite(State(state): State<AppState>, Query(q): Query<TokenQuery>) -> Response {
    let open = match q.token {
        Some(t) => state.services.store.open_invite(&token_hash(&t)).await,
        None => Ok(None),
    };
    match open {
        Ok(Some(email)) => filled("invite.html", &[("email", &email)]),
        Ok(None) => gone(
            "This invite link can’t be used",
            "It was used already, it expired (a link lasts 7 days), or a newer link replaced \
             it. If you chose your password already, sign in; if not, ask your admin for a \
             new link.",
        ),
        Err(e) => AppError::from(e).into_response(),
    }
}

/// Any other path: a static file, or the styled 404.
pub async fn fallback(uri: Uri, headers: HeaderMap) -> Response {
    let path = uri.path().trim_start_matches('/');
    if path.is_empty() || path.ends_with(".html") {
        return AppError::NotFound("route").into_response();
    }
    asset(path, &headers).unwrap_or_else(|| AppError::NotFound("route").into_response())
}

/// Security headers for every response; a handler that sets its own, stricter CSP (the
/// media proxy's `sandbox`) keeps it.
pub async fn security_headers(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    h.entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(CSP));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn get(path: &str, if_none_match: Option<&str>) -> Response {
        let mut headers = HeaderMap::new();
        if let Some(v) = if_none_match {
            headers.insert(header::IF_NONE_MATCH, HeaderValue::from_str(v).unwrap());
        }
        asset(path, &headers).expect("the file exists")
    }

    fn etag_of(response: &Response) -> String {
        response.headers()[header::ETAG]
            .to_str()
            .unwrap()
            .to_owned()
    }

    #[tokio::test]
    async fn filled_pages_escape_what_they_are_given() {
        assert_eq!(
            escape_html(r#"<b a='1' b="2">&amp;</b>"#),
            "&lt;b a=&#39;1&#39; b=&quot;2&quot;&gt;&amp;amp;&lt;/b&gt;"
        );
        let page = filled("invite.html", &[("email", "a\"<script>@x.io")]);
        assert_eq!(page.status(), StatusCode::OK);
        let body = axum::body::to_bytes(page.into_body(), 1 << 20)
            .await
            .unwrap();
        let html = String::from_utf8(body.to_vec()).unwrap();
        assert!(html.contains("a&quot;&lt;script&gt;@x.io"), "{html}");
        assert!(
            !html.contains("{{") && !html.contains("<script>@"),
            "{html}"
        );
    }

    #[tokio::test]
    async fn static_files_revalidate_with_their_etag() {
        let first = get("app.js", None);
        assert_eq!(first.status(), StatusCode::OK);
        let etag = etag_of(&first);
        assert!(
            etag.starts_with('"') && etag.ends_with('"') && etag.len() == 34,
            "{etag}"
        );
        assert_ne!(
            etag,
            etag_of(&get("js/store.js", None)),
            "one tag per content"
        );

        for held in [
            etag.clone(),
            format!("W/{etag}"),
            format!("\"other\", {etag}"),
            "*".to_owned(),
        ] {
            let again = get("app.js", Some(&held));
            assert_eq!(
                again.status(),
                StatusCode::NOT_MODIFIED,
                "If-None-Match: {held}"
            );
            assert_eq!(etag_of(&again), etag);
            assert_eq!(again.headers()[header::CACHE_CONTROL], "no-cache");
            let body = axum::body::to_bytes(again.into_body(), 1024).await.unwrap();
            assert!(body.is_empty());
        }
        for stale in ["\"other\"", "", &etag[1..]] {
            assert_eq!(
                get("app.js", Some(stale)).status(),
                StatusCode::OK,
                "If-None-Match: {stale}"
            );
        }
    }
}
