//! The REST API of the contract (§3, §4): setup, login, conversations, messages, sending,
//! sync, media, health. Handlers validate input, call the store, and push events.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::{
    self, CurrentAgent, SESSION_DAYS, clear_cookie, request_token, session_cookie, token_hash,
};
use crate::error::{AppError, AppResult, Json, PASSWORDS_BUSY, Query};
use crate::model::{Agent, Conversation, Id, now};
use crate::sms::{normalize_phone, segments};
use crate::store::{NewOutbound, Outbound, Page};
use crate::text::{self, Lines};
use crate::twilio::media::{OCTET_STREAM, normalize_content_type, presentation};

const MAX_BODY_CHARS: usize = 1600;

fn parse_id(raw: &str, what: &'static str) -> AppResult<Id> {
    raw.parse().map_err(|_| AppError::NotFound(what))
}

#[derive(Deserialize)]
pub struct PageQuery {
    limit: Option<String>,
    cursor: Option<String>,
}

impl PageQuery {
    fn page(&self, default: i64, max: i64) -> AppResult<Page> {
        let limit = match self.limit.as_deref().filter(|l| !l.is_empty()) {
            None => default,
            Some(l) => l
                .parse::<i64>()
                .ok()
                .filter(|l| (1..=max).contains(l))
                .ok_or_else(|| {
                    AppError::invalid(format!("limit must be a number from 1 to {max}"))
                })?,
        };
        let cursor = match self.cursor.as_deref().filter(|c| !c.is_empty()) {
            None => None,
            Some(c) => Some(
                c.parse::<i64>()
                    .ok()
                    .filter(|c| *c >= 0)
                    .ok_or_else(|| AppError::invalid("cursor is not one this server gave out"))?,
            ),
        };
        Ok(Page { limit, cursor })
    }
}

fn cursor_string(c: Option<i64>) -> Value {
    c.map_or(Value::Null, |c| Value::String(c.to_string()))
}

// ---- setup and sessions ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetupBody {
    token: String,
    email: String,
    name: String,
    password: String,
    numbers: Vec<String>,
}

/// Validated fields of a new agent.
pub struct NewAgent {
    pub email: String,
    pub name: String,
    pub numbers: Vec<String>,
}

/// Checks what a new agent needs; shared by the setup page and the CLI.
pub fn validate_agent(
    email: &str,
    name: &str,
    password: &str,
    numbers: &[String],
) -> AppResult<NewAgent> {
    text::check_clean("email", email, Lines::One)?;
    text::check_clean("name", name, Lines::One)?;
    let email = email.trim().to_lowercase();
    if email.len() > 254 || !email.contains('@') || email.starts_with('@') || email.ends_with('@') {
        return Err(AppError::invalid("email is not an email address"));
    }
    let name = name.trim();
    if !text::is_visible(name) || name.chars().count() > 100 {
        return Err(AppError::invalid("name must be 1 to 100 characters"));
    }
    if password.chars().count() < 8 || password.len() > 1024 {
        return Err(AppError::invalid("password must be at least 8 characters"));
    }
    if numbers.is_empty() || numbers.len() > 50 {
        return Err(AppError::invalid(
            "numbers must list 1 to 50 Twilio numbers",
        ));
    }
    let numbers = numbers
        .iter()
        .map(|n| {
            normalize_phone(n)
                .ok_or_else(|| AppError::invalid(format!("numbers: `{n}` is not a phone number")))
        })
        .collect::<AppResult<Vec<_>>>()?;
    Ok(NewAgent {
        email,
        name: name.to_owned(),
        numbers,
    })
}

async fn start_session(state: &AppState, agent: Agent, status: StatusCode) -> AppResult<Response> {
    let (token, hash) = auth::new_token();
    let expires = now() + chrono::Duration::days(SESSION_DAYS);
    state.store.create_session(&hash, agent.id, expires).await?;
    Ok((
        status,
        [(
            header::SET_COOKIE,
            session_cookie(&token, state.secure_cookies),
        )],
        axum::Json(json!({"agent": agent, "token": token})),
    )
        .into_response())
}

pub async fn setup(
    State(state): State<AppState>,
    Json(body): Json<SetupBody>,
) -> AppResult<Response> {
    if !state.setup_token_matches(&body.token) {
        return Err(AppError::NotFound("setup token"));
    }
    let new = validate_agent(&body.email, &body.name, &body.password, &body.numbers)?;
    // Checked and taken in one step: of concurrent requests, one goes on.
    if !state.take_setup_token(&body.token) {
        return Err(AppError::NotFound("setup token"));
    }
    let created = async {
        let hash = state.hasher.hash(body.password).await?;
        state
            .store
            .create_first_agent(&new.email, &new.name, &hash, &new.numbers)
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
            state.restore_setup_token(body.token);
            Err(e)
        }
    }
}

