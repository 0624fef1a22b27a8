//! Starting and stopping: [`Server::build`] binds the listener, connects the database and
//! builds the [`AppState`]; [`Server::run`] serves with the sending queue's workers and
//! housekeeping until the shutdown future resolves, then drains.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use secrecy::SecretString;
use socketioxide::adapter::Adapter;
use socketioxide::layer::SocketIoLayer;
use socketioxide::{SocketIo, SocketIoBuilder};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use url::Url;

use crate::auth::{LoginThrottle, PasswordHasher, SetupToken};
use crate::config::{DatabaseUrl, Settings, TwilioMode};
use crate::events::{Events, Redis, RedisAdapter};
use crate::realtime::{self, Connections, TypingStates, UnjoinedSessions};
use crate::send_queue::{self, SendOptions, SendQueue, StatusChecker, Worker};
use crate::store::{self, Store};
use crate::twilio::TwilioClient;
use crate::twilio::media::{MEDIA_LINK_PATH, MediaPolicy, is_public};
use crate::twilio::simulator::Simulator;
use crate::webhooks::StatusCallback;
use crate::{AppState, Config, Runtime, Services, build_router, housekeeping, serve};

/// How long draining may take after the shutdown signal before the server stops anyway.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest websocket or polling message a client may send, authenticated or not: ours
/// are small, and a larger one is refused before it is read whole.
const MAX_MESSAGE: usize = 64 * 1024;

/// A bound, wired server, ready to run.
pub struct Server {
    listener: TcpListener,
    router: Router,
    state: AppState,
    port: u16,
    session_check_period: Duration,
    snooze_check_period: Duration,
}

/// What `Server::build` decided, for the banner.
pub struct Started {
    pub port: u16,
    pub public_url: String,
    pub database: String,
    /// `REDIS_URL` without its password, when set.
    pub redis: Option<String>,
    pub simulated: bool,
    pub status_callbacks: bool,
    /// Whether Twilio can fetch the pictures of a message from `PUBLIC_URL`.
    pub media: bool,
    pub setup_url: Option<String>,
}

/// Connects the database `url` names (running migrations); the error names the setting.
pub async fn connect_store(url: &DatabaseUrl) -> anyhow::Result<Arc<Store>> {
    store::connect(url, Duration::from_secs(10))
        .await
        .map_err(|e| anyhow::anyhow!("DATABASE_URL: cannot use {} ({e:#})", url.redacted()))
}

async fn bind(host: IpAddr, port: u16) -> anyhow::Result<TcpListener> {
    let addr = SocketAddr::new(host, port);
    TcpListener::bind(addr).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::AddrInUse {
            anyhow::anyhow!(
                "PORT: {addr} is already in use (another smsdesk or dev server?). Stop it, or start with another port, e.g. PORT=3001 cargo run"
            )
        } else {
            anyhow::anyhow!("HOST/PORT: cannot listen on {addr}: {e}")
        }
    })
}

/// Whether Twilio could not reach `url`: a local name (`localhost`, mDNS's `.local`), or an
/// address that is not public (loopback, private ranges, link-local…).
fn is_local(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            d == "localhost" || d.ends_with(".localhost") || d.ends_with(".local")
        }
        Some(url::Host::Ipv4(ip)) => !is_public(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => !is_public(IpAddr::V6(ip)),
        None => true,
    }
}

/// The address this process reaches itself at, for the simulator's Messages API.
fn loopback(host: IpAddr) -> String {
    match host {
        IpAddr::V4(ip) if ip.is_unspecified() => "127.0.0.1".to_owned(),
        IpAddr::V6(ip) if ip.is_unspecified() => "[::1]".to_owned(),
        IpAddr::V6(ip) => format!("[{ip}]"),
        ip => ip.to_string(),
    }
}

/// Who plays Twilio, and how sends ask it for status callbacks.
struct Twilio {
    client: TwilioClient,
    simulator: Option<Arc<Simulator>>,
    sending: SendOptions,
}

