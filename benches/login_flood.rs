//! Login flood: the release server as its own process, then many concurrent
//! `POST /api/auth/login` with wrong passwords, each from its own client address (through
//! `X-Forwarded-For` from a trusted proxy) and for its own unknown email, so that neither
//! the per-address nor the per-account throttle stops them before the password check: what
//! is left to bound memory is the password hasher. Reports the server's resident memory
//! before, at its peak (the kernel's high-water mark) and after, and what the clients got.
//!
//! `cargo bench --bench login_flood` (env: BENCH_LOGINS=300, BENCH_SETTLE_SECONDS=10,
//! BENCH_DATABASE_URL=postgres://… to use PostgreSQL instead of SQLite).

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use smsdesk::domain::NewAgent;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A `/proc/<pid>/status` figure in KiB: `VmRSS` (now) or `VmHWM` (peak so far).
fn proc_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

#[tokio::main]
async fn main() {
    let logins = env_or("BENCH_LOGINS", 300);
    let settle = Duration::from_secs(env_or("BENCH_SETTLE_SECONDS", 10));
    let dir = tempfile::tempdir().unwrap();
    let database_url = std::env::var("BENCH_DATABASE_URL")
        .unwrap_or_else(|_| format!("sqlite://{}", dir.path().join("bench.db").display()));

    // One real agent, so the flood's last request can show that logins still work.
    let store = smsdesk::store::connect(
        &smsdesk::config::DatabaseUrl::parse(&database_url).unwrap(),
        Duration::from_secs(10),
    )
    .await
    .expect("database");
    let email = format!("agent-{}@bench.test", rand::random::<u32>());
    let hash = smsdesk::auth::hash_password("bench-password").unwrap();
    store
        .create_agent(
            &NewAgent::parse_invited(&email, "Agent", &["+15550000001".to_owned()]).unwrap(),
            &hash,
        )
        .await
        .unwrap()
        .unwrap();
    drop(store);

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let mut server: Child = Command::new(env!("CARGO_BIN_EXE_smsdesk"))
        .env("PORT", port.to_string())
        .env("DATABASE_URL", &database_url)
        .env("TRUSTED_PROXIES", "127.0.0.1")
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .spawn()
        .expect("start the server");
    let pid = server.id();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while http
        .get(format!("{base}/readyz"))
        .send()
        .await
        .map(|r| r.status() != 200)
        .unwrap_or(true)
    {
        assert!(Instant::now() < deadline, "server not ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_before = proc_kib(pid, "VmRSS:");
    let peak_before = proc_kib(pid, "VmHWM:");

    let started = Instant::now();
    let requests = (0..logins).map(|i| {
        let (http, base) = (http.clone(), base.clone());
        async move {
            let sent = Instant::now();
            let status = http
                .post(format!("{base}/api/auth/login"))
                .header(
                    "X-Forwarded-For",
                    format!("10.{}.{}.{}", i / 65_536 % 256, i / 256 % 256, i % 256),
                )
                .json(&serde_json::json!({
                    "email": format!("nobody-{i}@bench.test"),
                    "password": "wrong-password",
                }))
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0);
            (status, sent.elapsed())
        }
    });
    let answers = futures_util::future::join_all(requests).await;
    let flood_took = started.elapsed();
    let rss_end = proc_kib(pid, "VmRSS:");
    let peak = proc_kib(pid, "VmHWM:");

    let mut statuses: BTreeMap<u16, (u64, Duration)> = BTreeMap::new();
    for (status, took) in &answers {
        let e = statuses.entry(*status).or_default();
        e.0 += 1;
        e.1 = e.1.max(*took);
    }
    let real = http
        .post(format!("{base}/api/auth/login"))
        .header("X-Forwarded-For", "192.0.2.1")
        .json(&serde_json::json!({"email": email, "password": "bench-password"}))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0);

    tokio::time::sleep(settle).await;
    let rss_after = proc_kib(pid, "VmRSS:");

    println!(
        "smsdesk login flood ({})",
        if database_url.starts_with("sqlite") {
            "SQLite"
        } else {
            "PostgreSQL"
        }
    );
    println!(
        "  {logins} concurrent wrong-password logins, each from its own address and email, answered in {:.2} s",
        flood_took.as_secs_f64()
    );
    for (status, (n, slowest)) in &statuses {
        println!(
            "    {status}: {n} (slowest {:.0} ms)",
            slowest.as_secs_f64() * 1e3
        );
    }
    println!("  then the real agent's login: {real}");
    println!(
        "  server RSS: {} before, peak {} (high-water mark before the flood: {}), {} at the flood's end, {} after {} s idle",
        mib(rss_before),
        mib(peak),
        mib(peak_before),
        mib(rss_end),
        mib(rss_after),
        settle.as_secs()
    );
    let _ = server.kill();
    let _ = server.wait();
}
