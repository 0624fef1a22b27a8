//! End-to-end benchmark: the release server as its own process, N idle socket.io clients,
//! then signed inbound webhooks at a fixed rate; measures webhook-in → `message:new`-at-the-
//! client latency, delivery, and the server's memory per idle socket.
//!
//! `cargo bench --bench e2e` (env: BENCH_SOCKETS=1000 BENCH_RPS=500 BENCH_SECONDS=10
//! BENCH_AGENTS=100, BENCH_DATABASE_URL=postgres://… to use PostgreSQL instead of SQLite).
//!
//! Per run it also reports the CPU time per webhook of the server (utime + stime of its
//! process, from `/proc/<pid>/stat`) and, on PostgreSQL, of the `postgres` processes of the
//! bench's database (its backends and the server's background processes; every `postgres`
//! process on the machine too, which includes other databases' work on a shared server), each
//! as the difference over the load window divided by the webhooks posted. `BENCH_RPS=1000` is
//! the saturation mode (docs/performance.md).
//!
//! `BENCH_INSTANCES=2` (PostgreSQL only) runs several instances on the one database with a
//! private `redis-server` on a free port as `REDIS_URL`: each agent's sockets are split
//! across the instances, and the webhooks are posted to them in turn.
//!
//! `BENCH_SERVER=node` (PostgreSQL only) measures the Node backend smsdesk replaces instead,
//! rebuilt in `benches/node/server.js` (`npm ci` there first if `node_modules` is missing), with
//! the same sockets, webhooks and measures. `BENCH_COMPARE=1` runs smsdesk, then Node, each on
//! the database of `BENCH_DATABASE_URL` dropped and created again, and prints one table;
//! with `BENCH_SMSDESK_BEFORE=<path of another smsdesk binary>` that binary runs too, between
//! them (a before/after of a change, in the same run).

use std::collections::{HashMap, HashSet};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use smsdesk::domain::NewAgent;
use smsdesk::twilio::signature::sign;
use tokio::sync::Mutex;
use tokio_tungstenite::tungstenite::Message as Ws;

const TOKEN: &str = "bench-auth-token";
const ACCOUNT: &str = "ACbe0cbe0cbe0cbe0cbe0cbe0cbe0cbe0c";
const PUBLIC_URL: &str = "https://bench.smsdesk.test";

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

/// utime + stime of process `pid`, in clock ticks (`/proc/<pid>/stat` fields 14 and 15).
fn cpu_ticks(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            // The command name may hold spaces: the fields after it are counted from its `)`.
            let fields: Vec<&str> = s.rsplit_once(')')?.1.split_whitespace().collect();
            Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
        })
        .unwrap_or(0)
}

/// CPU ticks of the processes named `postgres` on the machine, by pid: every one, or with
/// `database` only those that may work for it (its client backends and the server's own
/// processes: WAL writer, checkpointer, autovacuum…), not the backends of other databases,
/// which other people's tests may keep busy on a shared server.
fn postgres_ticks(database: Option<&str>) -> HashMap<u32, u64> {
    let mut ticks = HashMap::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if !std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .is_ok_and(|c| c.trim() == "postgres")
        {
            continue;
        }
        let serves = |db: &str| {
            let title = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            client_database(&title).is_none_or(|of| of == db)
        };
        if database.is_none_or(serves) {
            ticks.insert(pid, cpu_ticks(pid));
        }
    }
    ticks
}

/// The database of a PostgreSQL client backend, from its process title
/// (`postgres: 15/main: user database host(port) state`); `None` for the server's own processes.
fn client_database(title: &str) -> Option<&str> {
    let rest = title.strip_prefix("postgres: ")?;
    // The cluster's name, when it has one, comes first.
    let rest = rest.split_once(": ").map_or(rest, |(_, r)| r);
    let words: Vec<&str> = rest.split_whitespace().collect();
    let host = words.get(2)?;
    (host.ends_with(')') || *host == "[local]").then(|| words[1])
}

/// The database name of a `postgres://` URL.
fn database_name(url: &str) -> &str {
    let path = url.rsplit_once('/').map_or("", |(_, p)| p);
    path.split_once('?').map_or(path, |(name, _)| name)
}