fn twilio(settings: &Settings, public: &Url, self_base: &str) -> Twilio {
    let public_url = public.as_str().trim_end_matches('/');
    let status_callback = StatusCallback::new(public_url);
    let media_base = format!("{public_url}{MEDIA_LINK_PATH}");
    let status_checks = settings.status_checks.clone();
    match &settings.twilio {
        TwilioMode::Live(live) => Twilio {
            client: TwilioClient::new(
                live.api_base.as_str(),
                &live.account_sid,
                live.auth_token.clone(),
            ),
            simulator: None,
            sending: SendOptions {
                messaging_service_sid: live.messaging_service_sid.clone(),
                status_callback: (!is_local(public)).then_some(status_callback),
                status_checks,
                media_base: (!is_local(public)).then_some(media_base),
            },
        },
        TwilioMode::Simulated => {
            let sim = Arc::new(Simulator::new());
            let client = TwilioClient::new(
                &format!("{self_base}/dev/twilio"),
                &sim.account_sid,
                SecretString::from(sim.auth_token.clone()),
            )
            .with_media_policy(MediaPolicy::PublicAddresses);
            Twilio {
                client,
                simulator: Some(sim),
                sending: SendOptions {
                    messaging_service_sid: None,
                    status_callback: Some(status_callback),
                    status_checks,
                    media_base: Some(media_base),
                },
            }
        }
    }
}

fn socket_io() -> SocketIoBuilder {
    SocketIo::builder()
        .connect_timeout(realtime::CONNECT_TIMEOUT)
        .max_payload(MAX_MESSAGE as u64)
        // A frame's header gives its length: one over the limit closes the connection before
        // its payload is read. (engineioxide's defaults are 16 MiB a frame, 64 MiB a message.)
        .ws_max_frame_size(MAX_MESSAGE)
        .ws_max_message_size(MAX_MESSAGE)
        .ping_interval(Duration::from_secs(20))
        .ping_timeout(Duration::from_secs(20))
        // Held by every idle socket; our inbound events are small, so a few reads more for a
        // large frame cost less than the memory.
        .ws_read_buffer_size(256)
        .max_buffer_size(1024)
}

/// The routes with socket.io and, in front of it, the handshake limits.
fn router<A: Adapter>(
    state: &AppState,
    layer: SocketIoLayer<A>,
    unjoined: Arc<UnjoinedSessions>,
) -> Router {
    // In front of socket.io, so a handshake over the limit never opens a session.
    let handshakes = axum::middleware::from_fn_with_state(unjoined, realtime::admit_handshakes);
    build_router(state.clone())
        .layer(layer)
        .layer(axum::middleware::from_fn(realtime::detach_request_head))
        .layer(handshakes)
}

