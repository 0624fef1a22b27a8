//! Test harness: the real server on a random port against a fresh database (SQLite, or
//! PostgreSQL when `TEST_DATABASE_URL` is set), a socket.io client, a signed-webhook poster,
//! and a fake Twilio that is a real HTTP server on loopback.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use futures_util::FutureExt;
use rust_socketio::asynchronous::{Client, ClientBuilder};
use rust_socketio::{Event, Payload};
use serde_json::{Value, json};
use smsdesk::config::Settings;
use smsdesk::twilio::signature::sign;
use tokio::sync::{mpsc, oneshot};

pub const WAIT: Duration = Duration::from_secs(10);
/// In fake-Twilio mode the server believes it is reachable here, as behind ngrok.
pub const PUBLIC_URL: &str = "https://smsdesk.test";
/// A `PUBLIC_URL` with an explicit port, which Twilio may leave out when it signs.
pub const PUBLIC_URL_WITH_PORT: &str = "https://smsdesk.test:8443";
pub const FAKE_ACCOUNT: &str = "ACfeedfacefeedfacefeedfacefeedface";
pub const FAKE_TOKEN: &str = "fake-auth-token";

#[derive(Clone, Copy, Debug)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// No credentials: the built-in simulator.
    Simulator,
    /// Live mode against [`FakeTwilio`], with a public `PUBLIC_URL`.
    FakeTwilio,
    /// Live mode against [`FakeTwilio`] with the default, localhost `PUBLIC_URL`.
    FakeTwilioLocal,
    /// As `FakeTwilio`, with `SEND_RATE_PER_NUMBER=5`.
    FakeTwilioPaced,
    /// As `FakeTwilio`, but the fake answers only after `FakeTwilio::come_up`.
    TwilioDown,
    /// As `FakeTwilio`, with [`PUBLIC_URL_WITH_PORT`] as `PUBLIC_URL`.
    PublicUrlWithPort,
    /// The simulator behind a trusted proxy (`TRUSTED_PROXIES=127.0.0.1`, so tests choose
    /// their client address with `X-Forwarded-For`), with small limits:
    /// `MAX_SOCKETS_PER_AGENT=3` and [`UNCONNECTED_SESSIONS`] engine.io sessions.
    Limits,
}

/// How many engine.io sessions not yet connected to the namespace `Mode::Limits` allows.
pub const UNCONNECTED_SESSIONS: usize = 5;

pub fn init_logs() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_default_env()
                        .unwrap_or_else(|_| "info".into()),
                )
                .with_test_writer()
                .try_init();
        }
    });
}

/// Runs `test` against a fresh server on `backend`; the database is dropped afterwards.
pub async fn run<F, Fut>(backend: Backend, mode: Mode, test: F)
where
    F: FnOnce(TestApp) -> Fut,
    Fut: Future<Output = ()>,
{
    init_logs();
    let dir = tempfile::tempdir().expect("a temp dir");
    let (database_url, pg) = match backend {
        Backend::Sqlite => (
            format!("sqlite://{}", dir.path().join("smsdesk.db").display()),
            None,
        ),
        Backend::Postgres => {
            let Ok(admin) = std::env::var("TEST_DATABASE_URL") else {
                eprintln!(
                    "skipped: TEST_DATABASE_URL is not set, so PostgreSQL is not tested here"
                );
                return;
            };
            let db = PgDatabase::create(&admin).await;
            (db.url.clone(), Some(db))
        }
    };
    let app = TestApp::spawn(&database_url, mode).await;
    let outcome = AssertUnwindSafe(test(app)).catch_unwind().await;
    if let Some(db) = pg {
        db.drop().await;
    }
    drop(dir);
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// Declares `mod NAME { fn sqlite(); fn postgres(); }` for each `NAME: Mode`.
#[macro_export]
macro_rules! on_both_backends {
    ($($test:ident : $mode:ident),* $(,)?) => { $(
        mod $test {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                $crate::helpers::run($crate::helpers::Backend::Sqlite, $crate::helpers::Mode::$mode, super::$test).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                $crate::helpers::run($crate::helpers::Backend::Postgres, $crate::helpers::Mode::$mode, super::$test).await
            }
        }
    )* };
}