#[derive(Deserialize)]
pub struct LoginBody {
    email: String,
    password: String,
}

pub async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Json(body): Json<LoginBody>,
) -> AppResult<Response> {
    if headers.contains_key(header::ORIGIN) && !auth::origin_allowed(&state, &headers) {
        return Err(AppError::Forbidden("sign in from this site".into()));
    }
    let address = auth::client_address(peer.ip(), &headers, &state.trusted_proxies);
    let email = body.email.trim().to_lowercase();
    let throttle = &state.login_throttle;
    let attempt = throttle.reserve(address, &email)?;
    if !attempt.delay.is_zero() {
        tokio::time::sleep(attempt.delay).await;
    }
    match check_password(&state, &email, body.password).await {
        Ok(Some(agent)) => {
            throttle.succeeded(attempt);
            start_session(&state, agent, StatusCode::OK).await
        }
        Ok(None) => {
            tracing::info!(%address, "failed login");
            Err(AppError::Unauthorized)
        }
        // The password was not checked: the attempt does not count.
        Err(e) => {
            throttle.cancel(attempt);
            Err(e)
        }
    }
}

/// The agent whose email and password these are, if any.
async fn check_password(
    state: &AppState,
    email: &str,
    password: String,
) -> AppResult<Option<Agent>> {
    // No agent's email holds a control character (they are refused when agents are made).
    if email.len() > 254 || password.len() > 1024 || !text::is_clean(email, Lines::One) {
        return Ok(None);
    }
    // Refused before reading the database when the hasher's queue is full anyway.
    if !state.hasher.has_room() {
        return Err(AppError::Busy(PASSWORDS_BUSY));
    }
    let (agent, hash) = match state.store.agent_by_email(email).await? {
        Some((agent, hash)) => (Some(agent), Some(hash)),
        None => (None, None),
    };
    let ok = state.hasher.verify(password, hash).await?;
    Ok(agent.filter(|_| ok))
}

pub async fn logout(State(state): State<AppState>, headers: HeaderMap) -> AppResult<Response> {
    if let Some((token, from_cookie)) = request_token(&headers) {
        if from_cookie && !auth::origin_allowed(&state, &headers) {
            return Err(AppError::Forbidden("sign out from this site".into()));
        }
        let hash = token_hash(&token);
        state.store.delete_session(&hash).await?;
        state.events.end_sessions(&[hash]).await;
    }
    Ok((
        StatusCode::NO_CONTENT,
        [(header::SET_COOKIE, clear_cookie(state.secure_cookies))],
    )
        .into_response())
}

pub async fn me(CurrentAgent(agent): CurrentAgent) -> Json<Value> {
    Json(json!({"agent": agent}))
}

// ---- conversations and messages ----

pub async fn list_conversations(
    State(state): State<AppState>,
    CurrentAgent(agent): CurrentAgent,
    Query(q): Query<PageQuery>,
) -> AppResult<Json<Value>> {
    let (conversations, next) = state
        .store
        .list_conversations(agent.id, q.page(50, 200)?)
        .await?;
    Ok(Json(
        json!({"conversations": conversations, "nextCursor": cursor_string(next)}),
    ))
}

#[derive(Deserialize)]
pub struct OpenBody {
    phone: String,
    name: Option<String>,
    from: Option<String>,
}

/// The agent's number to use: the one asked for (which must be theirs), or their first.
fn our_number(agent: &Agent, from: Option<&str>) -> AppResult<String> {
    match from.filter(|f| !f.trim().is_empty()) {
        Some(f) => {
            let n = normalize_phone(f)
                .ok_or_else(|| AppError::invalid("from is not a phone number"))?;
            if agent.numbers.contains(&n) {
                Ok(n)
            } else {
                Err(AppError::invalid("from is not one of your numbers"))
            }
        }
        None => agent
            .numbers
            .first()
            .cloned()
            .ok_or_else(|| AppError::invalid("you have no Twilio number to send from")),
    }
}

pub async fn open_conversation(
    State(state): State<AppState>,
    CurrentAgent(agent): CurrentAgent,
    Json(body): Json<OpenBody>,
) -> AppResult<Response> {
    let phone = normalize_phone(&body.phone)
        .ok_or_else(|| AppError::invalid("phone is not a phone number"))?;
    let from = our_number(&agent, body.from.as_deref())?;
    if let Some(name) = &body.name {
        text::check_clean("name", name, Lines::One)?;
    }
    let name = body
        .name
        .as_deref()
        .map(str::trim)
        .filter(|n| text::is_visible(n));
    if name.is_some_and(|n| n.chars().count() > 100) {
        return Err(AppError::invalid("name must be at most 100 characters"));
    }
    let opened = state.store.open_conversation(&from, &phone, name).await?;
    if name.is_some() {
        state.events.conversation(&opened).await;
    }
    Ok((StatusCode::OK, Json(opened.conversation)).into_response())
}

