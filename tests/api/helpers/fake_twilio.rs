//! A fake Twilio: a real HTTP server on loopback that answers the Messages API (create, with
//! scripted answers and failures, the Messages list, and fetching one message), serves media
//! behind the account's credentials, and posts status callbacks back to the app the way
//! Twilio signs them. It posts no callback unless a script says so: a test posts the ones
//! that arrive, and a status it only sets ([`FakeTwilio::set_status`]) is one whose callback
//! went missing, which a fetch still shows.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde_json::{Value, json};
use smsdesk::twilio::signature::sign;

use super::new_sid;

/// In fake-Twilio mode the server believes it is reachable here, as behind ngrok.
pub const PUBLIC_URL: &str = "https://smsdesk.test";
/// A `PUBLIC_URL` with an explicit port, which Twilio may leave out when it signs.
pub const PUBLIC_URL_WITH_PORT: &str = "https://smsdesk.test:8443";
pub const FAKE_ACCOUNT: &str = "ACfeedfacefeedfacefeedfacefeedface";
pub const FAKE_TOKEN: &str = "fake-auth-token";

/// Posts `params` as Twilio does to `url` (an address under [`PUBLIC_URL`]), signed for `url`,
/// but sent to the server at `base`.
pub async fn post_signed(
    http: &reqwest::Client,
    base: &str,
    url: &str,
    params: &[(String, String)],
) -> reqwest::Result<reqwest::Response> {
    let signature = sign(FAKE_TOKEN, url, params);
    http.post(url.replace(PUBLIC_URL, base))
        .header("X-Twilio-Signature", signature)
        .form(params)
        .send()
        .await
}