/// A fresh PostgreSQL database, dropped by [`PgDatabase::drop`].
pub struct PgDatabase {
    admin: String,
    name: String,
    pub url: String,
}

impl PgDatabase {
    pub async fn create(admin: &str) -> Self {
        use sqlx::Connection;
        let name = format!("smsdesk_test_{:016x}", rand::random::<u64>());
        let mut conn = sqlx::PgConnection::connect(admin)
            .await
            .expect("TEST_DATABASE_URL must reach PostgreSQL");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&mut conn)
            .await
            .expect("create the test database");
        let mut url = url::Url::parse(admin).expect("TEST_DATABASE_URL is a URL");
        url.set_path(&name);
        Self {
            admin: admin.to_owned(),
            name,
            url: url.to_string(),
        }
    }

    pub async fn drop(self) {
        use sqlx::Connection;
        if let Ok(mut conn) = sqlx::PgConnection::connect(&self.admin).await {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                self.name
            )))
            .execute(&mut conn)
            .await;
        }
    }
}

pub struct TestApp {
    pub addr: String,
    pub port: u16,
    pub http: reqwest::Client,
    /// The token Twilio (real or simulated) signs with.
    pub twilio_token: String,
    pub public_url: String,
    /// The one-time setup link printed at start (there is no agent yet).
    pub setup_url: Option<String>,
    pub fake: Option<FakeTwilio>,
    pub store: Arc<smsdesk::store::Store>,
    pub database_url: String,
    pub simulator: Option<Arc<smsdesk::twilio::simulator::Simulator>>,
    pub state: smsdesk::AppState,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

/// A signed-in agent.
#[derive(Clone, Debug)]
pub struct Agent {
    pub id: String,
    pub token: String,
}

impl TestApp {
    /// Starts the real server on a random port against `database_url`.
    pub async fn spawn(database_url: &str, mode: Mode) -> Self {
        let fake = match mode {
            Mode::FakeTwilio
            | Mode::FakeTwilioLocal
            | Mode::FakeTwilioPaced
            | Mode::PublicUrlWithPort => Some(FakeTwilio::start().await),
            Mode::TwilioDown => Some(FakeTwilio::reserve()),
            Mode::Simulator | Mode::Limits => None,
        };
        let mut env: HashMap<&str, String> = HashMap::from([
            ("PORT", "0".to_string()),
            ("DATABASE_URL", database_url.to_string()),
        ]);
        if let Some(f) = &fake {
            env.insert("TWILIO_ACCOUNT_SID", FAKE_ACCOUNT.into());
            env.insert("TWILIO_AUTH_TOKEN", FAKE_TOKEN.into());
            env.insert("TWILIO_API_BASE", f.url.clone());
            match mode {
                Mode::FakeTwilioLocal => {}
                Mode::PublicUrlWithPort => {
                    env.insert("PUBLIC_URL", PUBLIC_URL_WITH_PORT.into());
                }
                _ => {
                    env.insert("PUBLIC_URL", PUBLIC_URL.into());
                }
            }
            if mode == Mode::FakeTwilioPaced {
                env.insert("SEND_RATE_PER_NUMBER", "5".into());
            }
        }
        if mode == Mode::Limits {
            env.insert("TRUSTED_PROXIES", "127.0.0.1".into());
            env.insert("MAX_SOCKETS_PER_AGENT", "3".into());
        }
        let mut settings = Settings::from_lookup(|k| env.get(k).cloned()).expect("valid settings");
        if mode == Mode::Limits {
            settings.max_unconnected_sessions = UNCONNECTED_SESSIONS;
        }
        let (server, started) = smsdesk::Server::build(settings)
            .await
            .expect("server starts");
        let port = server.port();
        let addr = format!("http://127.0.0.1:{port}");
        let twilio_token = server.state().twilio.auth_token().to_owned();
        let store = server.state().store.clone();
        let simulator = server.state().simulator.clone();
        let state = server.state().clone();
        if let Some(f) = &fake {
            let _ = f.state.app_addr.set(addr.clone());
        }
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(server.run(async move {
            let _ = rx.await;
        }));
        Self {
            addr,
            port,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            twilio_token,
            public_url: started.public_url,
            setup_url: started.setup_url,
            fake,
            store,
            database_url: database_url.to_owned(),
            simulator,
            state,
            shutdown: Some(tx),
            server: Some(handle),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.addr)
    }