/// Milliseconds of CPU the postgres processes used between two readings (a process that
/// started in between counts from zero; one that ended is lost, but pooled backends stay).
fn postgres_ms(before: &HashMap<u32, u64>, after: &HashMap<u32, u64>) -> f64 {
    let ticks: u64 = after
        .iter()
        .map(|(pid, t)| t.saturating_sub(before.get(pid).copied().unwrap_or(0)))
        .sum();
    ticks_ms(ticks)
}

/// Clock ticks to milliseconds (`getconf CLK_TCK`, 100 on Linux).
fn ticks_ms(ticks: u64) -> f64 {
    static PER_SECOND: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let per_second = *PER_SECOND.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok()?.trim().parse().ok())
            .unwrap_or(100)
    });
    ticks as f64 * 1000.0 / per_second as f64
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

/// Sends of webhooks, by message number: when each was posted.
type Posted = Arc<Mutex<HashMap<u64, Instant>>>;

/// What the sockets saw: latencies of first deliveries, how many, and how many came again.
#[derive(Clone, Default)]
struct Seen {
    latencies: Arc<Mutex<Vec<Duration>>>,
    delivered: Arc<AtomicU64>,
    duplicates: Arc<AtomicU64>,
    /// Sockets whose namespace handshake was answered.
    connected: Arc<AtomicU64>,
}

/// A free port on loopback.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One raw socket.io v4 client over websocket: handshake with `auth: {token}`, answer
/// pings, and report every `message:new` body's arrival time (and any that comes twice).
async fn socket(addr: String, token: String, posted: Posted, seen: Seen) {
    let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket");
    // The server admits at most 100 unfinished handshakes per address (`src/realtime/
    // connections.rs`) and answers the others `503`: those try again.
    let mut ws = loop {
        match tokio_tungstenite::connect_async(&url).await {
            Ok((ws, _)) => break ws,
            Err(tokio_tungstenite::tungstenite::Error::Http(r)) if r.status() == 503 => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("websocket: {e}"),
        }
    };
    let open = ws.next().await.expect("open").expect("open");
    assert!(open.to_text().unwrap().starts_with('0'));
    ws.send(Ws::text(format!("40{{\"token\":\"{token}\"}}")))
        .await
        .unwrap();
    // Pings may come before the namespace's answer.
    loop {
        let frame = ws.next().await.expect("connect").expect("connect");
        let text = frame.to_text().unwrap_or_default();
        if text == "2" {
            ws.send(Ws::text("3")).await.unwrap();
            continue;
        }
        assert!(text.starts_with("40"), "handshake refused: {text}");
        seen.connected.fetch_add(1, Ordering::Relaxed);
        break;
    }
    let mut received = HashSet::new();
    while let Some(Ok(frame)) = ws.next().await {
        let Ok(text) = frame.to_text() else { continue };
        if text == "2" {
            let _ = ws.send(Ws::text("3")).await;
        } else if let Some(event) = text.strip_prefix("42[\"message:new\",") {
            let now = Instant::now();
            if let Some(n) = event
                .split("\"body\":\"bench ")
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .and_then(|n| n.parse::<u64>().ok())
                && let Some(at) = posted.lock().await.get(&n).copied()
            {
                if received.insert(n) {
                    seen.latencies.lock().await.push(now - at);
                    seen.delivered.fetch_add(1, Ordering::Relaxed);
                } else {
                    seen.duplicates.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
}

/// Which server a run measures.
#[derive(Clone, PartialEq, Eq, Debug)]
enum Side {
    /// A release smsdesk binary: this build's, or another one to compare with.
    Smsdesk {
        name: &'static str,
        binary: std::path::PathBuf,
    },
    /// The Node reference, `benches/node/server.js` (PostgreSQL only).
    Node,
}

impl Side {
    fn smsdesk() -> Self {
        Side::Smsdesk {
            name: "smsdesk",
            binary: env!("CARGO_BIN_EXE_smsdesk").into(),
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Side::Smsdesk { name, .. } => name,
            Side::Node => "Node",
        }
    }
}

/// What a run is asked to do, the same for both sides.
struct Settings {
    sockets: u64,
    rps: u64,
    seconds: u64,
    agents: u64,
    instances: u64,
    database_url: String,
}

/// What a run measured.
struct Outcome {
    side: Side,
    sent_for: Duration,
    failures: HashMap<String, u64>,
    delivered: u64,
    expected: u64,
    duplicates: u64,
    latencies: Vec<Duration>,
    /// From each webhook posted to its `200`: the server's part (its commit, and the events
    /// handed to the sockets) without the sockets' writes and the client's reading.
    answered: Vec<Duration>,
    server_ms: f64,
    /// On PostgreSQL: the bench database's processes, and every `postgres` process.
    database_ms: Option<(f64, f64)>,
    rss_before: u64,
    rss_idle: u64,
    rss_after: u64,
}

/// The Node reference's folder, with its `package.json` and lock file.
fn node_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/node")
}

/// `npm ci` in the Node reference's folder, unless its `node_modules` is there already.
fn install_node_reference() {
    if node_dir().join("node_modules").is_dir() {
        return;
    }
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(node_dir())
        .status()
        .expect("run npm (the Node reference needs node and npm)");
    assert!(status.success(), "npm ci in benches/node failed");
}

/// Drops and creates the database of `url` again, through the server's `postgres` database.
async fn recreate_database(url: &str) {
    use sqlx::Connection;
    let name = database_name(url);
    let (base, _) = url
        .rsplit_once('/')
        .expect("a database in BENCH_DATABASE_URL");
    let query = url.split_once('?').map_or("", |(_, q)| q);
    let maintenance = if query.is_empty() {
        format!("{base}/postgres")
    } else {
        format!("{base}/postgres?{query}")
    };
    let mut db = sqlx::PgConnection::connect(&maintenance)
        .await
        .expect("connect to the postgres database to recreate the bench's");
    let quoted = format!("\"{}\"", name.replace('"', "\"\""));
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {quoted} WITH (FORCE)"
    )))
    .execute(&mut db)
    .await
    .expect("drop the bench database");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {quoted}")))
        .execute(&mut db)
        .await
        .expect("create the bench database");
}

