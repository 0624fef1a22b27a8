//! A fake of Twilio's Messages API, served by this process under `/dev/twilio` and used
//! through the real [`TwilioClient`](super::TwilioClient). It answers like Twilio (create, the
//! Messages list, fetching one message), fetches each `MediaUrl` of an MMS as Twilio would,
//! then posts signed status callbacks; it also posts signed inbound webhooks for "Simulate
//! incoming SMS".

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::new_sid;
use super::signature::sign;

/// How many sent messages the simulator remembers for the Messages list.
const MEMORY: usize = 10_000;

/// An inbound webhook answered with a 5xx, or not at all, is retried as Twilio would: with
/// growing gaps, for about ten minutes.
const RETRY_FOR: Duration = Duration::from_secs(10 * 60);
const FIRST_RETRY: Duration = Duration::from_secs(1);
const MAX_RETRY_GAP: Duration = Duration::from_secs(60);

/// What became of an inbound webhook's first attempt.
#[derive(Clone, Copy, Debug)]
pub struct Delivery {
    /// The status our webhook answered, if it answered.
    pub status: Option<u16>,
    /// Whether it is being retried in the background.
    pub retrying: bool,
}

fn worth_retrying(outcome: &Result<u16, String>) -> bool {
    outcome.as_ref().map_or(true, |status| *status >= 500)
}

#[derive(Clone, Debug)]
struct Sent {
    sid: String,
    to: String,
    from: String,
    body: String,
    media_urls: Vec<String>,
    status: String,
    date: DateTime<Utc>,
}

/// Twilio's error when it cannot fetch a `MediaUrl` as an image it can send.
pub const MEDIA_FETCH_FAILED: i64 = 12300;

pub struct Simulator {
    pub account_sid: String,
    pub auth_token: String,
    http: reqwest::Client,
    sent: Mutex<VecDeque<Sent>>,
    retries: TaskTracker,
    /// Delay before the `sent` and the final callback.
    pub timings: (Duration, Duration),
}

