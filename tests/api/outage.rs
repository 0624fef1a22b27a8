//! The database goes away and comes back: 503s with the error JSON, nothing half-stored,
//! sockets stay up, and everything works again without a restart.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use sqlx::Connection;

use std::sync::Arc;

use tokio::sync::Notify;

use crate::helpers::{
    Agent, FakeTwilio, Mode, Script, Socket, SocketAuth, TestApp, ci, new_sid, wait_until,
    wait_until_within,
};

fn inbound_params(sid: &str) -> [(&'static str, String); 4] {
    [
        ("MessageSid", sid.to_owned()),
        ("From", "+14155550123".into()),
        ("To", "+15550001000".into()),
        ("Body", "during the outage".into()),
    ]
}

async fn post(app: &TestApp, sid: &str) -> u16 {
    let params = inbound_params(sid);
    let refs: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    app.post_webhook("/api/crm/sms/webhook", &refs)
        .await
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_locked_by_another_process() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("smsdesk.db").display());
    let app = TestApp::builder().spawn(&url).await;
    let alice = app.agent("alice@example.com", &["+15550001000"]).await;

    // Another process takes the write lock and keeps it.
    let mut intruder = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query("BEGIN EXCLUSIVE")
        .execute(&mut intruder)
        .await
        .unwrap();

    let sid = new_sid();
    assert_eq!(post(&app, &sid).await, 503, "Twilio will retry");
    let (status, body) = app.send(&alice, "1", "hello", "c-1").await;
    assert!(status == 503 || status == 404, "{status} {body}");

    sqlx::query("ROLLBACK")
        .execute(&mut intruder)
        .await
        .unwrap();
    assert_eq!(post(&app, &sid).await, 200, "Twilio's retry is stored");
    assert_eq!(post(&app, &sid).await, 200);
    let (_, sync) = app.get("/api/crm/sms/sync?since=0", Some(&alice)).await;
    assert_eq!(sync["messages"].as_array().unwrap().len(), 1, "stored once");
}

/// How long a claim lasts in the tests where the database goes away after Twilio's `201`:
/// the outage outlives it, so another worker could take the message over.
const SHORT_LEASE: Duration = Duration::from_secs(2);

/// A server on `url` whose fake Twilio holds its answer to the first create until told, and
/// whose Messages list lags (shows nothing): a takeover that looked the message up there
/// would find nothing and post it again.
async fn app_with_held_answer(url: &str) -> (TestApp, Agent, Arc<Notify>, Arc<Notify>) {
    let app = TestApp::builder()
        .mode(Mode::FakeTwilio)
        .env("SEND_LEASE_SECONDS", SHORT_LEASE.as_secs().to_string())
        .spawn(url)
        .await;
    let alice = app.agent("alice@example.com", &["+15550001000"]).await;
    let fake = app.fake.as_ref().unwrap();
    *fake.state.list_lags.lock().unwrap() = true;
    let (taken, answer) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    fake.script(Script::Held {
        taken: taken.clone(),
        answer: answer.clone(),
    });
    (app, alice, taken, answer)
}

/// After the outage: the message has the sid of Twilio's answer, and Twilio got one create.
async fn recorded_once(app: &TestApp, alice: &Agent, id: &str) {
    let fake: &FakeTwilio = app.fake.as_ref().unwrap();
    let m = app
        .wait_status_within(alice, id, "queued", Duration::from_secs(30))
        .await;
    let (sid, _) = fake.state.accepted.lock().unwrap()[0].clone();
    assert_eq!(m.twilio_sid.as_deref(), Some(sid.as_str()));
    app.wait_queue_empty().await;
    assert_eq!(
        fake.sent_count(),
        1,
        "the 201 was final: never posted again"
    );
}

