//! smsdesk: a real-time SMS inbox. Twilio posts webhooks, the server stores every message
//! once, and pushes it to the agents' browsers over socket.io.
//!
//! This file wires: the modules, the [`AppState`] handlers share, and the routes.
//! [`Server::build`] (in [`startup`]) binds the listener and builds the state;
//! [`Server::run`] serves until the shutdown future resolves. Tests start the real server
//! the same way on port 0.

pub mod api;
pub mod auth;
pub mod banner;
pub mod cli;
pub mod config;
pub mod domain;
pub mod error;
pub mod events;
pub mod housekeeping;
pub mod model;
pub mod monitoring;
pub mod pages;
pub mod realtime;
pub mod send_queue;
pub mod serve;
pub mod sms;
pub mod startup;
pub mod store;
pub mod text;
pub mod twilio;
pub mod webhooks;

pub use startup::{Server, Started};

use std::ops::Deref;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use tokio_util::sync::CancellationToken;
use tower_http::trace::TraceLayer;

use crate::auth::{LoginThrottle, PasswordHasher, SetupToken};
use crate::config::TrustedProxies;
use crate::events::Events;
use crate::realtime::{Connections, TypingStates};
use crate::send_queue::{SendOptions, SendQueue};
use crate::store::Store;
use crate::twilio::TwilioClient;
use crate::twilio::simulator::Simulator;

/// Requests larger than this are refused with `413`.
pub const BODY_LIMIT: usize = 256 * 1024;

/// Everything a handler needs, cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Parts>);

/// What the state is made of, by what it is.
pub struct Parts {
    pub config: Config,
    pub services: Services,
    pub runtime: Runtime,
}

/// Settings decided at start and never changed.
pub struct Config {
    /// `PUBLIC_URL` without a trailing slash.
    pub public_url: String,
    /// The `Origin`s a cookie-carried request may come from.
    pub allowed_origins: Vec<String>,
    pub secure_cookies: bool,
    pub trusted_proxies: TrustedProxies,
    /// How the sending queue asks Twilio to send.
    pub sending: SendOptions,
    /// `METRICS_TOKEN`: set, `/metrics` wants it as a Bearer token.
    pub metrics_token: Option<secrecy::SecretString>,
}

/// What the server talks to.
pub struct Services {
    pub store: Arc<Store>,
    /// Everything pushed to the agents goes out through it (and, at shutdown, their sockets
    /// are closed through it).
    pub events: Events,
    pub twilio: TwilioClient,
    pub simulator: Option<Arc<Simulator>>,
    /// Every password hash and check goes through it.
    pub hasher: PasswordHasher,
}

/// What changes while the server runs.
pub struct Runtime {
    pub setup_token: SetupToken,
    pub login_throttle: LoginThrottle,
    /// The sockets connected here, per agent and by session expiry.
    pub connections: Arc<Connections>,
    pub typing: TypingStates,
    /// Wakes the sending queue's workers, and paces their sends per number.
    pub send_queue: Arc<SendQueue>,
    pub shutdown: CancellationToken,
}

impl AppState {
    pub fn new(config: Config, services: Services, runtime: Runtime) -> Self {
        Self(Arc::new(Parts {
            config,
            services,
            runtime,
        }))
    }
}

impl Deref for AppState {
    type Target = Parts;
    fn deref(&self) -> &Parts {
        &self.0
    }
}

/// The routes; a pure function of the state. `/dev/*` exists only with the simulator.
pub fn build_router(state: AppState) -> Router {
    let mut router = Router::new()
        .merge(api::router())
        .merge(webhooks::router())
        .merge(monitoring::router())
        .merge(pages::router());
    if let Some(sim) = &state.services.simulator {
        router = router.merge(api::dev::router(sim.clone()));
    }
    router
        .fallback(pages::fallback)
        .with_state(state)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::from_fn(pages::security_headers))
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
}

/// A span per request named by its route, not its URL: ids and tokens in paths and
/// queries stay out of the logs.
fn request_span(request: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or("unmatched", |p| p.as_str());
    tracing::info_span!("request", method = %request.method(), route)
}
