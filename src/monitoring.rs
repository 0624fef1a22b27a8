//! `/metrics` (docs/operations.md, "Monitoring"): Prometheus text from the `metrics` facade and its Prometheus
//! exporter, with `metrics-process`'s process figures. The recorder is global to the
//! process: installed once, by the first server built, and shared by any later one (tests
//! start several in one process).
//!
//! Counters and histograms are recorded where things happen, through the functions here;
//! their keys (name and labels) are built at compile time, so recording allocates nothing.
//! Every family is registered with the recorder, each counter with all its known labels at
//! 0, so the first scrape lists them all (a series that appears only once it is used breaks
//! `rate()` and alerts on absence). Gauges (sockets, queue depth, database connections) are
//! read when scraped.

use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, IntoResponseParts, Response, ResponseParts};
use axum::routing::get;
use metrics::{Key, Label, Level, Metadata};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::AppState;
use crate::error::AppError;

/// The Prometheus text format's content type.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4";

/// Buckets of every duration histogram, in seconds: from a webhook stored in milliseconds
/// to a Messages API call that times out after 20 s.
const DURATION_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 20.0,
];

pub fn router() -> Router<AppState> {
    Router::new().route("/metrics", get(metrics))
}

/// The recorder's handle, installing the recorder on first use; `None` if something else
/// installed a global recorder first.
pub fn install() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(&DURATION_BUCKETS)
                .expect("the buckets are not empty")
                .build_recorder();
            let handle = recorder.handle();
            match metrics::set_global_recorder(recorder) {
                Ok(()) => {
                    describe();
                    register_families();
                    process().describe();
                    Some(handle)
                }
                Err(_) => {
                    tracing::warn!("another metrics recorder is installed; /metrics stays empty");
                    None
                }
            }
        })
        .as_ref()
}

fn process() -> &'static metrics_process::Collector {
    static PROCESS: OnceLock<metrics_process::Collector> = OnceLock::new();
    PROCESS.get_or_init(metrics_process::Collector::default)
}

/// Keeps the histograms' memory bounded between scrapes; the server calls it now and then.
pub fn upkeep() {
    if let Some(handle) = install() {
        handle.run_upkeep();
    }
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(WEBHOOKS, "Twilio webhooks received, by kind and outcome.");
    describe_histogram!(
        WEBHOOK_DURATION,
        metrics::Unit::Seconds,
        "Time to answer a Twilio webhook."
    );
    describe_gauge!(SOCKETS, "socket.io connections open on this instance.");
    describe_counter!(
        EVENTS,
        "socket.io events sent, one per room they went to (an agent's, or every agent's)."
    );
    describe_gauge!(QUEUE_DEPTH, "Messages waiting in the sending queue.");
    describe_counter!(
        TWILIO,
        "Calls to Twilio's Messages API to send, by outcome."
    );
    describe_histogram!(
        TWILIO_DURATION,
        metrics::Unit::Seconds,
        "Time of a call to Twilio's Messages API to send."
    );
    describe_counter!(SYNC, "Calls of GET /api/crm/sms/sync.");
    describe_gauge!(POOL, "Database connections of this instance, idle or busy.");
}

/// Registers every counter with each of its known labels, every histogram and every gauge,
/// all at 0 until something happens.
fn register_families() {
    metrics::with_recorder(|r| {
        let counters = WEBHOOK_KEYS
            .iter()
            .flatten()
            .chain(EVENT_KEYS.iter().map(|(_, key)| key))
            .chain(&TWILIO_KEYS)
            .chain([&SYNC_KEY]);
        for key in counters {
            r.register_counter(key, &METADATA).increment(0);
        }
        for key in WEBHOOK_DURATION_KEYS.iter().chain([&TWILIO_DURATION_KEY]) {
            drop(r.register_histogram(key, &METADATA));
        }
    });
    for gauge in [
        metrics::gauge!(SOCKETS),
        metrics::gauge!(QUEUE_DEPTH),
        metrics::gauge!(POOL, "state" => "idle"),
        metrics::gauge!(POOL, "state" => "busy"),
    ] {
        gauge.set(0.0);
    }
}

const WEBHOOKS: &str = "smsdesk_webhooks_total";
const WEBHOOK_DURATION: &str = "smsdesk_webhook_duration_seconds";
const SOCKETS: &str = "smsdesk_socket_connections";
const EVENTS: &str = "smsdesk_events_emitted_total";
const QUEUE_DEPTH: &str = "smsdesk_send_queue_depth";
const TWILIO: &str = "smsdesk_twilio_requests_total";
const TWILIO_DURATION: &str = "smsdesk_twilio_request_duration_seconds";
const SYNC: &str = "smsdesk_sync_requests_total";
const POOL: &str = "smsdesk_db_pool_connections";