/// smsdesk's agents and sessions, straight into its database before it starts: one session
/// token per agent.
async fn smsdesk_agents(settings: &Settings) -> Vec<String> {
    let store = smsdesk::store::connect(
        &smsdesk::config::DatabaseUrl::parse(&settings.database_url).unwrap(),
        Duration::from_secs(10),
    )
    .await
    .expect("database");
    let hash = smsdesk::auth::hash_password("bench-password").unwrap();
    let mut tokens = Vec::new();
    for a in 0..settings.agents {
        let number = format!("+1555{:07}", a);
        let email = format!("agent{a}-{}@bench.test", rand::random::<u32>());
        let agent = store
            .create_agent(
                &NewAgent::parse_invited(&email, &format!("Agent {a}"), &[number]).unwrap(),
                &hash,
            )
            .await
            .unwrap()
            .unwrap();
        let (token, token_hash) = smsdesk::auth::new_token();
        store
            .create_session(
                &token_hash,
                agent.id,
                chrono::Utc::now() + chrono::Duration::days(1),
            )
            .await
            .unwrap();
        tokens.push(token);
    }
    tokens
}

/// Agents and sessions for another smsdesk build (`BENCH_SMSDESK_BEFORE`), written by SQL
/// into the tables that build made: [`smsdesk_agents`] would first run this build's
/// migrations, which the older binary refuses to start on.
async fn older_smsdesk_agents(binary: &std::path::Path, settings: &Settings) -> Vec<String> {
    // Any command of its CLI migrates the database first.
    let migrated = Command::new(binary)
        .args(["agent", "list"])
        .env("DATABASE_URL", &settings.database_url)
        .stdout(Stdio::null())
        .status()
        .expect("run the other smsdesk build");
    assert!(migrated.success(), "the other build could not migrate");
    let statements = AgentStatements {
        agent: "INSERT INTO agents (email, name, password_hash, created_at) \
                VALUES ($1, $2, $3, now()) RETURNING id",
        number: "INSERT INTO agent_numbers (agent_id, number) VALUES ($1, $2)",
        session: "INSERT INTO sessions (token_hash, agent_id, created_at, expires_at) \
                  VALUES ($1, $2, now(), now() + interval '1 day')",
        token_hashed: true,
    };
    agents_by_sql(settings, &statements).await
}