/// What the fake answers to the next send.
#[derive(Clone, Debug)]
pub enum Script {
    Accept,
    Error {
        status: u16,
        code: i64,
        message: &'static str,
    },
    /// Posts the given status callback first, then answers.
    CallbackFirst(&'static str),
    /// As `CallbackFirst`, to the status URL without our message id (as a callback URL
    /// configured on the number in Twilio's console would).
    CallbackFirstWithoutId(&'static str),
    /// Sends the message, then answers 500 as if the answer was lost on the way.
    LostAnswer,
    /// Answers 429 with `Retry-After: 1`; nothing is sent.
    RateLimited,
    /// Hangs this long before Twilio takes the message (it is not in the list meanwhile),
    /// then accepts.
    Slow(Duration),
    /// Takes the message and answers `201` with this sid (a new one if `None`) and status.
    Answer {
        sid: Option<String>,
        status: &'static str,
    },
    /// Takes the message, rings `taken`, and answers (`201`) only once `answer` rings.
    Held {
        taken: Arc<tokio::sync::Notify>,
        answer: Arc<tokio::sync::Notify>,
    },
}

/// What a fetch of one message shows.
#[derive(Clone, Debug)]
pub enum Fetched {
    /// The message, with this status and error code.
    Status(String, Option<i64>),
    /// Twilio's `404`: it no longer knows the message.
    NotFound,
}

/// What the fake received and took, and how it behaves; tests read and set it directly.
#[derive(Default)]
pub struct FakeState {
    /// Every create request received, with when it came.
    pub sent: Mutex<Vec<HashMap<String, String>>>,
    /// The `MediaUrl`s of every create request received, in the order of `sent`.
    pub media_urls: Mutex<Vec<Vec<String>>>,
    pub sent_at: Mutex<Vec<Instant>>,
    /// How long each create takes to answer.
    pub delay: Mutex<Duration>,
    /// The messages Twilio really took (sid, request), as its Messages list shows them.
    pub accepted: Mutex<Vec<(String, HashMap<String, String>)>>,
    /// When Twilio took each of them, by sid.
    pub accepted_at: Mutex<HashMap<String, chrono::DateTime<chrono::Utc>>>,
    /// Messages sent some other way that the Messages list also shows, whatever its filters.
    pub listed: Mutex<Vec<Value>>,
    /// How long the Messages list takes to answer (with what it held when asked).
    pub list_delay: Mutex<Duration>,
    /// How many times the Messages list was read.
    pub lists: Mutex<usize>,
    /// The list lags behind: it shows none of the messages taken (only `listed`).
    pub list_lags: Mutex<bool>,
    /// What a fetch shows of a message, by its sid or its body, as the test set it.
    pub statuses: Mutex<HashMap<String, Fetched>>,
    /// What a fetch shows of a message whose status the test did not set; `queued` if `None`.
    pub fetched_status: Mutex<Option<&'static str>>,
    /// Every fetch of one message: its sid, and when it came.
    pub fetched: Mutex<Vec<(String, Instant)>>,
    script: Mutex<VecDeque<Script>>,
    /// Where the app really listens, for the status callbacks the fake posts to `PUBLIC_URL`.
    pub app_addr: OnceLock<String>,
    media: Mutex<HashMap<String, (String, Vec<u8>)>>,
    redirects: Mutex<HashMap<String, String>>,
}

/// The fake's address (the app's `TWILIO_API_BASE`) and its state.
pub struct FakeTwilio {
    pub url: String,
    pub state: Arc<FakeState>,
}

impl FakeTwilio {
    /// A fake that answers from the start.
    pub async fn start() -> Self {
        let fake = Self::reserve();
        fake.come_up().await;
        fake
    }

    /// A fake whose address is known but which does not answer yet: Twilio is unreachable.
    pub fn reserve() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Self {
            url: format!("http://127.0.0.1:{port}"),
            state: Arc::new(FakeState::default()),
        }
    }

    /// Starts answering at the reserved address.
    pub async fn come_up(&self) {
        let app = Router::new()
            .route(
                "/2010-04-01/Accounts/{account}/Messages.json",
                post(fake_create).get(fake_list),
            )
            .route(
                "/2010-04-01/Accounts/{account}/Messages/{sid}",
                get(fake_fetch),
            )
            .route("/media/{name}", get(fake_media))
            .route("/redirect/{name}", get(fake_redirect))
            .with_state(self.state.clone());
        let addr = self.url.trim_start_matches("http://").to_owned();
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
    }

    /// Queues how the fake answers a coming create; unscripted creates are accepted.
    pub fn script(&self, s: Script) {
        self.state.script.lock().unwrap().push_back(s);
    }

    /// How many creates reached the fake, whatever it answered.
    pub fn sent_count(&self) -> usize {
        self.state.sent.lock().unwrap().len()
    }

    /// The `MediaUrl`s of the `n`th create received.
    pub fn media_urls(&self, n: usize) -> Vec<String> {
        self.state.media_urls.lock().unwrap()[n].clone()
    }

    /// How many messages Twilio took (what a phone would receive).
    pub fn accepted_count(&self) -> usize {
        self.state.accepted.lock().unwrap().len()
    }

    /// Moves a message on in Twilio, named by its sid or its body, without posting its
    /// callback: the callback went missing. (By body, it can be set before the send.)
    pub fn set_status(&self, sid_or_body: &str, status: &str, error_code: Option<i64>) {
        self.state.statuses.lock().unwrap().insert(
            sid_or_body.to_owned(),
            Fetched::Status(status.to_owned(), error_code),
        );
    }

    /// Twilio no longer knows the message named by its sid or body: a fetch answers `404`.
    pub fn forget(&self, sid_or_body: &str) {
        self.state
            .statuses
            .lock()
            .unwrap()
            .insert(sid_or_body.to_owned(), Fetched::NotFound);
    }

    /// How many times the message `sid` was fetched.
    pub fn fetch_count(&self, sid: &str) -> usize {
        let fetched = self.state.fetched.lock().unwrap();
        fetched.iter().filter(|(s, _)| s == sid).count()
    }

    /// Serves `bytes` at a URL that demands the account's credentials, like Twilio's media;
    /// an empty `content_type` sends none.
    pub fn media_url(&self, name: &str, content_type: &str, bytes: &[u8]) -> String {
        self.state
            .media
            .lock()
            .unwrap()
            .insert(name.into(), (content_type.into(), bytes.to_vec()));
        format!("{}/media/{name}", self.url)
    }

    /// A URL that demands the account's credentials and redirects to `location`, as
    /// Twilio's media URLs redirect to its CDN.
    pub fn redirect_url(&self, name: &str, location: &str) -> String {
        self.state
            .redirects
            .lock()
            .unwrap()
            .insert(name.into(), location.into());
        format!("{}/redirect/{name}", self.url)
    }
}

fn basic_ok(headers: &HeaderMap) -> bool {
    use base64::Engine;
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{FAKE_ACCOUNT}:{FAKE_TOKEN}"))
    );
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == expected)
}