/// Twilio answers `201`, and the database is locked by another process before the answer
/// is recorded, for longer than the claim's lease.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_locked_between_twilio_s_answer_and_its_record() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("smsdesk.db").display());
    let (app, alice, taken, answer) = app_with_held_answer(&url).await;
    let conversation = app.conversation(&alice, "+14155550123").await;
    let (_, body) = app.send(&alice, &conversation, "exactly once", "c-1").await;
    let id = body["message"]["id"].as_str().unwrap().to_owned();

    taken.notified().await;
    let mut intruder = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query("BEGIN EXCLUSIVE")
        .execute(&mut intruder)
        .await
        .unwrap();
    answer.notify_one();
    // Past the lease as the claim set it (read inside the lock: WAL lets it), and past the
    // 5 s SQLite waits for a lock before a write fails.
    let lease: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar("SELECT lease_until FROM send_jobs")
            .fetch_one(&mut intruder)
            .await
            .unwrap();
    let past = (lease - chrono::Utc::now()).to_std().unwrap_or_default() + SHORT_LEASE;
    tokio::time::sleep(past.max(Duration::from_secs(7))).await;
    sqlx::query("ROLLBACK")
        .execute(&mut intruder)
        .await
        .unwrap();
    recorded_once(&app, &alice, &id).await;
}

/// As above, with PostgreSQL stopped between the answer and the record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stopped_between_twilio_s_answer_and_its_record() {
    let Some(cluster) = Cluster::create() else {
        assert!(!ci(), "PostgreSQL's server binaries are needed in CI");
        eprintln!("skipped: no PostgreSQL server binaries under /usr/lib/postgresql");
        return;
    };
    let (app, alice, taken, answer) = app_with_held_answer(&cluster.url()).await;
    let conversation = app.conversation(&alice, "+14155550123").await;
    let (_, body) = app.send(&alice, &conversation, "exactly once", "c-1").await;
    let id = body["message"]["id"].as_str().unwrap().to_owned();

    taken.notified().await;
    cluster.stop();
    answer.notify_one();
    // Nothing of the database can be read now: wait out the lease the claim took.
    tokio::time::sleep(SHORT_LEASE * 2).await;
    cluster.start();
    recorded_once(&app, &alice, &id).await;
}

/// "Simulate incoming SMS" during an outage: the simulator retries the webhook as Twilio
/// would, so the message arrives once the database is back; shutdown ends the retrying.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulated_inbound_is_retried_through_an_outage() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("smsdesk.db").display());
    let mut app = TestApp::builder().spawn(&url).await;
    let alice = app.agent("alice@example.com", &["+15550001000"]).await;
    let mut socket = app.socket(&alice).await;
    let sim = app.simulator.clone().unwrap();
    let simulate = |body: &'static str| {
        app.post_json(
            "/dev/simulate/inbound",
            Some(&alice),
            serde_json::json!({"from": "+14155550123", "to": "+15550001000", "body": body}),
        )
    };

    let mut intruder = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query("BEGIN EXCLUSIVE")
        .execute(&mut intruder)
        .await
        .unwrap();
    let (status, body) = simulate("sent during the outage").await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["webhookStatus"], 503, "{body}");
    assert_eq!(body["retrying"], true, "{body}");
    sqlx::query("ROLLBACK")
        .execute(&mut intruder)
        .await
        .unwrap();
    let got = socket.next("message:new").await;
    assert_eq!(got["body"], "sent during the outage");
    wait_until_no_retries(&sim).await;
    let (_, sync) = app.get("/api/crm/sms/sync?since=0", Some(&alice)).await;
    assert_eq!(sync["messages"].as_array().unwrap().len(), 1, "stored once");

    sqlx::query("BEGIN EXCLUSIVE")
        .execute(&mut intruder)
        .await
        .unwrap();
    let (_, body) = simulate("still failing at shutdown").await;
    assert_eq!(body["retrying"], true, "{body}");
    app.stop().await;
    wait_until_no_retries(&sim).await;
}

async fn wait_until_no_retries(sim: &smsdesk::twilio::simulator::Simulator) {
    wait_until("the simulator to stop retrying", async || {
        sim.retrying() == 0
    })
    .await;
}