    pub fn origin(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Stops the server as SIGTERM would and waits for it.
    pub async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.server.take() {
            tokio::time::timeout(Duration::from_secs(15), h)
                .await
                .expect("the server stops within 15 s")
                .expect("the server task did not panic")
                .expect("the server stopped cleanly");
        }
    }

    /// Creates an agent through the store and signs them in over HTTP.
    pub async fn agent(&self, email: &str, numbers: &[&str]) -> Agent {
        let hash = smsdesk::auth::hash_password("password123").unwrap();
        let numbers: Vec<String> = numbers.iter().map(|n| n.to_string()).collect();
        self.store
            .create_agent(email, email, &hash, &numbers)
            .await
            .unwrap()
            .expect("a new email");
        let (status, body) = self
            .post_json(
                "/api/auth/login",
                None,
                json!({"email": email, "password": "password123"}),
            )
            .await;
        assert_eq!(status, 200, "login: {body}");
        Agent {
            id: body["agent"]["id"].as_str().unwrap().to_owned(),
            token: body["token"].as_str().unwrap().to_owned(),
        }
    }

    pub async fn get(&self, path: &str, agent: Option<&Agent>) -> (u16, Value) {
        let mut req = self.http.get(self.url(path));
        if let Some(a) = agent {
            req = req.bearer_auth(&a.token);
        }
        read(req.send().await.unwrap()).await
    }

    pub async fn post_json(&self, path: &str, agent: Option<&Agent>, body: Value) -> (u16, Value) {
        let mut req = self.http.post(self.url(path)).json(&body);
        if let Some(a) = agent {
            req = req.bearer_auth(&a.token);
        }
        read(req.send().await.unwrap()).await
    }

    /// Posts a webhook signed as Twilio would for `PUBLIC_URL` + `path`.
    pub async fn post_webhook(&self, path: &str, params: &[(&str, &str)]) -> reqwest::Response {
        let params: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let signature = sign(
            &self.twilio_token,
            &format!("{}{path}", self.public_url),
            &params,
        );
        self.http
            .post(self.url(path))
            .header("X-Twilio-Signature", signature)
            .form(&params)
            .send()
            .await
            .unwrap()
    }

    /// An inbound SMS from `from` to `to`; returns its `MessageSid`.
    pub async fn inbound(&self, from: &str, to: &str, body: &str) -> String {
        let sid = new_sid();
        let r = self
            .post_webhook(
                "/api/crm/sms/webhook",
                &[
                    ("MessageSid", &sid),
                    ("AccountSid", FAKE_ACCOUNT),
                    ("From", from),
                    ("To", to),
                    ("Body", body),
                    ("NumMedia", "0"),
                ],
            )
            .await;
        assert_eq!(r.status(), 200, "webhook: {}", r.text().await.unwrap());
        sid
    }