impl Server {
    /// Binds the listener, connects the database (running migrations), and wires the app.
    pub async fn build(settings: Settings) -> anyhow::Result<(Self, Started)> {
        crate::monitoring::install();
        let listener = bind(settings.host, settings.port).await?;
        let port = listener.local_addr()?.port();
        let store = connect_store(&settings.database_url).await?;
        let redis = settings.redis_url.as_ref().map(Redis::new).transpose()?;

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
        let self_base = format!("http://{}:{port}", loopback(settings.host));
        let twilio = twilio(&settings, &public, &self_base);
        let setup_token = SetupToken::new(store.count_agents().await? == 0);
        let setup_url = setup_token
            .get()
            .map(|t| format!("http://localhost:{port}/setup?token={t}"));
        let started = Started {
            port,
            public_url: public_url.clone(),
            database: format!("{} ({})", store.backend(), settings.database_url.redacted()),
            redis: settings.redis_url.as_ref().map(|u| u.redacted()),
            simulated: twilio.simulator.is_some(),
            status_callbacks: twilio.sending.status_callback.is_some(),
            media: twilio.sending.media_base.is_some(),
            setup_url,
        };

        let login_throttle = LoginThrottle::new(store.clone());
        let state = |events| {
            AppState::new(
                Config {
                    public_url,
                    allowed_origins,
                    secure_cookies: public.scheme() == "https",
                    trusted_proxies: settings.trusted_proxies.clone(),
                    sending: twilio.sending,
                    metrics_token: settings.metrics_token.clone(),
                },
                Services {
                    store,
                    events,
                    twilio: twilio.client,
                    simulator: twilio.simulator,
                    hasher: PasswordHasher::for_this_machine(),
                },
                Runtime {
                    setup_token,
                    login_throttle,
                    connections: Connections::new(settings.max_sockets_per_agent),
                    typing: TypingStates::default(),
                    send_queue: SendQueue::new(settings.send_rate_per_number, settings.send_lease),
                    shutdown: CancellationToken::new(),
                },
            )
        };
        let unjoined = UnjoinedSessions::new(
            settings.max_unconnected_sessions,
            settings.max_unconnected_per_address,
            settings.trusted_proxies.clone(),
        );
        let (state, router) = match redis {
            None => {
                let (layer, io) = socket_io().build_layer();
                let state = state(Events::in_memory(io.clone()));
                realtime::attach(&io, state.clone());
                let router = router(&state, layer, unjoined);
                (state, router)
            }
            Some(redis) => {
                let (layer, io) = socket_io()
                    .with_adapter::<RedisAdapter<_>>(redis.adapter())
                    .build_layer();
                let state = state(Events::through_redis(io.clone(), redis.clone()));
                // The adapter only records its channels here; they are subscribed once
                // connected, now or whenever Redis answers.
                realtime::attach(&io, state.clone())
                    .await
                    .map_err(|e| anyhow::anyhow!("REDIS_URL: cannot subscribe ({e})"))?;
                redis.connect().await;
                let router = router(&state, layer, unjoined);
                (state, router)
            }
        };
        let server = Self {
            listener,
            router,
            state,
            port,
            session_check_period: settings.session_check_period,
            snooze_check_period: settings.snooze_check_period,
        };
        Ok((server, started))
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` resolves, then lets requests in flight finish, stops the
    /// sending queue between two messages and, once it has stopped (a send it finishes
    /// still reaches the pages), closes the sockets.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let state = self.state;
        let workers = TaskTracker::new();
        let worker = Arc::new(Worker::new(&state));
        for _ in 0..send_queue::WORKERS {
            workers.spawn(worker.clone().run());
        }
        // The status checker publishes like the workers: it too stops before the sockets close.
        workers.spawn(StatusChecker::new(&state).run());
        workers.close();
        let chores = TaskTracker::new();
        chores.spawn(housekeeping::run(state.clone()));
        chores.spawn(housekeeping::check_sessions(
            state.clone(),
            self.session_check_period,
        ));
        chores.spawn(housekeeping::wake_snoozed(
            state.clone(),
            self.snooze_check_period,
        ));
        chores.spawn(housekeeping::fold_counts(state.clone()));
        chores.spawn(housekeeping::give_back_memory(state.clone()));
        chores.close();

        let token = state.runtime.shutdown.clone();
        let signal = async move {
            shutdown.await;
            tracing::info!("shutting down: finishing requests and sends, then closing sockets");
            token.cancel();
        };
        let token = state.runtime.shutdown.clone();
        let events = state.services.events.clone();
        let close_sockets = async {
            token.cancelled().await;
            workers.wait().await;
            events.close().await;
        };
        let drained = async {
            tokio::join!(
                serve::serve(self.listener, self.router, signal),
                close_sockets
            );
            chores.wait().await;
        };
        let token = state.runtime.shutdown.clone();
        tokio::select! {
            () = drained => {}
            _ = async { token.cancelled().await; tokio::time::sleep(DRAIN_TIMEOUT).await } => {
                tracing::warn!("shutdown took over 10 s; stopping anyway");
            }
        }
        tracing::info!("stopped");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_public_url_is_reachable_by_twilio() {
        let local = |u: &str| is_local(&u.parse().unwrap());
        for inside in [
            "http://localhost:3000",
            "http://app.localhost",
            "http://desk.local",
            "http://DESK.LOCAL./",
            "http://127.0.0.1:3000",
            "http://10.0.0.5",
            "http://172.20.1.1",
            "http://192.168.1.20:3000",
            "http://169.254.1.1",
            "http://100.64.0.1",
            "http://[::1]:3000",
            "http://[fd00::1]",
            "http://[fe80::1]",
            "http://0.0.0.0",
        ] {
            assert!(local(inside), "{inside}");
        }
        for public in [
            "https://abc123.ngrok-free.app",
            "https://smsdesk.example.com",
            "http://8.8.8.8",
            "http://[2606:4700::1111]",
            "https://local.example.com",
        ] {
            assert!(!local(public), "{public}");
        }
    }
}
