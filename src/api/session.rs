//! Becoming and being an agent (docs/api.md, "Sessions and agents"): the one-time setup of the first agent,
//! accepting an invite, sign in, sign out, and who is signed in.

use std::net::SocketAddr;

use axum::Router;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::auth::{
    self, CurrentAgent, SESSION_DAYS, clear_cookie, request_token, session_cookie, token_hash,
};
use crate::domain::{Email, NewAgent};
use crate::error::{AppError, AppResult, Json, PASSWORDS_BUSY};
use crate::model::{Agent, now};
use crate::text::{self, Lines};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/setup", post(setup))
        .route("/api/invite", post(accept_invite))
        .route("/api/auth/login", post(login))
        .route("/api/auth/logout", post(logout))
        .route("/api/auth/me", get(me))
}

/// A new session: the agent, and the token (also set as the cookie) for Bearer clients.
#[derive(Debug, Serialize, Deserialize)]
pub struct SessionStarted {
    pub agent: Agent,
    pub token: String,
}

/// `GET /api/auth/me`.
#[derive(Debug, Serialize, Deserialize)]
pub struct Me {
    pub agent: Agent,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetupBody {
    token: String,
    email: String,
    name: String,
    password: String,
    numbers: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InviteBody {
    token: String,
    password: String,
}

#[derive(Deserialize)]
struct LoginBody {
    email: String,
    password: String,
}

/// A session of `agent`, answered with `status`; [`AppError::AccountDisabled`] when the
/// agent was disabled since their credentials were checked.
async fn start_session(state: &AppState, agent: Agent, status: StatusCode) -> AppResult<Response> {
    let (token, hash) = auth::new_token();
    let expires = now() + chrono::Duration::days(SESSION_DAYS);
    let store = &state.services.store;
    if !store.create_session(&hash, agent.id, expires).await? {
        return Err(AppError::AccountDisabled);
    }
    let cookie = session_cookie(&token, state.config.secure_cookies);
    let started = SessionStarted { agent, token };
    Ok((status, [(header::SET_COOKIE, cookie)], Json(started)).into_response())
}

/// `POST /api/setup`: the first agent, with the token of the setup link.
async fn setup(State(state): State<AppState>, Json(body): Json<SetupBody>) -> AppResult<Response> {
    let setup_token = &state.runtime.setup_token;
    if !setup_token.matches(&body.token) {
        return Err(AppError::NotFound("setup token"));
    }
    let new = NewAgent::parse(&body.email, &body.name, &body.password, &body.numbers)?;
    // Checked and taken in one step: of concurrent requests, one goes on.
    if !setup_token.take(&body.token) {
        return Err(AppError::NotFound("setup token"));
    }
    let created = async {
        let hash = state.services.hasher.hash(body.password).await?;
        state
            .services
            .store
            .create_first_agent(&new, &hash)
            .await?
            .ok_or(AppError::NotFound("setup token"))
    }
    .await;
    match created {
        Ok(agent) => {
            tracing::info!(agent = %agent.id, "first agent created through setup");
            start_session(&state, agent, StatusCode::CREATED).await
        }
        // An agent exists (made elsewhere): the token stays dead.
        Err(e @ AppError::NotFound(_)) => Err(e),
        // Our failure, not the user's: the link keeps working.
        Err(e) => {
            setup_token.restore(body.token);
            Err(e)
        }
    }
}

/// `POST /api/invite`: an invited agent chooses their password and is signed in.
async fn accept_invite(
    State(state): State<AppState>,
    Json(body): Json<InviteBody>,
) -> AppResult<Response> {
    let store = &state.services.store;
    let hash = token_hash(&body.token);
    // Looked up first, so that an unknown link costs no password hash.
    if store.open_invite(&hash).await?.is_none() {
        return Err(AppError::NotFound("invite"));
    }
    NewAgent::check_password(&body.password)?;
    let password_hash = state.services.hasher.hash(body.password).await?;
    let agent = store
        .accept_invite(&hash, &password_hash)
        .await?
        .ok_or(AppError::NotFound("invite"))?;
    tracing::info!(agent = %agent.id, "invite accepted");
    start_session(&state, agent, StatusCode::OK).await
}

/// `POST /api/auth/login`, throttled per client address and per account.
async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Json(body): Json<LoginBody>,
) -> AppResult<Response> {
    if headers.contains_key(header::ORIGIN) && !auth::origin_allowed(&state, &headers) {
        return Err(AppError::Forbidden("sign in from this site".into()));
    }
    let address = auth::client_address(peer.ip(), &headers, &state.config.trusted_proxies);
    let email = Email::normalize(&body.email);
    let throttle = &state.runtime.login_throttle;
    let attempt = throttle.reserve(address, &email).await?;
    if !attempt.delay.is_zero() {
        tokio::time::sleep(attempt.delay).await;
    }
    let signed_in = match check_password(&state, &email, body.password).await {
        Ok(Some(agent)) => start_session(&state, agent, StatusCode::OK).await.map(Some),
        checked => checked.map(|_| None),
    };
    match signed_in {
        Ok(Some(started)) => {
            throttle.succeeded(attempt).await;
            Ok(started)
        }
        Ok(None) => {
            tracing::info!(%address, "failed login");
            Err(AppError::Unauthorized)
        }
        // Refused like a wrong password: the attempt counts.
        Err(e @ AppError::AccountDisabled) => {
            tracing::info!(%address, "login of a disabled agent");
            Err(e)
        }
        // The password was not checked, or no session could be stored: the attempt does
        // not count.
        Err(e) => {
            throttle.cancel(attempt).await;
            Err(e)
        }
    }
}

/// The agent whose email (normalised) and password these are, if any;
/// [`AppError::AccountDisabled`] when they are a disabled agent's.
async fn check_password(
    state: &AppState,
    email: &str,
    password: String,
) -> AppResult<Option<Agent>> {
    // No agent's email holds a control character (they are refused when agents are made).
    if email.len() > Email::MAX_LEN
        || !NewAgent::password_fits(&password)
        || !text::is_clean(email, Lines::One)
    {
        return Ok(None);
    }
    let hasher = &state.services.hasher;
    // Refused before reading the database when the hasher's queue is full anyway.
    if !hasher.has_room() {
        return Err(AppError::Busy(PASSWORDS_BUSY));
    }
    // An invited agent who has not chosen a password yet is checked against the decoy, as
    // an unknown email is: as slow, and never a match.
    let candidate = state
        .services
        .store
        .signing_in(email)
        .await?
        .filter(|c| !c.password_hash.is_empty());
    let hash = candidate.as_ref().map(|c| c.password_hash.clone());
    if !hasher.verify(password, hash).await? {
        return Ok(None);
    }
    match candidate {
        Some(c) if c.disabled => Err(AppError::AccountDisabled),
        c => Ok(c.map(|c| c.agent)),
    }
}

/// `POST /api/auth/logout`: the session ends here and its sockets are disconnected.
async fn logout(State(state): State<AppState>, headers: HeaderMap) -> AppResult<Response> {
    if let Some((token, from_cookie)) = request_token(&headers) {
        if from_cookie && !auth::origin_allowed(&state, &headers) {
            return Err(AppError::Forbidden("sign out from this site".into()));
        }
        let hash = token_hash(&token);
        state.services.store.delete_session(&hash).await?;
        state.services.events.end_sessions(&[hash]).await;
    }
    let cookie = clear_cookie(state.config.secure_cookies);
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, cookie)]).into_response())
}

async fn me(CurrentAgent(agent): CurrentAgent) -> Json<Me> {
    Json(Me { agent })
}