async fn fake_create(
    State(state): State<Arc<FakeState>>,
    Path(account): Path<String>,
    headers: HeaderMap,
    Form(params): Form<Vec<(String, String)>>,
) -> Response {
    let media_urls: Vec<String> = params
        .iter()
        .filter(|(k, _)| k == "MediaUrl")
        .map(|(_, v)| v.clone())
        .collect();
    let form: HashMap<String, String> = params.into_iter().collect();
    if account != FAKE_ACCOUNT || !basic_ok(&headers) {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"code": 20003, "message": "Authenticate", "status": 401})),
        )
            .into_response();
    }
    state.sent.lock().unwrap().push(form.clone());
    state.media_urls.lock().unwrap().push(media_urls);
    state.sent_at.lock().unwrap().push(Instant::now());
    let script = state
        .script
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or(Script::Accept);
    let sid = match &script {
        Script::Answer { sid: Some(sid), .. } => sid.clone(),
        _ => new_sid(),
    };
    if let Script::Slow(hang) = script {
        tokio::time::sleep(hang).await;
    }
    if !matches!(script, Script::Error { .. } | Script::RateLimited) {
        state
            .accepted_at
            .lock()
            .unwrap()
            .insert(sid.clone(), chrono::Utc::now());
        state
            .accepted
            .lock()
            .unwrap()
            .push((sid.clone(), form.clone()));
    }
    // Twilio has the message; a process killed now never hears back.
    let delay = *state.delay.lock().unwrap();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    if let Script::Held { taken, answer } = &script {
        taken.notify_one();
        answer.notified().await;
    }
    match script {
        Script::LostAnswer => (
            StatusCode::INTERNAL_SERVER_ERROR,
            axum::Json(json!({"code": 20500, "message": "Internal Server Error", "status": 500})),
        )
            .into_response(),
        Script::RateLimited => (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "1")],
            axum::Json(json!({"code": 20429, "message": "Too Many Requests", "status": 429})),
        )
            .into_response(),
        Script::Error {
            status,
            code,
            message,
        } => (
            StatusCode::from_u16(status).unwrap(),
            axum::Json(json!({"code": code, "message": message, "status": status})),
        )
            .into_response(),
        Script::CallbackFirst(status) | Script::CallbackFirstWithoutId(status) => {
            let mut callback = form
                .get("StatusCallback")
                .cloned()
                .expect("a StatusCallback");
            if matches!(script, Script::CallbackFirstWithoutId(_)) {
                callback.truncate(callback.find('?').unwrap_or(callback.len()));
            }
            let params: Vec<(String, String)> = vec![
                ("MessageSid".into(), sid.clone()),
                ("MessageStatus".into(), status.into()),
                ("AccountSid".into(), FAKE_ACCOUNT.into()),
            ];
            let signature = sign(FAKE_TOKEN, &callback, &params);
            let target = callback.replace(PUBLIC_URL, state.app_addr.get().unwrap());
            let r = reqwest::Client::new()
                .post(target)
                .header("X-Twilio-Signature", signature)
                .form(&params)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "early callback accepted");
            created(&sid, "queued", &form)
        }
        Script::Answer { status, .. } => created(&sid, status, &form),
        Script::Accept | Script::Slow(_) | Script::Held { .. } => created(&sid, "queued", &form),
    }
}