/// The Node reference's agents and sessions, into the tables it created at start.
async fn node_agents(settings: &Settings) -> Vec<String> {
    let statements = AgentStatements {
        agent: "INSERT INTO crm.agents (name) VALUES ($2) RETURNING id",
        number: "INSERT INTO crm.agent_numbers (agent_id, number) VALUES ($1, $2)",
        session: "INSERT INTO crm.sessions (token, agent_id, expires_at) \
                  VALUES ($1, $2, now() + interval '1 day')",
        token_hashed: false,
    };
    agents_by_sql(settings, &statements).await
}

/// What [`agents_by_sql`] runs for each agent: its insert, given its email, name and password
/// hash (`$1`–`$3`, as it needs them) and answering its id; its number's, given the id and
/// the number; its session's, given the token (or its hash) and the id.
struct AgentStatements {
    agent: &'static str,
    number: &'static str,
    session: &'static str,
    token_hashed: bool,
}

/// The bench's agents, each with its number and a session, written by SQL; their tokens.
async fn agents_by_sql(settings: &Settings, statements: &AgentStatements) -> Vec<String> {
    use sqlx::Connection;
    let mut db = sqlx::PgConnection::connect(&settings.database_url)
        .await
        .expect("database");
    let hash = smsdesk::auth::hash_password("bench-password").unwrap();
    let mut tokens = Vec::new();
    for a in 0..settings.agents {
        let id: i64 = sqlx::query_scalar(statements.agent)
            .bind(format!("agent{a}@bench.test"))
            .bind(format!("Agent {a}"))
            .bind(&hash)
            .fetch_one(&mut db)
            .await
            .unwrap();
        sqlx::query(statements.number)
            .bind(id)
            .bind(format!("+1555{:07}", a))
            .execute(&mut db)
            .await
            .unwrap();
        let (token, token_hash) = smsdesk::auth::new_token();
        let key = if statements.token_hashed {
            &token_hash
        } else {
            &token
        };
        sqlx::query(statements.session)
            .bind(key)
            .bind(id)
            .execute(&mut db)
            .await
            .unwrap();
        tokens.push(token);
    }
    tokens
}