impl Simulator {
    pub fn new() -> Self {
        Self {
            account_sid: new_sid("AC"),
            auth_token: format!("{:032x}", rand::random::<u128>()),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(15))
                .build()
                .expect("the TLS backend is compiled in"),
            sent: Mutex::new(VecDeque::new()),
            retries: TaskTracker::new(),
            timings: (Duration::from_millis(500), Duration::from_millis(1500)),
        }
    }

    /// Posts a signed webhook to `url` as Twilio would, returning the HTTP status.
    pub async fn post_signed(&self, url: &str, params: &[(String, String)]) -> Result<u16, String> {
        let signature = sign(&self.auth_token, url, params);
        let response = self
            .http
            .post(url)
            .header("X-Twilio-Signature", signature)
            .header(header::USER_AGENT, "TwilioProxy/1.1")
            .form(params)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        Ok(response.status().as_u16())
    }

    /// Posts a signed inbound webhook to `url`; if it fails with a 5xx or no answer, keeps
    /// retrying in the background until it is answered otherwise, about ten minutes pass,
    /// or `shutdown` is cancelled.
    pub async fn deliver(
        self: &Arc<Self>,
        url: String,
        params: Vec<(String, String)>,
        shutdown: CancellationToken,
    ) -> Delivery {
        let first = self.post_signed(&url, &params).await;
        let retrying = worth_retrying(&first);
        if retrying {
            tracing::warn!(outcome = ?first, "simulator: inbound webhook failed; retrying as Twilio would");
            let sim = self.clone();
            self.retries
                .spawn(async move { sim.retry(&url, &params, shutdown).await });
        }
        Delivery {
            status: first.ok(),
            retrying,
        }
    }

    async fn retry(&self, url: &str, params: &[(String, String)], shutdown: CancellationToken) {
        let give_up = tokio::time::Instant::now() + RETRY_FOR;
        let mut gap = FIRST_RETRY;
        loop {
            let outcome = tokio::select! {
                _ = shutdown.cancelled() => return,
                o = async {
                    tokio::time::sleep(gap).await;
                    self.post_signed(url, params).await
                } => o,
            };
            if !worth_retrying(&outcome) {
                tracing::info!(outcome = ?outcome, "simulator: inbound webhook delivered on retry");
                return;
            }
            if tokio::time::Instant::now() + gap >= give_up {
                tracing::warn!(outcome = ?outcome, "simulator: inbound webhook given up after retrying for 10 minutes");
                return;
            }
            gap = (gap * 2).min(MAX_RETRY_GAP);
        }
    }

    /// How many inbound webhooks are being retried.
    pub fn retrying(&self) -> usize {
        self.retries.len()
    }

    /// The parameters of an inbound message webhook.
    pub fn inbound_params(
        &self,
        from: &str,
        to: &str,
        body: &str,
        media_urls: &[String],
    ) -> Vec<(String, String)> {
        let sid = new_sid(if media_urls.is_empty() { "SM" } else { "MM" });
        let mut p: Vec<(String, String)> = vec![
            ("MessageSid".into(), sid.clone()),
            ("SmsMessageSid".into(), sid.clone()),
            ("SmsSid".into(), sid),
            ("AccountSid".into(), self.account_sid.clone()),
            ("From".into(), from.into()),
            ("To".into(), to.into()),
            ("Body".into(), body.into()),
            ("NumMedia".into(), media_urls.len().to_string()),
            (
                "NumSegments".into(),
                crate::sms::segments(body).max(1).to_string(),
            ),
            ("SmsStatus".into(), "received".into()),
            ("ApiVersion".into(), "2010-04-01".into()),
        ];
        for (i, url) in media_urls.iter().enumerate() {
            p.push((format!("MediaUrl{i}"), url.clone()));
            p.push((format!("MediaContentType{i}"), guess_type(url).into()));
        }
        p
    }

    fn authorized(&self, headers: &HeaderMap) -> bool {
        let expected = format!(
            "Basic {}",
            STANDARD.encode(format!("{}:{}", self.account_sid, self.auth_token))
        );
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v == expected)
    }

    fn remember(&self, sent: Sent) {
        let mut memory = self.sent.lock().unwrap_or_else(|p| p.into_inner());
        if memory.len() >= MEMORY {
            memory.pop_front();
        }
        memory.push_back(sent);
    }

    fn set_status(&self, sid: &str, status: &str) {
        let mut memory = self.sent.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(m) = memory.iter_mut().rev().find(|m| m.sid == sid) {
            m.status = status.into();
        }
    }
}

impl Default for Simulator {
    fn default() -> Self {
        Self::new()
    }
}

fn guess_type(url: &str) -> &'static str {
    let path = url
        .split(['?', '#'])
        .next()
        .unwrap_or(url)
        .to_ascii_lowercase();
    match path.rsplit('.').next() {
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("png") => "image/png",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        Some("mp4") => "video/mp4",
        Some("pdf") => "application/pdf",
        _ => "application/octet-stream",
    }
}

fn twilio_error(status: StatusCode, code: i64, message: &str) -> Response {
    (
        status,
        axum::Json(json!({
            "code": code,
            "message": message,
            "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
            "status": status.as_u16(),
        })),
    )
        .into_response()
}

fn resource(account: &str, m: &Sent) -> Value {
    json!({
        "account_sid": account,
        "api_version": "2010-04-01",
        "body": m.body,
        "date_created": m.date.to_rfc2822(),
        "date_sent": m.date.to_rfc2822(),
        "date_updated": m.date.to_rfc2822(),
        "direction": "outbound-api",
        "error_code": null,
        "error_message": null,
        "from": m.from,
        "messaging_service_sid": null,
        "num_media": m.media_urls.len().to_string(),
        "num_segments": crate::sms::segments(&m.body).max(1).to_string(),
        "price": null,
        "price_unit": "USD",
        "sid": m.sid,
        "status": m.status,
        "subresource_uris": {"media": format!("/2010-04-01/Accounts/{account}/Messages/{}/Media.json", m.sid)},
        "to": m.to,
        "uri": format!("/2010-04-01/Accounts/{account}/Messages/{}.json", m.sid),
    })
}