async fn visible_conversation(
    state: &AppState,
    agent: &Agent,
    id: &str,
) -> AppResult<Conversation> {
    let id = parse_id(id, "conversation")?;
    state
        .store
        .conversation(agent.id, id)
        .await?
        .ok_or(AppError::NotFound("conversation"))
}

pub async fn list_messages(
    State(state): State<AppState>,
    CurrentAgent(agent): CurrentAgent,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
) -> AppResult<Json<Value>> {
    let conversation = visible_conversation(&state, &agent, &id).await?;
    let (messages, next) = state
        .store
        .list_messages(conversation.id, q.page(50, 200)?)
        .await?;
    Ok(Json(
        json!({"messages": messages, "nextCursor": cursor_string(next)}),
    ))
}

pub async fn mark_read(
    State(state): State<AppState>,
    CurrentAgent(agent): CurrentAgent,
    Path(id): Path<String>,
) -> AppResult<StatusCode> {
    let conversation = visible_conversation(&state, &agent, &id).await?;
    if let Some(read) = state.store.mark_read(conversation.id).await? {
        state.events.conversation(&read).await;
    }
    Ok(StatusCode::NO_CONTENT)
}

// ---- sending ----

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SendBody {
    conversation_id: Option<Id>,
    to: Option<String>,
    from: Option<String>,
    body: String,
    client_id: String,
}

fn check_client_id(client_id: &str) -> AppResult<()> {
    let ok = !client_id.is_empty()
        && client_id.len() <= 100
        && client_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(AppError::invalid(
            "clientId must be 1 to 100 letters, digits or - _ . : (a UUID is ideal)",
        ))
    }
}

pub async fn send(
    State(state): State<AppState>,
    CurrentAgent(agent): CurrentAgent,
    Json(body): Json<SendBody>,
) -> AppResult<Response> {
    check_client_id(&body.client_id)?;
    text::check_body("body", &body.body, MAX_BODY_CHARS)?;
    let conversation = match (body.conversation_id, body.to.as_deref()) {
        (Some(id), _) => visible_conversation(&state, &agent, &id.to_string()).await?,
        (None, Some(to)) => {
            let to =
                normalize_phone(to).ok_or_else(|| AppError::invalid("to is not a phone number"))?;
            let from = our_number(&agent, body.from.as_deref())?;
            state
                .store
                .open_conversation(&from, &to, None)
                .await?
                .conversation
        }
        (None, None) => return Err(AppError::invalid("give conversationId, or to")),
    };
    queue_message(&state, &agent, &conversation, body.body, body.client_id).await
}

/// Stores an outbound message as `pending`, wakes the sending queue, and tells the agents.
async fn queue_message(
    state: &AppState,
    agent: &Agent,
    conversation: &Conversation,
    text: String,
    client_id: String,
) -> AppResult<Response> {
    if conversation.contact.opted_out {
        return Err(opted_out());
    }
    let new = NewOutbound {
        conversation_id: conversation.id,
        agent_id: agent.id,
        segments: segments(&text),
        body: text,
        client_id,
    };
    match state.store.insert_outbound(&new).await? {
        Outbound::Created(created) => {
            state.outbox.notify_one();
            state.events.message(&created).await;
            let message = &created.message;
            Ok((StatusCode::ACCEPTED, Json(json!({"message": message}))).into_response())
        }
        Outbound::Existing(message) => {
            Ok((StatusCode::OK, Json(json!({"message": message}))).into_response())
        }
        Outbound::ClientIdReused => Err(AppError::conflict(
            "client_id_reused",
            "this clientId was already used for another message",
        )),
        Outbound::OptedOut => Err(opted_out()),
    }
}