/// The SQLite file deleted, or replaced, under the running server: writes would go to a
/// file nothing will read again, so the store refuses them (webhooks 503: Twilio retries)
/// and `/readyz` says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_file_deleted_under_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("smsdesk.db");
    let app = TestApp::builder()
        .spawn(&format!("sqlite://{}", path.display()))
        .await;
    let alice = app.agent("alice@example.com", &["+15550001000"]).await;
    assert_eq!(post(&app, &new_sid()).await, 200);
    assert_eq!(app.get("/readyz", None).await.0, 200);

    std::fs::remove_file(&path).unwrap();
    let (status, body) = app.get("/readyz", None).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "unavailable");
    assert_eq!(post(&app, &new_sid()).await, 503, "Twilio will retry");
    let (status, body) = app.get("/api/crm/sms/conversations", Some(&alice)).await;
    assert_eq!(status, 503, "{body}");
    assert!(!path.exists(), "no empty database was created in its place");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_file_replaced_under_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("smsdesk.db");
    let app = TestApp::builder()
        .spawn(&format!("sqlite://{}", path.display()))
        .await;
    assert_eq!(post(&app, &new_sid()).await, 200);

    // A restore from a copy: another file (another inode) at the same path.
    let copy = dir.path().join("copy.db");
    std::fs::copy(&path, &copy).unwrap();
    std::fs::rename(&copy, &path).unwrap();
    let (status, body) = app.get("/readyz", None).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(post(&app, &new_sid()).await, 503);
}

/// A private PostgreSQL cluster that the test may stop and start.
struct Cluster {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Cluster {
    fn pg_bin() -> Option<PathBuf> {
        let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|p| p.join("initdb").exists())
            .collect();
        versions.sort();
        versions.pop()
    }

    fn as_postgres(bin: &Path, tool: &str, args: &[&str]) {
        let mut cmd = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(bin.join(tool));
            c
        } else {
            Command::new(bin.join(tool))
        };
        let out = cmd.args(args).output().expect("run a PostgreSQL tool");
        assert!(
            out.status.success(),
            "{tool} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn create() -> Option<Self> {
        let bin = Self::pg_bin()?;
        let dir = tempfile::Builder::new()
            .prefix("smsdesk-pg")
            .tempdir()
            .unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        if is_root() {
            let ok = Command::new("chown")
                .args(["-R", "postgres:postgres", dir.path().to_str().unwrap()])
                .status()
                .unwrap()
                .success();
            assert!(ok);
        }
        Self::as_postgres(
            &bin,
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
            ],
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let cluster = Self {
            bin,
            data,
            port,
            _dir: dir,
        };
        cluster.start();
        Some(cluster)
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn start(&self) {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.data.display()
        );
        Self::as_postgres(
            &self.bin,
            "pg_ctl",
            &[
                "-D",
                self.data.to_str().unwrap(),
                "-o",
                &opts,
                "-w",
                "-l",
                self.data.join("log").to_str().unwrap(),
                "start",
            ],
        );
    }

    fn stop(&self) {
        Self::as_postgres(
            &self.bin,
            "pg_ctl",
            &[
                "-D",
                self.data.to_str().unwrap(),
                "-m",
                "fast",
                "-w",
                "stop",
            ],
        );
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .args(["-D", self.data.to_str().unwrap(), "-m", "immediate", "stop"])
            .output();
    }
}

fn is_root() -> bool {
    std::env::var("USER").is_ok_and(|u| u == "root")
        || Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stopped_and_started() {
    let Some(cluster) = Cluster::create() else {
        assert!(!ci(), "PostgreSQL's server binaries are needed in CI");
        eprintln!("skipped: no PostgreSQL server binaries under /usr/lib/postgresql");
        return;
    };
    let app = TestApp::builder().spawn(&cluster.url()).await;
    let alice = app.agent("alice@example.com", &["+15550001000"]).await;
    let mut socket = app.socket(&alice).await;

    cluster.stop();
    let (status, body) = app.get("/readyz", None).await;
    assert_eq!(status, 503);
    assert_eq!(body["error"]["code"], "unavailable");
    let sid = new_sid();
    assert_eq!(post(&app, &sid).await, 503);
    let (status, body) = app.get("/api/crm/sms/conversations", Some(&alice)).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "unavailable");
    let refused = Socket::connect(&app, SocketAuth::Token(alice.token.clone())).await;
    assert!(
        refused
            .err()
            .expect("no new sockets")
            .contains("unavailable")
    );

    cluster.start();
    wait_until_within("ready again", Duration::from_secs(15), async || {
        app.get("/readyz", None).await.0 == 200
    })
    .await;
    assert_eq!(post(&app, &sid).await, 200, "Twilio's retry is stored");
    // The socket that was connected through the outage still receives.
    assert_eq!(
        socket.next("message:new").await["body"],
        "during the outage"
    );
    let (_, sync) = app.get("/api/crm/sms/sync?since=0", Some(&alice)).await;
    assert_eq!(sync["messages"].as_array().unwrap().len(), 1);
}
