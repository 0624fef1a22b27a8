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
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("websocket");
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

#[tokio::main]
async fn main() {
    let sockets = env_or("BENCH_SOCKETS", 1000);
    let rps = env_or("BENCH_RPS", 500);
    let seconds = env_or("BENCH_SECONDS", 10);
    let agents = env_or("BENCH_AGENTS", 100).max(1);
    let instances = env_or("BENCH_INSTANCES", 1).max(1);
    let dir = tempfile::tempdir().unwrap();
    let database_url = std::env::var("BENCH_DATABASE_URL")
        .unwrap_or_else(|_| format!("sqlite://{}", dir.path().join("bench.db").display()));
    assert!(
        instances == 1 || database_url.starts_with("postgres"),
        "BENCH_INSTANCES > 1 needs BENCH_DATABASE_URL=postgres://…"
    );

    // Agents and sessions straight into the database, before the server starts.
    let store = smsdesk::store::connect(
        &smsdesk::config::DatabaseUrl::parse(&database_url).unwrap(),
        Duration::from_secs(10),
    )
    .await
    .expect("database");
    let hash = smsdesk::auth::hash_password("bench-password").unwrap();
    let mut tokens = Vec::new();
    for a in 0..agents {
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
    drop(store);

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
        let mut command = Command::new(env!("CARGO_BIN_EXE_smsdesk"));
        command
            .env("PORT", port.to_string())
            .env("DATABASE_URL", &database_url)
            .env("PUBLIC_URL", PUBLIC_URL)
            .env("TWILIO_ACCOUNT_SID", ACCOUNT)
            .env("TWILIO_AUTH_TOKEN", TOKEN)
            .env("TWILIO_API_BASE", "http://127.0.0.1:9")
            .env("RUST_LOG", "warn")
            .env(
                "MAX_SOCKETS_PER_AGENT",
                sockets.div_ceil(agents).to_string(),
            )
            .stdout(Stdio::null());
        if let Some((_, url)) = &redis {
            command.env("REDIS_URL", url);
        }
        // redis-server may still be starting: smsdesk refuses to start without it.
        let addr = format!("127.0.0.1:{port}");
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
        servers.push(server);
        addrs.push(addr);
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
    let database = database_name(&database_url);
    let db_ticks = || (postgres_ticks(None), postgres_ticks(Some(database)));
    let (server_before, db_before) = (server_cpu(&servers), postgres.then(db_ticks));
    let interval = Duration::from_secs_f64(1.0 / rps as f64);
    let started = Instant::now();
    let webhook_url = format!("{PUBLIC_URL}/api/crm/sms/webhook");
    let mut posts = Vec::new();
    // Why webhooks were not answered 200: the status, or the client's error.
    let failures: Arc<Mutex<HashMap<String, u64>>> = Arc::default();
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
        let (http, posted, failures) = (http.clone(), posted.clone(), failures.clone());
        posts.push(tokio::spawn(async move {
            posted.lock().await.insert(n, Instant::now());
            let failure = match http
                .post(format!("http://{addr}/api/crm/sms/webhook"))
                .header("X-Twilio-Signature", signature)
                .form(&params)
                .send()
                .await
            {
                Ok(r) if r.status() == 200 => None,
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
    let db_ms = db_before.map(|(all, ours)| {
        let (all_after, ours_after) = db_ticks();
        (
            postgres_ms(&all, &all_after),
            postgres_ms(&ours, &ours_after),
        )
    });

    let mut lat = seen.latencies.lock().await.clone();
    lat.sort();
    let got = seen.delivered.load(Ordering::Relaxed);
    println!(
        "smsdesk e2e benchmark ({})",
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
        "  sockets: {sockets} across {agents} agents; webhooks: {total} at {rps}/s over {:.1} s",
        sent_for.as_secs_f64()
    );
    let failures = failures.lock().await;
    println!(
        "  webhook failures: {} {:?}",
        failures.values().sum::<u64>(),
        *failures
    );
    println!(
        "  message:new delivered: {got} of {expected} ({:.2} %)",
        100.0 * got as f64 / expected.max(1) as f64
    );
    println!(
        "  message:new received twice by a socket: {}",
        seen.duplicates.load(Ordering::Relaxed)
    );
    println!(
        "  webhook in → message:new at client: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        percentile(&lat, 0.50).as_secs_f64() * 1e3,
        percentile(&lat, 0.99).as_secs_f64() * 1e3,
        lat.last().copied().unwrap_or_default().as_secs_f64() * 1e3
    );
    println!(
        "  CPU per webhook over the load: server {:.3} ms, database {}",
        server_ms / total.max(1) as f64,
        db_ms.map_or(
            "not measured (SQLite is in the server)".to_owned(),
            |(all, ours)| format!(
                "{:.3} ms ({database}'s backends and the server's background processes; \
                 every postgres process: {:.3} ms)",
                ours / total.max(1) as f64,
                all / total.max(1) as f64
            )
        )
    );
    println!(
        "  server RSS (all instances): {} KiB before sockets, {} KiB with {sockets} idle sockets ({:.1} KiB per socket), {} KiB after the load",
        rss_before,
        rss_idle,
        (rss_idle.saturating_sub(rss_before)) as f64 / sockets.max(1) as f64,
        rss_after
    );
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
}