    /// Opens a conversation of `agent` with `phone` and returns its id.
    pub async fn conversation(&self, agent: &Agent, phone: &str) -> String {
        let (status, body) = self
            .post_json(
                "/api/crm/sms/conversations",
                Some(agent),
                json!({"phone": phone}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["id"].as_str().unwrap().to_owned()
    }

    pub async fn send(
        &self,
        agent: &Agent,
        conversation: &str,
        body: &str,
        client_id: &str,
    ) -> (u16, Value) {
        self.post_json(
            "/api/crm/sms/send",
            Some(agent),
            json!({"conversationId": conversation, "body": body, "clientId": client_id}),
        )
        .await
    }

    /// The message as `sync` shows it: once no write still in flight could commit a change
    /// before it, which takes milliseconds.
    pub async fn message(&self, agent: &Agent, id: &str) -> Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let (status, body) = self
                .get("/api/crm/sms/sync?since=0&limit=1000", Some(agent))
                .await;
            assert_eq!(status, 200);
            if let Some(m) = body["messages"]
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["id"] == id)
            {
                return m.clone();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "message {id} never showed in sync"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until the message reaches `status` (polling the API, for tests that do not
    /// hold a socket).
    pub async fn wait_status(&self, agent: &Agent, id: &str, status: &str) -> Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let m = self.message(agent, id).await;
            if m["status"] == status {
                return m;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "message {id} never became {status}: {m}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the sending queue has nothing left (as `/readyz` reports it).
    pub async fn wait_queue_empty(&self) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let (_, ready) = self.get("/readyz", None).await;
            if ready["queue"]["depth"] == 0 {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the queue never emptied: {ready}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn socket(&self, agent: &Agent) -> Socket {
        Socket::connect(self, SocketAuth::Token(agent.token.clone()))
            .await
            .expect("the socket connects")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

pub fn new_sid() -> String {
    format!("SM{:032x}", rand::random::<u128>())
}

pub async fn read(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    let value = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, value)
}

// ---- socket.io client ----

pub enum SocketAuth {
    None,
    Token(String),
    Cookie {
        token: String,
        origin: Option<String>,
    },
}

pub struct Socket {
    client: Client,
    rx: mpsc::UnboundedReceiver<(String, Value)>,
    buffered: HashMap<String, VecDeque<Value>>,
    /// Receives once the server disconnects this socket from the namespace.
    closed: mpsc::UnboundedReceiver<()>,
}

impl Socket {
    /// Connects and waits for the server's answer: `Err(message)` on `connect_error`.
    pub async fn connect(app: &TestApp, auth: SocketAuth) -> Result<Socket, String> {
        let (tx, rx) = mpsc::unbounded_channel();
        let (status_tx, mut status_rx) = mpsc::unbounded_channel::<Result<(), String>>();
        let (closed_tx, closed) = mpsc::unbounded_channel::<()>();
        let on_connect = status_tx.clone();
        // Websocket only, as the page does: no polling-to-websocket upgrade to reorder packets.
        let mut builder = ClientBuilder::new(app.addr.clone())
            .namespace("/")
            .transport_type(rust_socketio::TransportType::Websocket)
            .reconnect(false)
            .on(Event::Connect, move |_, _| {
                let _ = on_connect.send(Ok(()));
                async {}.boxed()
            })
            .on(Event::Close, move |_, _| {
                let _ = closed_tx.send(());
                async {}.boxed()
            })
            .on(Event::Error, move |payload, _| {
                let text = match payload {
                    Payload::Text(v) => v
                        .iter()
                        .map(|x| x.to_string())
                        .collect::<Vec<_>>()
                        .join(" "),
                    #[allow(deprecated)]
                    Payload::String(s) => s,
                    Payload::Binary(_) => String::new(),
                };
                let _ = status_tx.send(Err(text));
                async {}.boxed()
            })
            .on_any(move |event, payload, _| {
                if let (Event::Custom(name), Payload::Text(values)) = (event, payload) {
                    let _ = tx.send((name, values.into_iter().next().unwrap_or(Value::Null)));
                }
                async {}.boxed()
            });
        match auth {
            SocketAuth::None => {}
            SocketAuth::Token(t) => builder = builder.auth(json!({"token": t})),
            SocketAuth::Cookie { token, origin } => {
                builder = builder.opening_header("Cookie", format!("smsdesk_session={token}"));
                if let Some(o) = origin {
                    builder = builder.opening_header("Origin", o);
                }
            }
        }
        let client = builder.connect().await.map_err(|e| e.to_string())?;
        let answer = tokio::time::timeout(WAIT, status_rx.recv())
            .await
            .map_err(|_| "no answer to the handshake".to_string())?
            .unwrap_or(Err("closed".into()));
        match answer {
            Ok(()) => Ok(Socket {
                client,
                rx,
                buffered: HashMap::new(),
                closed,
            }),
            Err(e) => {
                let _ = client.disconnect().await;
                Err(e)
            }
        }
    }

    /// The next `event` received, keeping other events for later calls.
    pub async fn next(&mut self, event: &str) -> Value {
        if let Some(v) = self.buffered.get_mut(event).and_then(VecDeque::pop_front) {
            return v;
        }
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let got = tokio::time::timeout_at(deadline, self.rx.recv())
                .await
                .unwrap_or_else(|_| panic!("no `{event}` event within {WAIT:?}"))
                .expect("the socket is open");
            if got.0 == event {
                return got.1;
            }
            self.buffered.entry(got.0).or_default().push_back(got.1);
        }
    }

    /// The next `event` that satisfies `pred`, dropping earlier ones of that name.
    pub async fn next_where(&mut self, event: &str, pred: impl Fn(&Value) -> bool) -> Value {
        loop {
            let v = self.next(event).await;
            if pred(&v) {
                return v;
            }
        }
    }

    pub async fn emit(&self, event: &str, data: Value) {
        self.client.emit(event, data).await.expect("emit");
    }

    /// Waits until the server disconnects this socket.
    pub async fn closed(&mut self) {
        tokio::time::timeout(WAIT, self.closed.recv())
            .await
            .unwrap_or_else(|_| panic!("the server did not disconnect the socket within {WAIT:?}"));
    }

    /// Every `event` received so far, without waiting.
    pub fn received(&mut self, event: &str) -> Vec<Value> {
        while let Ok((name, value)) = self.rx.try_recv() {
            self.buffered.entry(name).or_default().push_back(value);
        }
        self.buffered
            .get_mut(event)
            .map(|q| q.drain(..).collect())
            .unwrap_or_default()
    }

    /// Leaves, as a closed tab does.
    pub async fn disconnect(self) {
        self.client.disconnect().await.expect("disconnect");
    }
}

// ---- fake Twilio ----

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
}

#[derive(Default)]
pub struct FakeState {
    /// Every create request received, with when it came.
    pub sent: Mutex<Vec<HashMap<String, String>>>,
    pub sent_at: Mutex<Vec<std::time::Instant>>,
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
    script: Mutex<VecDeque<Script>>,
    pub app_addr: OnceLock<String>,
    media: Mutex<HashMap<String, (String, Vec<u8>)>>,
    redirects: Mutex<HashMap<String, String>>,
}

pub struct FakeTwilio {
    pub url: String,
    pub state: Arc<FakeState>,
}

impl FakeTwilio {
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
            .route("/media/{name}", get(fake_media))
            .route("/redirect/{name}", get(fake_redirect))
            .with_state(self.state.clone());
        let addr = self.url.trim_start_matches("http://").to_owned();
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
    }

    pub fn script(&self, s: Script) {
        self.state.script.lock().unwrap().push_back(s);
    }

    pub fn sent_count(&self) -> usize {
        self.state.sent.lock().unwrap().len()
    }

    /// How many messages Twilio took (what a phone would receive).
    pub fn accepted_count(&self) -> usize {
        self.state.accepted.lock().unwrap().len()
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
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if account != FAKE_ACCOUNT || !basic_ok(&headers) {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"code": 20003, "message": "Authenticate", "status": 401})),
        )
            .into_response();
    }
    state.sent.lock().unwrap().push(form.clone());
    state
        .sent_at
        .lock()
        .unwrap()
        .push(std::time::Instant::now());
    let script = state
        .script
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or(Script::Accept);
    let sid = new_sid();
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
            created(&sid, &form)
        }
        Script::Accept | Script::Slow(_) => created(&sid, &form),
    }
}

fn created(sid: &str, form: &HashMap<String, String>) -> Response {
    (
        StatusCode::CREATED,
        axum::Json(json!({
            "sid": sid,
            "status": "queued",
            "to": form.get("To"),
            "from": form.get("From"),
            "body": form.get("Body"),
            "num_segments": "1",
            "date_created": chrono::Utc::now().to_rfc2822(),
        })),
    )
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