fn created(sid: &str, status: &str, form: &HashMap<String, String>) -> Response {
    (
        StatusCode::CREATED,
        axum::Json(json!({
            "sid": sid,
            "status": status,
            "to": form.get("To"),
            "from": form.get("From"),
            "body": form.get("Body"),
            "num_segments": "1",
            "date_created": chrono::Utc::now().to_rfc2822(),
        })),
    )
        .into_response()
}

/// `GET …/Messages/{sid}.json`: the message as Twilio holds it now, or Twilio's `404`.
async fn fake_fetch(
    State(state): State<Arc<FakeState>>,
    Path((account, file)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if account != FAKE_ACCOUNT || !basic_ok(&headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let sid = file.strip_suffix(".json").unwrap_or(&file).to_owned();
    state
        .fetched
        .lock()
        .unwrap()
        .push((sid.clone(), Instant::now()));
    let request = {
        let accepted = state.accepted.lock().unwrap();
        accepted
            .iter()
            .find(|(s, _)| *s == sid)
            .map(|(_, m)| m.clone())
    };
    let fetched = request.as_ref().and_then(|m| {
        let statuses = state.statuses.lock().unwrap();
        let body = m.get("Body").cloned().unwrap_or_default();
        statuses.get(&sid).or_else(|| statuses.get(&body)).cloned()
    });
    let fetched = match (request, fetched) {
        (Some(m), Some(Fetched::Status(status, error_code))) => Some((m, status, error_code)),
        (Some(m), None) => {
            let status = state.fetched_status.lock().unwrap().unwrap_or("queued");
            Some((m, status.to_owned(), None))
        }
        (None, _) | (_, Some(Fetched::NotFound)) => None,
    };
    let Some((m, status, error_code)) = fetched else {
        return (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"code": 20404, "message": format!("The requested resource /2010-04-01/Accounts/{account}/Messages/{sid}.json was not found"), "status": 404})),
        )
            .into_response();
    };
    axum::Json(json!({
        "sid": sid, "status": status, "error_code": error_code, "to": m.get("To"),
        "from": m.get("From"), "body": m.get("Body"), "num_segments": "1",
        "date_created": state.accepted_at.lock().unwrap()[&sid].to_rfc2822(),
    }))
    .into_response()
}

async fn fake_list(
    State(state): State<Arc<FakeState>>,
    headers: HeaderMap,
    axum::extract::Query(query): axum::extract::Query<HashMap<String, String>>,
) -> Response {
    if !basic_ok(&headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    *state.lists.lock().unwrap() += 1;
    let lags = *state.list_lags.lock().unwrap();
    let mut messages: Vec<Value> = {
        let accepted = state.accepted.lock().unwrap();
        let accepted_at = state.accepted_at.lock().unwrap();
        let matches = |m: &HashMap<String, String>, key: &str| {
            query
                .get(key)
                .is_none_or(|q| q.is_empty() || m.get(key) == Some(q))
        };
        accepted
            .iter()
            .rev()
            .filter(|_| !lags)
            .filter(|(_, m)| matches(m, "To") && matches(m, "From"))
            .map(|(sid, m)| json!({"sid": sid, "status": "sent", "to": m.get("To"), "from": m.get("From"), "messaging_service_sid": m.get("MessagingServiceSid"), "body": m.get("Body"), "date_created": accepted_at[sid].to_rfc2822()}))
            .collect()
    };
    messages.extend(state.listed.lock().unwrap().iter().cloned());
    let delay = *state.list_delay.lock().unwrap();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    axum::Json(json!({"messages": messages, "next_page_uri": null})).into_response()
}

async fn fake_media(
    State(state): State<Arc<FakeState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    if !basic_ok(&headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let Some((ct, bytes)) = state.media.lock().unwrap().get(&name).cloned() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let mut response = bytes.into_response();
    response.headers_mut().remove("content-type");
    if !ct.is_empty() {
        response
            .headers_mut()
            .insert("content-type", ct.parse().unwrap());
    }
    response
}

async fn fake_redirect(
    State(state): State<Arc<FakeState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    if !basic_ok(&headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    match state.redirects.lock().unwrap().get(&name) {
        Some(location) => (StatusCode::FOUND, [("location", location.clone())]).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