static METADATA: Metadata<'static> = Metadata::new(module_path!(), Level::INFO, None);

/// A [`Key`] whose name and one or two labels are fixed at compile time.
macro_rules! key {
    ($name:expr, $k:literal => $v:literal) => {{
        static LABELS: [Label; 1] = [Label::from_static_parts($k, $v)];
        Key::from_static_parts($name, &LABELS)
    }};
    ($name:expr, $k1:literal => $v1:literal, $k2:literal => $v2:literal) => {{
        static LABELS: [Label; 2] = [
            Label::from_static_parts($k1, $v1),
            Label::from_static_parts($k2, $v2),
        ];
        Key::from_static_parts($name, &LABELS)
    }};
}

/// Which webhook.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WebhookKind {
    Inbound = 0,
    Status = 1,
}

/// How a webhook ended, from its answer (and [`Duplicate`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WebhookOutcome {
    Ok = 0,
    Duplicate = 1,
    Forbidden = 2,
    BadRequest = 3,
    Unavailable = 4,
}

static WEBHOOK_KEYS: [[Key; 5]; 2] = [
    [
        key!(WEBHOOKS, "kind" => "inbound", "outcome" => "ok"),
        key!(WEBHOOKS, "kind" => "inbound", "outcome" => "duplicate"),
        key!(WEBHOOKS, "kind" => "inbound", "outcome" => "forbidden"),
        key!(WEBHOOKS, "kind" => "inbound", "outcome" => "bad_request"),
        key!(WEBHOOKS, "kind" => "inbound", "outcome" => "unavailable"),
    ],
    [
        key!(WEBHOOKS, "kind" => "status", "outcome" => "ok"),
        key!(WEBHOOKS, "kind" => "status", "outcome" => "duplicate"),
        key!(WEBHOOKS, "kind" => "status", "outcome" => "forbidden"),
        key!(WEBHOOKS, "kind" => "status", "outcome" => "bad_request"),
        key!(WEBHOOKS, "kind" => "status", "outcome" => "unavailable"),
    ],
];
static WEBHOOK_DURATION_KEYS: [Key; 2] = [
    key!(WEBHOOK_DURATION, "kind" => "inbound"),
    key!(WEBHOOK_DURATION, "kind" => "status"),
];

impl WebhookOutcome {
    fn of(status: StatusCode, duplicate: bool) -> Self {
        match status.as_u16() {
            200..=299 if duplicate => Self::Duplicate,
            200..=299 => Self::Ok,
            401 | 403 => Self::Forbidden,
            400..=499 => Self::BadRequest,
            _ => Self::Unavailable,
        }
    }
}

/// What a webhook handler adds to its answer when Twilio sent what was stored already.
#[derive(Clone, Copy, Debug)]
pub struct Duplicate;

impl IntoResponseParts for Duplicate {
    type Error = std::convert::Infallible;
    fn into_response_parts(self, mut res: ResponseParts) -> Result<ResponseParts, Self::Error> {
        res.extensions_mut().insert(self);
        Ok(res)
    }
}

/// Counts and times a webhook's `POST`s, by their answers (a route layer of each webhook,
/// with its kind as its state).
pub async fn measure_webhook(
    State(kind): State<WebhookKind>,
    request: Request,
    next: Next,
) -> Response {
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    let started = Instant::now();
    let response = next.run(request).await;
    let duplicate = response.extensions().get::<Duplicate>().is_some();
    webhook(
        kind,
        WebhookOutcome::of(response.status(), duplicate),
        started.elapsed(),
    );
    response
}

/// One webhook answered.
pub fn webhook(kind: WebhookKind, outcome: WebhookOutcome, took: Duration) {
    metrics::with_recorder(|r| {
        r.register_counter(&WEBHOOK_KEYS[kind as usize][outcome as usize], &METADATA)
            .increment(1);
        r.register_histogram(&WEBHOOK_DURATION_KEYS[kind as usize], &METADATA)
            .record(took.as_secs_f64());
    });
}

static EVENT_KEYS: [(&str, Key); 6] = [
    ("message:new", key!(EVENTS, "event" => "message:new")),
    ("message:status", key!(EVENTS, "event" => "message:status")),
    (
        "conversation:updated",
        key!(EVENTS, "event" => "conversation:updated"),
    ),
    ("typing", key!(EVENTS, "event" => "typing")),
    ("reply:changed", key!(EVENTS, "event" => "reply:changed")),
    ("reply:deleted", key!(EVENTS, "event" => "reply:deleted")),
];