/// A create's parameters; `MediaUrl` may come several times.
#[derive(Default)]
struct CreateForm {
    to: Option<String>,
    from: Option<String>,
    messaging_service_sid: Option<String>,
    body: Option<String>,
    status_callback: Option<String>,
    media_urls: Vec<String>,
}

impl CreateForm {
    fn read(params: Vec<(String, String)>) -> Self {
        let mut form = Self::default();
        for (name, value) in params {
            match name.as_str() {
                "To" => form.to = Some(value),
                "From" => form.from = Some(value),
                "MessagingServiceSid" => form.messaging_service_sid = Some(value),
                "Body" => form.body = Some(value),
                "StatusCallback" => form.status_callback = Some(value),
                "MediaUrl" => form.media_urls.push(value),
                _ => {}
            }
        }
        form
    }
}

async fn create(
    State(sim): State<Arc<Simulator>>,
    Path(account): Path<String>,
    headers: HeaderMap,
    Form(params): Form<Vec<(String, String)>>,
) -> Response {
    let form = CreateForm::read(params);
    if !sim.authorized(&headers) || account != sim.account_sid {
        return twilio_error(StatusCode::UNAUTHORIZED, 20003, "Authenticate");
    }
    let Some(to) = form.to.filter(|t| !t.is_empty()) else {
        return twilio_error(
            StatusCode::BAD_REQUEST,
            21604,
            "A 'To' phone number is required.",
        );
    };
    let body = form.body.unwrap_or_default();
    if body.is_empty() && form.media_urls.is_empty() {
        return twilio_error(StatusCode::BAD_REQUEST, 21602, "Message body is required.");
    }
    let from = match (form.from, form.messaging_service_sid) {
        (Some(f), _) if !f.is_empty() => f,
        (_, Some(ms)) if !ms.is_empty() => ms,
        _ => {
            return twilio_error(
                StatusCode::BAD_REQUEST,
                21603,
                "A 'From' phone number is required.",
            );
        }
    };
    let refusal = match to.as_str() {
        "+15005550001" => Some((
            21211,
            format!("The 'To' number {to} is not a valid phone number."),
        )),
        "+15005550004" => Some((
            21610,
            "Attempt to send to unsubscribed recipient".to_owned(),
        )),
        "+15005550009" => Some((
            21614,
            format!("'To' number {to} is not a valid mobile number"),
        )),
        _ => None,
    };
    if let Some((code, message)) = refusal {
        return twilio_error(StatusCode::BAD_REQUEST, code, &message);
    }
    let sent = Sent {
        sid: new_sid(if form.media_urls.is_empty() {
            "SM"
        } else {
            "MM"
        }),
        to,
        from,
        body,
        media_urls: form.media_urls,
        status: "queued".into(),
        date: Utc::now(),
    };
    sim.remember(sent.clone());
    if let Some(callback) = form.status_callback {
        tokio::spawn(play_callbacks(sim.clone(), sent.clone(), callback));
    }
    (
        StatusCode::CREATED,
        axum::Json(resource(&sim.account_sid, &sent)),
    )
        .into_response()
}

/// Fetches each of the message's media as Twilio would (no credentials), wanting an image.
async fn fetch_media(sim: &Simulator, m: &Sent) -> Result<(), String> {
    for url in &m.media_urls {
        let response = sim
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        if !response.status().is_success() || !content_type.starts_with("image/") {
            return Err(format!("{url}: {} {content_type}", response.status()));
        }
        response.bytes().await.map_err(|e| format!("{url}: {e}"))?;
    }
    Ok(())
}