fn opted_out() -> AppError {
    AppError::conflict(
        "opted_out",
        "this contact has opted out (replied STOP); they must reply START before you can message them",
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetryBody {
    client_id: String,
}

pub async fn retry(
    State(state): State<AppState>,
    CurrentAgent(agent): CurrentAgent,
    Path(id): Path<String>,
    Json(body): Json<RetryBody>,
) -> AppResult<Response> {
    check_client_id(&body.client_id)?;
    let id = parse_id(&id, "message")?;
    let original = state
        .store
        .message(agent.id, id)
        .await?
        .ok_or(AppError::NotFound("message"))?;
    if original.direction != crate::model::Direction::Outbound || !original.status.is_failure() {
        return Err(AppError::conflict(
            "not_retryable",
            "only a failed or undelivered outbound message can be retried",
        ));
    }
    let conversation =
        visible_conversation(&state, &agent, &original.conversation_id.to_string()).await?;
    queue_message(&state, &agent, &conversation, original.body, body.client_id).await
}

// ---- sync and media ----

#[derive(Deserialize)]
pub struct SyncQuery {
    since: Option<String>,
    limit: Option<String>,
}

pub async fn sync(
    State(state): State<AppState>,
    CurrentAgent(agent): CurrentAgent,
    Query(q): Query<SyncQuery>,
) -> AppResult<Json<Value>> {
    let since = match q.since.as_deref().filter(|s| !s.is_empty()) {
        None => 0,
        Some(s) => s
            .parse::<i64>()
            .ok()
            .filter(|s| *s >= 0)
            .ok_or_else(|| AppError::invalid("since must be a seq number (0 or more)"))?,
    };
    let page = PageQuery {
        limit: q.limit,
        cursor: None,
    }
    .page(500, 1000)?;
    let messages = state.store.changes(agent.id, since, page.limit).await?;
    let cursor = messages.last().map_or(since, |m| m.seq);
    let has_more = messages.len() as i64 == page.limit;
    Ok(Json(
        json!({"messages": messages, "cursor": cursor, "hasMore": has_more}),
    ))
}

pub async fn media(
    State(state): State<AppState>,
    CurrentAgent(agent): CurrentAgent,
    Path((id, n)): Path<(String, String)>,
) -> AppResult<Response> {
    let id = parse_id(&id, "message")?;
    let message = state
        .store
        .message(agent.id, id)
        .await?
        .ok_or(AppError::NotFound("message"))?;
    let item = n
        .parse::<usize>()
        .ok()
        .and_then(|n| message.media.get(n))
        .ok_or(AppError::NotFound("media"))?;
    let upstream = state.twilio.fetch_media(&item.url).await.map_err(|e| {
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

// ---- health ----

pub async fn healthz() -> &'static str {
    "ok"
}

pub async fn readyz(State(state): State<AppState>) -> Response {
    match state.store.ping().await {
        Ok(()) => {
            let queue = state.store.queue_stats().await.ok();
            (
                StatusCode::OK,
                axum::Json(json!({
                    "status": "ready",
                    "database": state.store.backend(),
                    "queue": queue.map(|q| json!({
                        "depth": q.depth,
                        "oldestPendingSeconds": q.oldest.map(|t| (now() - t).num_seconds().max(0)),
                    })),
                })),
            )
                .into_response()
        }
        Err(e) => {
            tracing::warn!(error = %e, "readiness check: database unavailable");
            AppError::Unavailable.into_response()
        }
    }
}

// ---- simulator ----

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SimulateBody {
    from: String,
    to: String,
    body: String,
    #[serde(default)]
    media_urls: Vec<String>,
}

/// `POST /dev/simulate/inbound`: the simulator posts a signed inbound webhook to us.
pub async fn simulate_inbound(
    State(state): State<AppState>,
    CurrentAgent(agent): CurrentAgent,
    Json(body): Json<SimulateBody>,
) -> AppResult<Response> {
    let Some(sim) = state.simulator.clone() else {
        return Err(AppError::NotFound("route"));
    };
    let from = normalize_phone(&body.from)
        .ok_or_else(|| AppError::invalid("from is not a phone number"))?;
    let to =
        normalize_phone(&body.to).ok_or_else(|| AppError::invalid("to is not a phone number"))?;
    if !agent.numbers.contains(&to) {
        return Err(AppError::invalid("to must be one of your numbers"));
    }
    text::check_clean("body", &body.body, Lines::Many)?;
    if body.body.chars().count() > MAX_BODY_CHARS
        || (!text::is_visible(&body.body) && body.media_urls.is_empty())
    {
        return Err(AppError::invalid(format!(
            "body must be 1 to {MAX_BODY_CHARS} characters"
        )));
    }
    if body.media_urls.len() > 10
        || body
            .media_urls
            .iter()
            .any(|u| !(u.starts_with("http://") || u.starts_with("https://")) || u.len() > 2048)
    {
        return Err(AppError::invalid("mediaUrls must be up to 10 http(s) URLs"));
    }
    let params = sim.inbound_params(&from, &to, &body.body, &body.media_urls);
    let sid = params[0].1.clone();
    let url = format!("{}/api/crm/sms/webhook", state.public_url);
    let delivery = sim.deliver(url, params, state.shutdown.clone()).await;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({
            "messageSid": sid,
            "webhookStatus": delivery.status,
            "retrying": delivery.retrying,
        })),
    )
        .into_response())
}