/// `event` went out to `rooms` rooms (an agent's each, or the one of every agent).
pub fn events_emitted(event: &'static str, rooms: usize) {
    let rooms = rooms as u64;
    match EVENT_KEYS.iter().find(|(name, _)| *name == event) {
        Some((_, key)) => metrics::with_recorder(|r| {
            r.register_counter(key, &METADATA).increment(rooms);
        }),
        // An event added later than this table: counted all the same.
        None => metrics::counter!(EVENTS, "event" => event).increment(rooms),
    }
}

/// How a call to the Messages API went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TwilioOutcome {
    Created = 0,
    ClientError = 1,
    RateLimited = 2,
    ServerError = 3,
    /// No answer came back (it may have been sent).
    Timeout = 4,
    /// The request never reached Twilio.
    ConnectError = 5,
}

static TWILIO_KEYS: [Key; 6] = [
    key!(TWILIO, "outcome" => "created"),
    key!(TWILIO, "outcome" => "client_error"),
    key!(TWILIO, "outcome" => "rate_limited"),
    key!(TWILIO, "outcome" => "server_error"),
    key!(TWILIO, "outcome" => "timeout"),
    key!(TWILIO, "outcome" => "connect_error"),
];
static TWILIO_DURATION_KEY: Key = Key::from_static_name(TWILIO_DURATION);

/// One call to the Messages API to send, and how it went.
pub fn twilio_request(outcome: TwilioOutcome, took: Duration) {
    metrics::with_recorder(|r| {
        r.register_counter(&TWILIO_KEYS[outcome as usize], &METADATA)
            .increment(1);
        r.register_histogram(&TWILIO_DURATION_KEY, &METADATA)
            .record(took.as_secs_f64());
    });
}

static SYNC_KEY: Key = Key::from_static_name(SYNC);

/// One call of `sync`.
pub fn sync_request() {
    metrics::with_recorder(|r| r.register_counter(&SYNC_KEY, &METADATA).increment(1));
}

/// Whether the request may read the metrics (and `/readyz`'s detail): anyone without
/// `METRICS_TOKEN`, else only with `Authorization: Bearer <METRICS_TOKEN>`. Compared as
/// digests, in constant time.
pub fn allowed(state: &AppState, headers: &HeaderMap) -> bool {
    let Some(expected) = &state.config.metrics_token else {
        return true;
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    let given = Sha256::digest(given.trim().as_bytes());
    let expected = Sha256::digest(expected.expose_secret().as_bytes());
    given.ct_eq(&expected).into()
}

/// `GET /metrics`.
async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if !allowed(&state, &headers) {
        return AppError::Unauthorized.into_response();
    }
    let Some(handle) = install() else {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    };
    let store = &state.services.store;
    let depth = store.queue_stats().await.ok().map(|queue| queue.depth);
    let sockets = state.runtime.connections.sockets();
    let (idle, busy) = store.pool_connections();
    // The gauges are the process's, and several servers may share the process (the tests'
    // do): each scrape sets them to its own server's figures and renders them before
    // another scrape may set them.
    static SCRAPE: Mutex<()> = Mutex::new(());
    let _scraping = SCRAPE.lock().unwrap_or_else(PoisonError::into_inner);
    process().collect();
    metrics::gauge!(SOCKETS).set(sockets as f64);
    if let Some(depth) = depth {
        metrics::gauge!(QUEUE_DEPTH).set(depth as f64);
    }
    metrics::gauge!(POOL, "state" => "idle").set(idle as f64);
    metrics::gauge!(POOL, "state" => "busy").set(busy as f64);
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], handle.render()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_follow_the_answer() {
        for (status, duplicate, outcome) in [
            (200, false, WebhookOutcome::Ok),
            (200, true, WebhookOutcome::Duplicate),
            (403, false, WebhookOutcome::Forbidden),
            (400, false, WebhookOutcome::BadRequest),
            (413, false, WebhookOutcome::BadRequest),
            (415, false, WebhookOutcome::BadRequest),
            (503, false, WebhookOutcome::Unavailable),
            (500, false, WebhookOutcome::Unavailable),
        ] {
            let status = StatusCode::from_u16(status).unwrap();
            assert_eq!(WebhookOutcome::of(status, duplicate), outcome, "{status}");
        }
    }

    #[test]
    fn keys_carry_their_labels() {
        let key = &WEBHOOK_KEYS[WebhookKind::Status as usize][WebhookOutcome::BadRequest as usize];
        assert_eq!(key.name(), WEBHOOKS);
        let labels: Vec<(&str, &str)> = key.labels().map(|l| (l.key(), l.value())).collect();
        assert_eq!(labels, [("kind", "status"), ("outcome", "bad_request")]);
        for (name, key) in &EVENT_KEYS {
            assert_eq!(key.labels().next().unwrap().value(), *name);
        }
    }
}