/// Posts `sent`, then `delivered` (or `undelivered` 30003 for +15005550007); an MMS whose
/// media cannot be fetched posts `failed` with 12300 instead.
async fn play_callbacks(sim: Arc<Simulator>, m: Sent, callback: String) {
    let (first, last) = sim.timings;
    let undeliverable = m.to == "+15005550007";
    let fetched = fetch_media(&sim, &m).await;
    tokio::time::sleep(first).await;
    let code = MEDIA_FETCH_FAILED.to_string();
    let steps: Vec<(&str, Option<&str>, Duration)> = match &fetched {
        Err(e) => {
            tracing::warn!(error = %e, "simulator: a MediaUrl could not be fetched; the message fails with 12300");
            vec![("failed", Some(code.as_str()), Duration::ZERO)]
        }
        Ok(()) if undeliverable => vec![
            ("sent", None, Duration::ZERO),
            ("undelivered", Some("30003"), last.saturating_sub(first)),
        ],
        Ok(()) => vec![
            ("sent", None, Duration::ZERO),
            ("delivered", None, last.saturating_sub(first)),
        ],
    };
    for (status, error, wait) in steps {
        tokio::time::sleep(wait).await;
        sim.set_status(&m.sid, status);
        let mut params: Vec<(String, String)> = vec![
            ("AccountSid".into(), sim.account_sid.clone()),
            ("ApiVersion".into(), "2010-04-01".into()),
            ("From".into(), m.from.clone()),
            ("MessageSid".into(), m.sid.clone()),
            ("MessageStatus".into(), status.into()),
            ("SmsSid".into(), m.sid.clone()),
            ("SmsStatus".into(), status.into()),
            ("To".into(), m.to.clone()),
        ];
        if let Some(code) = error {
            params.push(("ErrorCode".into(), code.into()));
        }
        if let Err(e) = sim.post_signed(&callback, &params).await {
            tracing::warn!(error = %e, "simulator: status callback could not be posted");
        }
    }
}

async fn list(
    State(sim): State<Arc<Simulator>>,
    Path(account): Path<String>,
    headers: HeaderMap,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    if !sim.authorized(&headers) || account != sim.account_sid {
        return twilio_error(StatusCode::UNAUTHORIZED, 20003, "Authenticate");
    }
    let param = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let since = param("DateSent>")
        .or(param("DateSent>="))
        .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok());
    let memory = sim.sent.lock().unwrap_or_else(|p| p.into_inner());
    let messages: Vec<Value> = memory
        .iter()
        .rev()
        .filter(|m| param("To").is_none_or(|t| t == m.to))
        .filter(|m| param("From").is_none_or(|f| f == m.from))
        .filter(|m| since.is_none_or(|d| m.date.date_naive() >= d))
        .take(100)
        .map(|m| resource(&sim.account_sid, m))
        .collect();
    axum::Json(json!({
        "messages": messages,
        "next_page_uri": null,
        "page": 0,
        "page_size": 100,
    }))
    .into_response()
}

/// `GET …/Messages/{sid}.json`: a message the simulator sent, with its status now.
async fn fetch(
    State(sim): State<Arc<Simulator>>,
    Path((account, file)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if !sim.authorized(&headers) || account != sim.account_sid {
        return twilio_error(StatusCode::UNAUTHORIZED, 20003, "Authenticate");
    }
    let sid = file.strip_suffix(".json").unwrap_or(&file);
    let memory = sim.sent.lock().unwrap_or_else(|p| p.into_inner());
    match memory.iter().rev().find(|m| m.sid == sid) {
        Some(m) => axum::Json(resource(&sim.account_sid, m)).into_response(),
        None => twilio_error(
            StatusCode::NOT_FOUND,
            20404,
            &format!(
                "The requested resource /2010-04-01/Accounts/{account}/Messages/{sid}.json was not found"
            ),
        ),
    }
}

/// The fake Messages API under `/dev/twilio`, and `/dev/status` for the page.
pub fn router_for<S: Clone + Send + Sync + 'static>(sim: Arc<Simulator>) -> Router<S> {
    Router::new()
        .route(
            "/dev/twilio/2010-04-01/Accounts/{account}/Messages.json",
            post(create).get(list),
        )
        .route(
            "/dev/twilio/2010-04-01/Accounts/{account}/Messages/{sid}",
            get(fetch),
        )
        .route(
            "/dev/status",
            get(|| async { axum::Json(json!({"simulator": true})) }),
        )
        .with_state(sim)
}
