//! [`TestApp`]: the real server on a random port, built by [`TestAppBuilder`] from a
//! [`Mode`] and whatever configuration a test adds, and the HTTP helpers a test calls.
//!
//! Answers are read through [`read_as`] and the `*_as` helpers, which decode into any
//! `Deserialize` type: the API's own response types (`smsdesk::api::…`, `smsdesk::model::…`)
//! where a test reads fields, `serde_json::Value` where it looks at the raw shape.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use smsdesk::api::health::Readiness;
use smsdesk::api::session::SessionStarted;
use smsdesk::api::sync::Changes;
use smsdesk::config::Settings;
use smsdesk::domain::NewAgent;
use smsdesk::model::Conversation;
use smsdesk::twilio::signature::sign;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::{FAKE_ACCOUNT, FAKE_TOKEN, FakeTwilio, PUBLIC_URL, Socket, SocketAuth, WAIT};
use super::{init_logs, new_sid, wait_until};

/// A message as the API shows it (`send`, `sync`).
pub type ApiMessage = smsdesk::model::Message;

/// Who plays Twilio.
#[derive(Clone, Copy, Debug)]
pub enum Mode {
    /// No credentials: the built-in simulator.
    Simulator,
    /// Live mode against a [`FakeTwilio`], with [`PUBLIC_URL`] as `PUBLIC_URL`.
    FakeTwilio,
    /// As `FakeTwilio`, but the fake answers only after [`FakeTwilio::come_up`].
    TwilioDown,
}

/// How to start a [`TestApp`]: `TestApp::builder().mode(..).env("KEY", "v").spawn(&url)`.
pub struct TestAppBuilder {
    mode: Mode,
    /// Set (`Some`) or removed (`None`) over what the mode sets, in order.
    env: Vec<(&'static str, Option<String>)>,
    settings: Vec<SettingsChange>,
}

type SettingsChange = Box<dyn FnOnce(&mut Settings) + Send>;

impl TestAppBuilder {
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// Sets a variable of the server's environment, over the mode's own.
    pub fn env(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.env.push((key, Some(value.into())));
        self
    }

    /// Leaves out a variable the mode sets, so the server's default applies.
    pub fn env_remove(mut self, key: &'static str) -> Self {
        self.env.push((key, None));
        self
    }

    /// Changes a setting that no environment variable reaches.
    pub fn settings(mut self, change: impl FnOnce(&mut Settings) + Send + 'static) -> Self {
        self.settings.push(Box::new(change));
        self
    }