/// Starts `command` and waits for its `/readyz` (starting it again if it exits first: a
/// `redis-server` may still be starting, and smsdesk refuses to start without it).
async fn start(mut command: Command, addr: &str, http: &reqwest::Client) -> Child {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut server = command.spawn().expect("start the server");
    while http
        .get(format!("http://{addr}/readyz"))
        .send()
        .await
        .map(|r| r.status() != 200)
        .unwrap_or(true)
    {
        assert!(Instant::now() < deadline, "server not ready");
        if server.try_wait().unwrap().is_some() {
            server = command.spawn().expect("start the server");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server
}

async fn run(side: Side, settings: &Settings) -> Outcome {
    let Settings {
        sockets,
        rps,
        seconds,
        agents,
        instances,
        ref database_url,
    } = *settings;
    let mut tokens = match &side {
        Side::Smsdesk { binary, .. } if side != Side::smsdesk() => {
            older_smsdesk_agents(binary, settings).await
        }
        Side::Smsdesk { .. } => smsdesk_agents(settings).await,
        Side::Node => Vec::new(),
    };

    let redis = (instances > 1).then(|| {
        let port = free_port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("start redis-server (apt-get install redis-server)");
        (child, format!("redis://127.0.0.1:{port}/0"))
    });
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()
        .unwrap();
    let mut servers: Vec<Child> = Vec::new();
    let mut addrs = Vec::new();
    for _ in 0..instances {
        let port = free_port();
        let mut command = match &side {
            Side::Smsdesk { binary, .. } => {
                let mut command = Command::new(binary);
                command
                    .env("TWILIO_ACCOUNT_SID", ACCOUNT)
                    .env("TWILIO_API_BASE", "http://127.0.0.1:9")
                    .env("RUST_LOG", "warn")
                    .env(
                        "MAX_SOCKETS_PER_AGENT",
                        sockets.div_ceil(agents).to_string(),
                    );
                command
            }
            Side::Node => {
                let mut command = Command::new("node");
                command.arg(node_dir().join("server.js"));
                command
            }
        };
        command
            .env("PORT", port.to_string())
            .env("DATABASE_URL", database_url)
            .env("PUBLIC_URL", PUBLIC_URL)
            .env("TWILIO_AUTH_TOKEN", TOKEN)
            .stdout(Stdio::null());
        if let Some((_, url)) = &redis {
            command.env("REDIS_URL", url);
        }
        let addr = format!("127.0.0.1:{port}");
        servers.push(start(command, &addr, &http).await);
        addrs.push(addr);
    }
    if side == Side::Node {
        tokens = node_agents(settings).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss = |servers: &[Child]| servers.iter().map(|s| rss_kib(s.id())).sum::<u64>();
    let rss_before = rss(&servers);

    let seen = Seen::default();
    let posted: Posted = Arc::new(Mutex::new(HashMap::new()));
    let mut clients = Vec::new();
    // A busy machine answers a hundred handshakes a second or so.
    let deadline = Instant::now() + Duration::from_secs(60 + sockets / 100);
    for i in 0..sockets {
        // Every socket here comes from one address, and the server refuses a client address
        // more than 100 engine.io sessions that have not joined the namespace yet
        // (`src/realtime/connections.rs`): at most 50 handshakes are under way at once.
        while i >= seen.connected.load(Ordering::Relaxed) + 50 {
            assert!(
                Instant::now() < deadline,
                "only {} of {sockets} sockets connected",
                seen.connected.load(Ordering::Relaxed)
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let token = tokens[(i % agents) as usize].clone();
        // Each agent's sockets alternate between the instances.
        let addr = addrs[((i / agents) % instances) as usize].clone();
        clients.push(tokio::spawn(socket(
            addr,
            token,
            posted.clone(),
            seen.clone(),
        )));
    }
    // Every handshake answered, then a moment for memory to settle (the server gives back
    // what the handshakes left free once sockets stop coming for a second): measured while
    // handshakes were still under way, a busy machine counted their buffers as the idle
    // sockets'.
    while seen.connected.load(Ordering::Relaxed) < sockets {
        assert!(
            Instant::now() < deadline,
            "only {} of {sockets} sockets connected",
            seen.connected.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss_idle = rss(&servers);

    let total = rps * seconds;
    let server_cpu = |servers: &[Child]| servers.iter().map(|s| cpu_ticks(s.id())).sum::<u64>();
    let postgres = database_url.starts_with("postgres");
    let database = database_name(database_url);
    let db_ticks = || (postgres_ticks(None), postgres_ticks(Some(database)));
    let (server_before, db_before) = (server_cpu(&servers), postgres.then(db_ticks));
    let interval = Duration::from_secs_f64(1.0 / rps as f64);
    let started = Instant::now();
    let webhook_url = format!("{PUBLIC_URL}/api/crm/sms/webhook");
    let mut posts = Vec::new();
    // Why webhooks were not answered 200: the status, or the client's error.
    let failures: Arc<Mutex<HashMap<String, u64>>> = Arc::default();
    let answered: Arc<Mutex<Vec<Duration>>> = Arc::default();
    for n in 0..total {
        let due = started + interval * n as u32;
        tokio::time::sleep_until(due.into()).await;
        let agent = n % agents;
        let params: Vec<(String, String)> = vec![
            (
                "MessageSid".into(),
                format!("SM{:032x}", rand::random::<u128>()),
            ),
            ("From".into(), format!("+1415555{:04}", n % 10_000)),
            ("To".into(), format!("+1555{agent:07}")),
            ("Body".into(), format!("bench {n}")),
        ];
        let signature = sign(TOKEN, &webhook_url, &params);
        let addr = addrs[(n % instances) as usize].clone();
        let (http, posted, failures, answered) = (
            http.clone(),
            posted.clone(),
            failures.clone(),
            answered.clone(),
        );
        posts.push(tokio::spawn(async move {
            let at = Instant::now();
            posted.lock().await.insert(n, at);
            let failure = match http
                .post(format!("http://{addr}/api/crm/sms/webhook"))
                .header("X-Twilio-Signature", signature)
                .form(&params)
                .send()
                .await
            {
                Ok(r) if r.status() == 200 => {
                    answered.lock().await.push(at.elapsed());
                    None
                }
                Ok(r) => Some(r.status().to_string()),
                Err(e) if e.is_timeout() => Some("timeout".to_owned()),
                Err(e) if e.is_connect() => Some("connect error".to_owned()),
                Err(_) => Some("request error".to_owned()),
            };
            if let Some(why) = failure {
                *failures.lock().await.entry(why).or_default() += 1;
            }
        }));
    }
    for p in posts {
        let _ = p.await;
    }
    let sent_for = started.elapsed();
    let expected = total * (sockets / agents);
    let wait_until = Instant::now() + Duration::from_secs(10);
    while seen.delivered.load(Ordering::Relaxed) < expected && Instant::now() < wait_until {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let rss_after = rss(&servers);
    let server_ms = ticks_ms(server_cpu(&servers) - server_before);
    let database_ms = db_before.map(|(all, ours)| {
        let (all_after, ours_after) = db_ticks();
        (
            postgres_ms(&ours, &ours_after),
            postgres_ms(&all, &all_after),
        )
    });

    let mut latencies = seen.latencies.lock().await.clone();
    latencies.sort();
    for c in clients {
        c.abort();
    }
    for mut server in servers {
        let _ = server.kill();
        let _ = server.wait();
    }
    if let Some((mut redis, _)) = redis {
        let _ = redis.kill();
        let _ = redis.wait();
    }
    let failures = failures.lock().await.clone();
    let mut answered = answered.lock().await.clone();
    answered.sort();
    Outcome {
        side,
        sent_for,
        failures,
        delivered: seen.delivered.load(Ordering::Relaxed),
        expected,
        duplicates: seen.duplicates.load(Ordering::Relaxed),
        latencies,
        answered,
        server_ms,
        database_ms,
        rss_before,
        rss_idle,
        rss_after,
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn report(o: &Outcome, settings: &Settings) {
    let Settings {
        sockets,
        rps,
        seconds,
        agents,
        instances,
        ref database_url,
    } = *settings;
    let total = (rps * seconds).max(1) as f64;
    println!(
        "{} e2e benchmark ({})",
        o.side.name(),
        if database_url.starts_with("sqlite") {
            "SQLite"
        } else {
            "PostgreSQL"
        }
    );
    if instances > 1 {
        println!(
            "  instances: {instances}, fan-out through Redis (each agent's sockets split across them, webhooks posted in turn)"
        );
    }
    println!(
        "  sockets: {sockets} across {agents} agents; webhooks: {} at {rps}/s over {:.1} s",
        rps * seconds,
        o.sent_for.as_secs_f64()
    );
    println!(
        "  webhook failures: {} {:?}",
        o.failures.values().sum::<u64>(),
        o.failures
    );
    println!(
        "  message:new delivered: {} of {} ({:.2} %)",
        o.delivered,
        o.expected,
        100.0 * o.delivered as f64 / o.expected.max(1) as f64
    );
    println!("  message:new received twice by a socket: {}", o.duplicates);
    println!(
        "  webhook in → message:new at client: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        ms(percentile(&o.latencies, 0.50)),
        ms(percentile(&o.latencies, 0.99)),
        ms(o.latencies.last().copied().unwrap_or_default())
    );
    println!(
        "  webhook in → its 200: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        ms(percentile(&o.answered, 0.50)),
        ms(percentile(&o.answered, 0.99)),
        ms(o.answered.last().copied().unwrap_or_default())
    );
    println!(
        "  CPU per webhook over the load: server {:.3} ms, database {}",
        o.server_ms / total,
        o.database_ms.map_or(
            "not measured (SQLite is in the server)".to_owned(),
            |(ours, all)| format!(
                "{:.3} ms ({}'s backends and the server's background processes; \
                 every postgres process: {:.3} ms)",
                ours / total,
                database_name(database_url),
                all / total
            )
        )
    );
    println!(
        "  server RSS (all instances): {} KiB before sockets, {} KiB with {sockets} idle sockets ({:.1} KiB per socket), {} KiB after the load",
        o.rss_before,
        o.rss_idle,
        o.rss_idle.saturating_sub(o.rss_before) as f64 / sockets.max(1) as f64,
        o.rss_after
    );
}

/// The runs side by side, one line each.
fn table(outcomes: &[Outcome], settings: &Settings) {
    let total = (settings.rps * settings.seconds).max(1) as f64;
    println!(
        "\n{} sockets, {} webhooks/s × {} s\n",
        settings.sockets, settings.rps, settings.seconds
    );
    println!(
        "| server | delivered | twice | not 200 | p50 | p99 | max | its 200, p50 / p99 | server CPU / webhook | PostgreSQL CPU / webhook | memory per idle socket |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for o in outcomes {
        println!(
            "| {} | {:.2} % | {} | {} | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} / {:.1} ms | {:.3} ms | {} | {:.1} KiB |",
            o.side.name(),
            100.0 * o.delivered as f64 / o.expected.max(1) as f64,
            o.duplicates,
            o.failures.values().sum::<u64>(),
            ms(percentile(&o.latencies, 0.50)),
            ms(percentile(&o.latencies, 0.99)),
            ms(o.latencies.last().copied().unwrap_or_default()),
            ms(percentile(&o.answered, 0.50)),
            ms(percentile(&o.answered, 0.99)),
            o.server_ms / total,
            o.database_ms.map_or("-".to_owned(), |(ours, _)| format!(
                "{:.3} ms",
                ours / total
            )),
            o.rss_idle.saturating_sub(o.rss_before) as f64 / settings.sockets.max(1) as f64,
        );
    }
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let settings = Settings {
        sockets: env_or("BENCH_SOCKETS", 1000),
        rps: env_or("BENCH_RPS", 500),
        seconds: env_or("BENCH_SECONDS", 10),
        agents: env_or("BENCH_AGENTS", 100).max(1),
        instances: env_or("BENCH_INSTANCES", 1).max(1),
        database_url: std::env::var("BENCH_DATABASE_URL")
            .unwrap_or_else(|_| format!("sqlite://{}", dir.path().join("bench.db").display())),
    };
    let postgres = settings.database_url.starts_with("postgres");
    assert!(
        settings.instances == 1 || postgres,
        "BENCH_INSTANCES > 1 needs BENCH_DATABASE_URL=postgres://…"
    );
    let compare = std::env::var("BENCH_COMPARE").is_ok_and(|v| v == "1");
    let sides = if compare {
        let mut sides = vec![Side::smsdesk()];
        if let Ok(binary) = std::env::var("BENCH_SMSDESK_BEFORE") {
            sides.push(Side::Smsdesk {
                name: "smsdesk (before)",
                binary: binary.into(),
            });
        }
        sides.push(Side::Node);
        sides
    } else {
        match std::env::var("BENCH_SERVER").as_deref() {
            Ok("node") => vec![Side::Node],
            Ok("smsdesk") | Err(_) => vec![Side::smsdesk()],
            Ok(other) => panic!("BENCH_SERVER={other}: smsdesk or node"),
        }
    };
    if sides.contains(&Side::Node) {
        assert!(
            postgres && settings.instances == 1,
            "the Node reference runs one instance on PostgreSQL: BENCH_DATABASE_URL=postgres://…"
        );
        install_node_reference();
    }
    let mut outcomes = Vec::new();
    for side in sides {
        // Each side on a database of its own making, so neither reads the other's rows.
        if compare {
            recreate_database(&settings.database_url).await;
        }
        let outcome = run(side, &settings).await;
        report(&outcome, &settings);
        outcomes.push(outcome);
    }
    if compare {
        table(&outcomes, &settings);
    }
}
