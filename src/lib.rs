//! smsdesk: a real-time SMS inbox. Twilio posts webhooks, the server stores every message
//! once, and pushes it to the agents' browsers over socket.io.
//!
//! [`Server::build`] binds the listener and wires everything; [`Server::run`] serves until
//! the shutdown future resolves. Tests start the real server the same way on port 0.

pub mod api;
pub mod auth;
pub mod cli;
pub mod config;
pub mod error;
pub mod events;
pub mod model;
pub mod outbox;
pub mod pages;
pub mod realtime;
pub mod serve;
pub mod sms;
pub mod store;
pub mod text;
pub mod twilio;
pub mod webhooks;

use std::future::Future;
use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use secrecy::SecretString;
use socketioxide::SocketIo;
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_http::trace::TraceLayer;

use crate::auth::{LoginThrottle, PasswordHasher};
use crate::config::{Settings, TrustedProxies, TwilioMode};
use crate::events::Events;
use crate::realtime::{Connections, TypingStates, UnjoinedSessions};
use crate::store::Store;
use crate::twilio::TwilioClient;
use crate::twilio::simulator::Simulator;

/// Requests larger than this are refused with `413`.
pub const BODY_LIMIT: usize = 256 * 1024;

/// Everything a handler needs, cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub store: Arc<Store>,
    /// The socket.io server: its namespace and, at shutdown, its sockets.
    pub io: SocketIo,
    /// Everything pushed to the agents goes out through it.
    pub events: Events,
    pub twilio: TwilioClient,
    pub simulator: Option<Arc<Simulator>>,
    /// `PUBLIC_URL` without a trailing slash.
    pub public_url: String,
    pub allowed_origins: Vec<String>,
    pub secure_cookies: bool,
    pub messaging_service_sid: Option<String>,
    /// Whether `StatusCallback` is sent (not in live mode with a localhost `PUBLIC_URL`).
    pub status_callbacks: bool,
    /// Wakes the sending queue's workers.
    pub outbox: Notify,
    pub setup_token: Mutex<Option<String>>,
    pub login_throttle: LoginThrottle,
    /// Every password hash and check goes through it.
    pub hasher: PasswordHasher,
    pub trusted_proxies: TrustedProxies,
    /// The sockets connected here, per agent and by session expiry.
    pub connections: Arc<Connections>,
    /// Per-number pacing of sends, when `SEND_RATE_PER_NUMBER` is set.
    pub pacer: Option<outbox::Pacer>,
    pub typing: TypingStates,
    pub shutdown: CancellationToken,
}

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    pub fn setup_token_matches(&self, candidate: &str) -> bool {
        let token = self.setup_token.lock().unwrap_or_else(|p| p.into_inner());
        token
            .as_deref()
            .is_some_and(|t| bool::from(t.as_bytes().ct_eq(candidate.as_bytes())))
    }

    pub fn consume_setup_token(&self) {
        *self.setup_token.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// Takes the setup token if `candidate` is it: of concurrent requests, one gets it.
    pub fn take_setup_token(&self, candidate: &str) -> bool {
        let mut token = self.setup_token.lock().unwrap_or_else(|p| p.into_inner());
        let matches = token
            .as_deref()
            .is_some_and(|t| bool::from(t.as_bytes().ct_eq(candidate.as_bytes())));
        if matches {
            *token = None;
        }
        matches
    }

    /// Puts a taken token back, when setup failed on our side.
    pub fn restore_setup_token(&self, token: String) {
        self.setup_token
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert(token);
    }

    /// Whether the setup link with `candidate` may still be used: the token matches and no
    /// agent exists, wherever it was made. Once one does, the token dies.
    pub async fn setup_open(&self, candidate: &str) -> bool {
        if !self.setup_token_matches(candidate) {
            return false;
        }
        match self.store.count_agents().await {
            Ok(0) => true,
            Ok(_) => {
                self.consume_setup_token();
                false
            }
            Err(_) => false,
        }
    }
}