    /// Starts the real server on a random port against `database_url`.
    pub async fn spawn(self, database_url: &str) -> TestApp {
        init_logs();
        let fake = match self.mode {
            Mode::Simulator => None,
            Mode::FakeTwilio => Some(FakeTwilio::start().await),
            Mode::TwilioDown => Some(FakeTwilio::reserve()),
        };
        let mut env: HashMap<&str, String> = HashMap::from([
            ("PORT", "0".to_owned()),
            ("DATABASE_URL", database_url.to_owned()),
        ]);
        if let Some(f) = &fake {
            env.insert("TWILIO_ACCOUNT_SID", FAKE_ACCOUNT.into());
            env.insert("TWILIO_AUTH_TOKEN", FAKE_TOKEN.into());
            env.insert("TWILIO_API_BASE", f.url.clone());
            env.insert("PUBLIC_URL", PUBLIC_URL.into());
        }
        for (key, value) in self.env {
            match value {
                Some(v) => env.insert(key, v),
                None => env.remove(key),
            };
        }
        let mut settings = Settings::from_lookup(|k| env.get(k).cloned()).expect("valid settings");
        for change in self.settings {
            change(&mut settings);
        }
        let (server, started) = smsdesk::Server::build(settings)
            .await
            .expect("server starts");
        let port = server.port();
        let addr = format!("http://127.0.0.1:{port}");
        let state = server.state().clone();
        if let Some(f) = &fake {
            let _ = f.state.app_addr.set(addr.clone());
        }
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(server.run(async move {
            let _ = rx.await;
        }));
        TestApp {
            addr,
            port,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            twilio_token: state.services.twilio.auth_token().to_owned(),
            public_url: started.public_url,
            setup_url: started.setup_url,
            fake,
            store: state.services.store.clone(),
            database_url: database_url.to_owned(),
            simulator: state.services.simulator.clone(),
            state,
            shutdown: Some(tx),
            server: Some(handle),
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
    /// A server in [`Mode::Simulator`] with nothing else set, unless the builder says so.
    pub fn builder() -> TestAppBuilder {
        TestAppBuilder {
            mode: Mode::Simulator,
            env: Vec::new(),
            settings: Vec::new(),
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
        let new = NewAgent::parse_invited(email, email, &numbers).expect("a valid agent");
        self.store
            .create_agent(&new, &hash)
            .await
            .unwrap()
            .expect("a new email");
        let (status, started) = self
            .post_json_as::<SessionStarted>(
                "/api/auth/login",
                None,
                json!({"email": email, "password": "password123"}),
            )
            .await;
        assert_eq!(status, 200, "login: {started:?}");
        Agent {
            id: started.agent.id.to_string(),
            token: started.token,
        }
    }

    pub async fn get(&self, path: &str, agent: Option<&Agent>) -> (u16, Value) {
        self.get_as(path, agent).await
    }

    pub async fn get_as<T: DeserializeOwned>(&self, path: &str, agent: Option<&Agent>) -> (u16, T) {
        let mut req = self.http.get(self.url(path));
        if let Some(a) = agent {
            req = req.bearer_auth(&a.token);
        }
        read_as(req.send().await.unwrap()).await
    }

    pub async fn post_json(&self, path: &str, agent: Option<&Agent>, body: Value) -> (u16, Value) {
        self.post_json_as(path, agent, body).await
    }

    pub async fn post_json_as<T: DeserializeOwned>(
        &self,
        path: &str,
        agent: Option<&Agent>,
        body: Value,
    ) -> (u16, T) {
        let mut req = self.http.post(self.url(path)).json(&body);
        if let Some(a) = agent {
            req = req.bearer_auth(&a.token);
        }
        read_as(req.send().await.unwrap()).await
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
        self.conversation_from(agent, phone, None).await
    }

    /// Opens a conversation of `agent` with `phone` from our number `from` (the agent's
    /// first when `None`) and returns its id.
    pub async fn conversation_from(
        &self,
        agent: &Agent,
        phone: &str,
        from: Option<&str>,
    ) -> String {
        let (status, conversation) = self
            .post_json_as::<Conversation>(
                "/api/crm/sms/conversations",
                Some(agent),
                json!({"phone": phone, "from": from}),
            )
            .await;
        assert_eq!(status, 200, "{conversation:?}");
        conversation.id.to_string()
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

    /// Edits `agent` through the admin API as `admin`, which must succeed.
    pub async fn admin_patch(&self, admin: &Agent, agent: &Agent, body: Value) {
        let r = self
            .http
            .patch(self.url(&format!("/api/admin/agents/{}", agent.id)))
            .bearer_auth(&admin.token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    }

    /// The message as `sync` shows it: once no write still in flight could commit a change
    /// before it, which takes milliseconds.
    pub async fn message(&self, agent: &Agent, id: &str) -> ApiMessage {
        wait_until(&format!("message {id} in sync"), async || {
            let (status, changes) = self
                .get_as::<Changes>("/api/crm/sms/sync?since=0&limit=1000", Some(agent))
                .await;
            assert_eq!(status, 200, "{changes:?}");
            changes
                .messages
                .into_iter()
                .find(|m| m.id.to_string() == id)
        })
        .await
    }

    /// Waits until the message becomes `status`, and returns it as `sync` then shows it.
    pub async fn wait_status(&self, agent: &Agent, id: &str, status: &str) -> ApiMessage {
        self.wait_status_within(agent, id, status, WAIT).await
    }

    /// [`TestApp::wait_status`] for changes that take longer than [`WAIT`] by design. As the
    /// page does, it hears of the change on a socket of the agent's, opened before one look
    /// at the API (for a change that came earlier): no polling.
    pub async fn wait_status_within(
        &self,
        agent: &Agent,
        id: &str,
        status: &str,
        within: Duration,
    ) -> ApiMessage {
        let deadline = Instant::now() + within;
        let mut socket = self.socket(agent).await;
        let mut message = self.message(agent, id).await;
        if message.status.as_str() != status {
            let mut seen = Value::from(message.status.as_str());
            while seen != status {
                let Some(change) = socket.next_before("message:status", deadline).await else {
                    panic!(
                        "message {id} did not become {status} within {within:?}; last seen: {seen}"
                    );
                };
                if change["id"] == id {
                    seen = change["status"].clone();
                }
            }
            message = self.message(agent, id).await;
        }
        socket.disconnect().await;
        message
    }

    /// Waits until the sending queue has nothing left (as `/readyz` reports it).
    pub async fn wait_queue_empty(&self) {
        wait_until("the sending queue to empty", async || {
            let (_, ready) = self.get_as::<Readiness>("/readyz", None).await;
            match &ready.queue {
                Some(queue) if queue.depth == 0 => Ok(()),
                _ => Err(format!("{ready:?}")),
            }
        })
        .await
    }

    /// The number the database answers to `sql`, read on a connection of the test's own
    /// (for what the API does not show: the queue's rows, pending status checks).
    pub async fn scalar(&self, sql: &'static str) -> i64 {
        use sqlx::Connection;
        if self.database_url.starts_with("sqlite:") {
            let mut db = sqlx::SqliteConnection::connect(&self.database_url)
                .await
                .unwrap();
            sqlx::query_scalar(sql).fetch_one(&mut db).await.unwrap()
        } else {
            let mut db = sqlx::PgConnection::connect(&self.database_url)
                .await
                .unwrap();
            sqlx::query_scalar(sql).fetch_one(&mut db).await.unwrap()
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

/// An answer's status and body as JSON.
pub async fn read(r: reqwest::Response) -> (u16, Value) {
    read_as(r).await
}

/// An answer's status and body decoded as `T`, from JSON (an empty body is `null`, any
/// other body that is not JSON a string).
pub async fn read_as<T: DeserializeOwned>(r: reqwest::Response) -> (u16, T) {
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    let value = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    let body = T::deserialize(&value)
        .unwrap_or_else(|e| panic!("a {status} answer not of the expected shape ({e}): {value}"));
    (status, body)
}

/// An answer in our error JSON (docs/api.md, "Errors"): `want`, with `code` and a message.
pub fn assert_error(status: u16, body: &Value, want: u16, code: &str) {
    assert_eq!(status, want, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}