/// The routes; a pure function of the state.
pub fn build_router(state: AppState) -> Router {
    let sms = Router::new()
        .route(
            "/conversations",
            get(api::list_conversations).post(api::open_conversation),
        )
        .route("/conversations/{id}/messages", get(api::list_messages))
        .route("/conversations/{id}/read", post(api::mark_read))
        .route("/send", post(api::send))
        .route("/messages/{id}/retry", post(api::retry))
        .route("/messages/{id}/media/{n}", get(api::media))
        .route("/sync", get(api::sync))
        .route(
            "/webhook",
            post(webhooks::inbound).get(webhooks::inbound_info),
        )
        .route(
            "/status-webhook",
            post(webhooks::status).get(webhooks::status_info),
        );
    let mut router = Router::new()
        .nest("/api/crm/sms", sms)
        .route("/api/setup", post(api::setup))
        .route("/api/auth/login", post(api::login))
        .route("/api/auth/logout", post(api::logout))
        .route("/api/auth/me", get(api::me))
        .route("/healthz", get(api::healthz))
        .route("/readyz", get(api::readyz))
        .route("/", get(pages::root))
        .route("/login", get(pages::login))
        .route("/setup", get(pages::setup))
        .route("/agent/messages", get(pages::messages));
    if let Some(sim) = &state.simulator {
        router = router
            .route("/dev/simulate/inbound", post(api::simulate_inbound))
            .merge(twilio::simulator::router_for(sim.clone()));
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

/// A bound, wired server, ready to run.
pub struct Server {
    listener: TcpListener,
    router: Router,
    state: AppState,
    port: u16,
}

/// What `Server::build` decided, for the banner.
pub struct Started {
    pub port: u16,
    pub public_url: String,
    pub database: String,
    pub simulated: bool,
    pub status_callbacks: bool,
    pub setup_url: Option<String>,
}

fn is_local(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost" || d.ends_with(".localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback() || ip.is_private() || ip.is_unspecified(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback() || ip.is_unspecified(),
        None => true,
    }
}

impl Server {
    /// Binds the listener, connects the database (running migrations), and wires the app.
    pub async fn build(settings: Settings) -> anyhow::Result<(Self, Started)> {
        let addr = SocketAddr::new(settings.host, settings.port);
        let listener = TcpListener::bind(addr).await.map_err(|e| {
            if e.kind() == std::io::ErrorKind::AddrInUse {
                anyhow::anyhow!(
                    "PORT: {addr} is already in use (another smsdesk or dev server?). Stop it, or start with another port, e.g. PORT=3001 cargo run"
                )
            } else {
                anyhow::anyhow!("HOST/PORT: cannot listen on {addr}: {e}")
            }
        })?;
        let port = listener.local_addr()?.port();
        let store = store::connect(&settings.database_url, Duration::from_secs(10))
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "DATABASE_URL: cannot use {} ({e:#})",
                    settings.database_url.redacted()
                )
            })?;

        let public = settings.public_url.clone().unwrap_or_else(|| {
            format!("http://localhost:{port}")
                .parse()
                .expect("a valid URL")
        });
        let public_url = public.as_str().trim_end_matches('/').to_owned();
        let mut allowed_origins = vec![
            public.origin().ascii_serialization(),
            format!("http://localhost:{port}"),
            format!("http://127.0.0.1:{port}"),
        ];
        allowed_origins.dedup();

        let loopback = match settings.host {
            std::net::IpAddr::V4(ip) if ip.is_unspecified() => "127.0.0.1".to_owned(),
            std::net::IpAddr::V6(ip) if ip.is_unspecified() => "[::1]".to_owned(),
            std::net::IpAddr::V6(ip) => format!("[{ip}]"),
            ip => ip.to_string(),
        };
        let (twilio, simulator, messaging_service_sid, status_callbacks) = match &settings.twilio {
            TwilioMode::Live(live) => (
                TwilioClient::new(
                    live.api_base.as_str(),
                    &live.account_sid,
                    live.auth_token.clone(),
                ),
                None,
                live.messaging_service_sid.clone(),
                !is_local(&public),
            ),
            TwilioMode::Simulated => {
                let sim = Arc::new(Simulator::new());
                let client = TwilioClient::new(
                    &format!("http://{loopback}:{port}/dev/twilio"),
                    &sim.account_sid,
                    SecretString::from(sim.auth_token.clone()),
                )
                .with_media_policy(twilio::media::MediaPolicy::PublicAddresses);
                (client, Some(sim), None, true)
            }
        };

        let setup_token = if store.count_agents().await? == 0 {
            Some(format!("{:032x}", rand::random::<u128>()))
        } else {
            None
        };
        let setup_url = setup_token
            .as_ref()
            .map(|t| format!("http://localhost:{port}/setup?token={t}"));

        let (layer, io) = SocketIo::builder()
            .connect_timeout(realtime::CONNECT_TIMEOUT)
            .max_payload(64 * 1024)
            .ping_interval(Duration::from_secs(20))
            .ping_timeout(Duration::from_secs(20))
            .ws_read_buffer_size(1024)
            .max_buffer_size(1024)
            .build_layer();
        let state = AppState(Arc::new(Inner {
            store,
            io: io.clone(),
            events: Events::new(io.clone()),
            twilio,
            simulator,
            secure_cookies: public.scheme() == "https",
            public_url: public_url.clone(),
            allowed_origins,
            messaging_service_sid,
            status_callbacks,
            outbox: Notify::new(),
            setup_token: Mutex::new(setup_token),
            login_throttle: LoginThrottle::default(),
            hasher: PasswordHasher::for_this_machine(),
            trusted_proxies: settings.trusted_proxies.clone(),
            connections: Connections::new(settings.max_sockets_per_agent),
            pacer: settings.send_rate_per_number.map(outbox::Pacer::new),
            typing: TypingStates::default(),
            shutdown: CancellationToken::new(),
        }));
        realtime::attach(&io, state.clone());
        // In front of socket.io, so a handshake over the limit never opens a session.
        let handshakes = axum::middleware::from_fn_with_state(
            UnjoinedSessions::new(settings.max_unconnected_sessions),
            realtime::admit_handshakes,
        );
        let router = build_router(state.clone()).layer(layer).layer(handshakes);
        let started = Started {
            port,
            public_url,
            database: format!(
                "{} ({})",
                state.store.backend(),
                settings.database_url.redacted()
            ),
            simulated: state.simulator.is_some(),
            status_callbacks,
            setup_url,
        };
        Ok((
            Self {
                listener,
                router,
                state,
                port,
            },
            started,
        ))
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` resolves, then lets requests in flight finish, closes the
    /// sockets and stops the sending queue between two messages.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let state = self.state;
        let workers = TaskTracker::new();
        for _ in 0..outbox::WORKERS {
            workers.spawn(outbox::worker(state.clone()));
        }
        workers.spawn(outbox::housekeeping(state.clone()));
        workers.close();

        let token = state.shutdown.clone();
        let io = state.io.clone();
        let signal = async move {
            shutdown.await;
            tracing::info!("shutting down: finishing requests, closing sockets");
            token.cancel();
            io.close().await;
        };
        let drained = async {
            serve::serve(self.listener, self.router, signal).await;
            workers.wait().await;
        };
        let token = state.shutdown.clone();
        tokio::select! {
            () = drained => {}
            _ = async { token.cancelled().await; tokio::time::sleep(Duration::from_secs(10)).await } => {
                tracing::warn!("shutdown took over 10 s; stopping anyway");
            }
        }
        tracing::info!("stopped");
        Ok(())
    }
}

/// The start-up banner of the seed, then what this instance is using.
pub fn banner(s: &Started) -> String {
    // Emoji take two terminal columns.
    let columns =
        |t: &str| -> usize { t.chars().map(|c| if c > '\u{1F000}' { 2 } else { 1 }).sum() };
    let local = format!("http://localhost:{}", s.port);
    let line = format!("   ➜ Local:    {local}");
    let width = 39.max(columns(&line) + 2);
    let pad = |t: &str| format!("║{t}{}║", " ".repeat(width.saturating_sub(columns(t))));
    let mut out = String::new();
    out.push_str(&format!("╔{}╗\n", "═".repeat(width)));
    out.push_str(&pad("   🚀 Server ready!"));
    out.push('\n');
    out.push_str(&pad(&line));
    out.push('\n');
    out.push_str(&pad("   📡 Socket.io: Enabled"));
    out.push('\n');
    out.push_str(&format!("╚{}╝\n\n", "═".repeat(width)));
    out.push_str("[Socket.io] 🚀 Server initialized\n");
    out.push_str(&format!("Database:   {}\n", s.database));
    out.push_str(&format!(
        "Twilio:     {}\n",
        if s.simulated {
            "simulated (no TWILIO_ACCOUNT_SID/TWILIO_AUTH_TOKEN: messages go to the built-in simulator)"
        } else {
            "live"
        }
    ));
    out.push_str(&format!("Public URL: {}\n", s.public_url));
    out.push_str("Paste into Twilio (Phone Numbers → your number → Messaging):\n");
    out.push_str(&format!(
        "  A message comes in:  {}/api/crm/sms/webhook\n",
        s.public_url
    ));
    out.push_str(&format!(
        "  Status callback URL: {}/api/crm/sms/status-webhook\n",
        s.public_url
    ));
    if !s.status_callbacks {
        out.push_str(
            "Note: PUBLIC_URL is not reachable by Twilio, so messages are sent without a StatusCallback and \
             their status will not update until PUBLIC_URL is public (e.g. an ngrok URL).\n",
        );
    }
    if let Some(url) = &s.setup_url {
        out.push_str(&format!(
            "\nNo agent yet. Create the first one here (link valid until restart):\n  {url}\n"
        ));
    }
    out
}
