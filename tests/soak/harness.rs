//! The soak: two instances behind nginx (`deploy/`'s configuration) on a PostgreSQL and a Redis
//! of its own, under signed inbound webhooks at a steady rate, sockets of several agents and a
//! trickle of sends, while Redis is restarted twice, PostgreSQL once, and one instance is
//! killed with `kill -9` and started again. [`run`] returns what it counted ([`Report`]);
//! `tests/soak.rs` runs it for 3 minutes and asserts on the counts, `benches/soak.rs` for as
//! long as it is told and prints them (docs/reliability.md#soak).
//!
//! Each socket is a lean engine.io client of its own (a websocket, no polling) that counts the
//! inbound messages it gets live and, as the page does, calls `sync` on every connect and on
//! `resync` to recover the rest. Each webhook is retried with its `MessageSid` until it is
//! answered `2xx`, as Twilio retries; each send with its `clientId` until it is taken.

use std::fmt;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::client::{Client, socket, syncing};
use crate::helpers::{
    FAKE_ACCOUNT, FAKE_TOKEN, FakeTwilio, Nginx, PUBLIC_URL, RedisServer, ServerProcess, ci,
    new_sid, nginx_binary, post_signed, wait_until_within,
};
use crate::postgres::{Postgres, postgres_bin_dir};

/// One agent's sockets at most: under the default `MAX_SOCKETS_PER_AGENT` even if they all
/// land on one instance.
const SOCKETS_PER_AGENT: usize = 50;
/// The page waits before it reconnects; a send or a status callback is posted again.
pub const RETRY_AFTER: Duration = Duration::from_millis(500);
/// Twilio retries a webhook it got no `2xx` for, not at once: a while after. A retry later
/// than `ANNOUNCED_WITHIN` (2 s, src/webhooks.rs) announces a message its first instance
/// stored and died before announcing.
const WEBHOOK_RETRY_AFTER: Duration = Duration::from_secs(3);
/// How long the run may take, once the load stops, to settle: every webhook answered, every
/// send delivered, every socket caught up.
const SETTLE_WITHIN: Duration = Duration::from_secs(120);

pub struct Config {
    pub duration: Duration,
    pub webhooks_per_second: u32,
    pub sockets: usize,
    pub send_every: Duration,
    pub rss_every: Duration,
}

/// What one socket ended with.
#[derive(Debug)]
pub struct SocketCount {
    pub live: usize,
    pub recovered: usize,
    pub missing: usize,
    pub connects: u64,
    /// The first few of its agent's messages it never saw, by number.
    pub missed: Vec<usize>,
}

#[derive(Debug, Default)]
pub struct Report {
    pub seconds: f64,
    pub faults: Vec<(f64, String)>,
    /// Webhooks posted (one `MessageSid` each), and how they ended.
    pub webhooks: usize,
    pub webhooks_answered: usize,
    pub webhooks_refused: usize,
    pub webhook_retries: u64,
    /// The webhooks that were not answered `2xx` at once, by number.
    pub retried: Vec<usize>,
    /// Inbound rows in the database, and their distinct `MessageSid`s and bodies.
    pub stored: i64,
    pub stored_sids: i64,
    pub stored_bodies: i64,
    pub sockets: Vec<SocketCount>,
    /// Sends asked for (one `clientId` each), how many the app took, and retries.
    pub sends: usize,
    pub sends_taken: usize,
    pub sends_refused: usize,
    pub send_retries: u64,
    /// Creates the fake Twilio got, and distinct bodies among them.
    pub twilio_creates: usize,
    pub twilio_distinct: usize,
    /// Outbound rows, distinct `clientId`s among them, and how many are `delivered`.
    pub outbound: i64,
    pub outbound_client_ids: i64,
    pub delivered: i64,
    /// `(seconds, RSS in KiB of instance A, of instance B)`; 0 while one is down.
    pub rss: Vec<(f64, u64, u64)>,
    /// Whether everything settled within [`SETTLE_WITHIN`] after the load stopped.
    pub settled: bool,
}

impl Report {
    pub fn live(&self) -> usize {
        self.sockets.iter().map(|s| s.live).sum()
    }
    pub fn recovered(&self) -> usize {
        self.sockets.iter().map(|s| s.recovered).sum()
    }
    pub fn missing(&self) -> usize {
        self.sockets.iter().map(|s| s.missing).sum()
    }
    pub fn reconnects(&self) -> u64 {
        self.sockets
            .iter()
            .map(|s| s.connects.saturating_sub(1))
            .sum()
    }

    /// The RSS samples as a Markdown table, in MiB.
    pub fn rss_table(&self) -> String {
        let mut t = String::from("| s | A (MiB) | B (MiB) |\n|---:|---:|---:|\n");
        for (s, a, b) in &self.rss {
            t.push_str(&format!(
                "| {s:.0} | {:.1} | {:.1} |\n",
                *a as f64 / 1024.0,
                *b as f64 / 1024.0
            ));
        }
        t
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "soak: {:.0} s, settled: {}", self.seconds, self.settled)?;
        for (at, what) in &self.faults {
            writeln!(f, "  at {at:.0} s: {what}")?;
        }
        writeln!(
            f,
            "webhooks: {} posted, {} answered 2xx, {} refused 4xx, {} retries",
            self.webhooks, self.webhooks_answered, self.webhooks_refused, self.webhook_retries
        )?;
        writeln!(
            f,
            "stored inbound: {} rows, {} distinct MessageSids, {} distinct bodies",
            self.stored, self.stored_sids, self.stored_bodies
        )?;
        writeln!(
            f,
            "sockets: {}, {} reconnects; messages delivered live {}, recovered by sync {}, missing {}",
            self.sockets.len(),
            self.reconnects(),
            self.live(),
            self.recovered(),
            self.missing()
        )?;
        let mut missed: Vec<(usize, usize)> = Vec::new();
        for n in self.sockets.iter().flat_map(|s| &s.missed) {
            match missed.iter_mut().find(|(m, _)| m == n) {
                Some((_, sockets)) => *sockets += 1,
                None => missed.push((*n, 1)),
            }
        }
        for (n, sockets) in missed {
            let retried = if self.retried.contains(&n) {
                ", retried"
            } else {
                ""
            };
            writeln!(f, "  message {n} missed by {sockets} sockets{retried}")?;
        }
        writeln!(f, "  webhooks retried: {:?}", self.retried)?;
        writeln!(
            f,
            "sends: {} asked, {} taken, {} refused, {} retries; Twilio got {} creates ({} distinct)",
            self.sends,
            self.sends_taken,
            self.sends_refused,
            self.send_retries,
            self.twilio_creates,
            self.twilio_distinct
        )?;
        writeln!(
            f,
            "outbound: {} rows, {} distinct clientIds, {} delivered",
            self.outbound, self.outbound_client_ids, self.delivered
        )?;
        write!(f, "RSS:\n{}", self.rss_table())
    }
}

/// Runs the soak, or returns `None` (said why) when nginx, redis-server or PostgreSQL's
/// `initdb` is missing outside CI.
pub async fn run(config: Config) -> Option<Report> {
    let nginx_bin = nginx_binary();
    let pg_bin = postgres_bin_dir();
    for (missing, what) in [
        (nginx_bin.is_none(), "nginx"),
        (pg_bin.is_none(), "PostgreSQL's initdb"),
    ] {
        if missing {
            assert!(
                !ci(),
                "{what} is not installed, but CI is: the soak must run in CI (as .ci/run installs it)"
            );
            eprintln!("skipped: {what} is not installed, so the soak does not run here");
            return None;
        }
    }
    let mut redis = RedisServer::start().await?;
    let postgres = Postgres::start(pg_bin.unwrap());
    let fake = Arc::new(FakeTwilio::start().await);
    let agents = config.sockets.div_ceil(SOCKETS_PER_AGENT).max(2);
    let mut env = vec![
        ("DATABASE_URL", postgres.url()),
        ("REDIS_URL", redis.url()),
        ("TWILIO_ACCOUNT_SID", FAKE_ACCOUNT.into()),
        ("TWILIO_AUTH_TOKEN", FAKE_TOKEN.into()),
        ("TWILIO_API_BASE", fake.url.clone()),
        ("PUBLIC_URL", PUBLIC_URL.into()),
        ("TRUSTED_PROXIES", "127.0.0.1".into()),
    ];
    // The servers log warnings only, to the test's stderr; `SOAK_SERVER_LOG` (a `RUST_LOG`
    // filter) asks them for more when a run is to be looked into.
    if let Ok(filter) = std::env::var("SOAK_SERVER_LOG") {
        env.push(("RUST_LOG", filter));
    }
    let mut instances = [ServerProcess::new(env.clone()), ServerProcess::new(env)];
    for k in 0..agents {
        instances[0].add_agent(&format!("agent{k}@soak.test"), &number(k));
    }
    for instance in &mut instances {
        instance.start().await;
    }
    let nginx = Nginx::start(
        &nginx_bin.unwrap(),
        [port(&instances[0]), port(&instances[1])],
        4 * config.sockets + 1024,
    )
    .await;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .unwrap();
    let mut tokens = Vec::new();
    for k in 0..agents {
        tokens.push(login(&http, &nginx.url, &format!("agent{k}@soak.test")).await);
    }
    let ctx = Arc::new(Ctx {
        http,
        lb: nginx.url.clone(),
        agents,
        tokens,
        counts: Counts::default(),
    });
    let pids = Arc::new([AtomicU32::new(0), AtomicU32::new(0)]);
    for (pid, instance) in pids.iter().zip(&instances) {
        pid.store(instance.pid().unwrap_or(0), Ordering::SeqCst);
    }

    // Every socket connected before the load starts.
    let clients: Vec<Arc<Client>> = (0..config.sockets)
        .map(|i| Arc::new(Client::new(i % agents)))
        .collect();
    let mut background = JoinSet::new();
    for client in &clients {
        background.spawn(socket(ctx.clone(), client.clone()));
        background.spawn(syncing(ctx.clone(), client.clone()));
    }
    wait_until_within(
        "every socket to connect",
        Duration::from_secs(60 + config.sockets as u64 / 10),
        async || {
            clients
                .iter()
                .all(|c| c.connects.load(Ordering::SeqCst) > 0)
        },
    )
    .await;

    let started = Instant::now();
    let rss = Arc::new(Mutex::new(Vec::new()));
    background.spawn(sample_rss(
        pids.clone(),
        rss.clone(),
        started,
        config.rss_every,
    ));
    background.spawn(deliver_statuses(ctx.clone(), fake.clone()));
    let webhooks = tokio::spawn(post_webhooks(
        ctx.clone(),
        config.webhooks_per_second,
        started + config.duration,
    ));
    let sends = tokio::spawn(make_sends(
        ctx.clone(),
        config.send_every,
        started + config.duration,
    ));

    // The faults, at fixed fractions of the run.
    let mut faults = Vec::new();
    let at = |fraction: f64| started + config.duration.mul_f64(fraction);
    tokio::time::sleep_until(at(0.2)).await;
    redis.restart().await;
    faults.push((
        started.elapsed().as_secs_f64(),
        "Redis restarted".to_owned(),
    ));
    tokio::time::sleep_until(at(0.4)).await;
    tokio::task::block_in_place(|| postgres.restart());
    faults.push((
        started.elapsed().as_secs_f64(),
        "PostgreSQL restarted".to_owned(),
    ));
    tokio::time::sleep_until(at(0.6)).await;
    redis.restart().await;
    faults.push((
        started.elapsed().as_secs_f64(),
        "Redis restarted".to_owned(),
    ));
    tokio::time::sleep_until(at(0.75)).await;
    instances[0].kill_9();
    pids[0].store(0, Ordering::SeqCst);
    faults.push((
        started.elapsed().as_secs_f64(),
        "instance A killed (-9)".to_owned(),
    ));
    instances[0].start().await;
    pids[0].store(instances[0].pid().unwrap_or(0), Ordering::SeqCst);
    faults.push((
        started.elapsed().as_secs_f64(),
        "instance A back".to_owned(),
    ));

    let settle_by = started + config.duration + SETTLE_WITHIN;
    let posted = tokio::time::timeout_at(settle_by, webhooks).await;
    let asked = tokio::time::timeout_at(settle_by, sends).await;
    let (webhooks, sends) = match (posted, asked) {
        (Ok(w), Ok(s)) => (w.unwrap(), s.unwrap()),
        _ => (0, 0),
    };
    let pool = sqlx::PgPool::connect(&postgres.url()).await.unwrap();
    let settled = webhooks > 0
        && tokio::time::timeout_at(settle_by, async {
            loop {
                let delivered: i64 = sqlx::query_scalar(
                    "SELECT count(*) FROM messages WHERE direction = 'outbound' AND status = 'delivered'",
                )
                .fetch_one(&pool)
                .await
                .unwrap_or(0);
                let caught_up = clients
                    .iter()
                    .all(|c| c.count(expected(webhooks, agents, c.agent), agents).missing == 0);
                if caught_up && delivered as usize >= sends {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        })
        .await
        .is_ok();
    background.abort_all();

    let (stored, stored_sids, stored_bodies): (i64, i64, i64) = sqlx::query_as(
        "SELECT count(*), count(DISTINCT twilio_sid), count(DISTINCT body) \
         FROM messages WHERE direction = 'inbound'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let (outbound, outbound_client_ids, delivered): (i64, i64, i64) = sqlx::query_as(
        "SELECT count(*), count(DISTINCT client_id), \
         count(*) FILTER (WHERE status = 'delivered') \
         FROM messages WHERE direction = 'outbound'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    pool.close().await;
    let creates: Vec<String> = fake
        .state
        .sent
        .lock()
        .unwrap()
        .iter()
        .filter_map(|form| form.get("Body").cloned())
        .collect();
    let mut distinct = creates.clone();
    distinct.sort();
    distinct.dedup();
    let counts = &ctx.counts;
    let report = Report {
        seconds: started.elapsed().as_secs_f64(),
        faults,
        webhooks,
        webhooks_answered: counts.webhooks_answered.load(Ordering::SeqCst),
        webhooks_refused: counts.webhooks_refused.load(Ordering::SeqCst),
        webhook_retries: counts.webhook_retries.load(Ordering::SeqCst),
        retried: counts.retried.lock().unwrap().clone(),
        stored,
        stored_sids,
        stored_bodies,
        sockets: clients
            .iter()
            .map(|c| c.count(expected(webhooks, agents, c.agent), agents))
            .collect(),
        sends,
        sends_taken: counts.sends_taken.load(Ordering::SeqCst),
        sends_refused: counts.sends_refused.load(Ordering::SeqCst),
        send_retries: counts.send_retries.load(Ordering::SeqCst),
        twilio_creates: creates.len(),
        twilio_distinct: distinct.len(),
        outbound,
        outbound_client_ids,
        delivered,
        rss: rss.lock().unwrap().clone(),
        settled,
    };
    drop(nginx);
    Some(report)
}

/// What every task shares.
pub struct Ctx {
    pub http: reqwest::Client,
    /// nginx's address: everything goes through it.
    pub lb: String,
    pub agents: usize,
    pub tokens: Vec<String>,
    counts: Counts,
}

#[derive(Default)]
struct Counts {
    webhooks_answered: AtomicUsize,
    webhooks_refused: AtomicUsize,
    webhook_retries: AtomicU64,
    retried: Mutex<Vec<usize>>,
    sends_taken: AtomicUsize,
    sends_refused: AtomicUsize,
    send_retries: AtomicU64,
}

/// Agent `k`'s number; inbound message `n` goes to agent `n % agents`.
fn number(k: usize) -> String {
    format!("+1555000{:04}", 1000 + k)
}

/// A contact among a hundred.
fn contact(n: usize) -> String {
    format!("+1415555{:04}", 100 + n % 100)
}

/// How many of `webhooks` messages went to agent `k`.
fn expected(webhooks: usize, agents: usize, k: usize) -> usize {
    (webhooks + agents - 1 - k) / agents
}

fn port(server: &ServerProcess) -> u16 {
    server.addr.rsplit(':').next().unwrap().parse().unwrap()
}

async fn login(http: &reqwest::Client, lb: &str, email: &str) -> String {
    loop {
        let r = http
            .post(format!("{lb}/api/auth/login"))
            .json(&json!({"email": email, "password": "password123"}))
            .send()
            .await
            .unwrap();
        match r.status().as_u16() {
            200 => {
                let body: Value = r.json().await.unwrap();
                return body["token"].as_str().unwrap().to_owned();
            }
            429 | 503 => tokio::time::sleep(Duration::from_secs(1)).await,
            status => panic!("login of {email}: {status} {}", r.text().await.unwrap()),
        }
    }
}

/// Posts webhooks at `rate` a second until `until`, each retried until answered; how many.
async fn post_webhooks(ctx: Arc<Ctx>, rate: u32, until: Instant) -> usize {
    let mut tick = tokio::time::interval(Duration::from_secs(1) / rate);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut posts = JoinSet::new();
    let mut n = 0;
    while tick.tick().await < until {
        posts.spawn(webhook(ctx.clone(), n));
        n += 1;
    }
    posts.join_all().await;
    n
}

async fn webhook(ctx: Arc<Ctx>, n: usize) {
    let params: Vec<(String, String)> = [
        ("MessageSid", new_sid()),
        ("AccountSid", FAKE_ACCOUNT.to_owned()),
        ("From", contact(n)),
        ("To", number(n % ctx.agents)),
        ("Body", format!("in {n}")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let url = format!("{PUBLIC_URL}/api/crm/sms/webhook");
    loop {
        match post_signed(&ctx.http, &ctx.lb, &url, &params).await {
            Ok(r) if r.status().is_success() => {
                ctx.counts.webhooks_answered.fetch_add(1, Ordering::SeqCst);
                return;
            }
            Ok(r) if r.status().is_client_error() => {
                ctx.counts.webhooks_refused.fetch_add(1, Ordering::SeqCst);
                return;
            }
            _ => {
                ctx.counts.webhook_retries.fetch_add(1, Ordering::SeqCst);
                ctx.counts.retried.lock().unwrap().push(n);
                tokio::time::sleep(WEBHOOK_RETRY_AFTER).await;
            }
        }
    }
}

/// Sends one message every `every` as agent 0 until `until`, each retried with its
/// `clientId` until taken; how many.
async fn make_sends(ctx: Arc<Ctx>, every: Duration, until: Instant) -> usize {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut sends = JoinSet::new();
    let mut k = 0;
    while tick.tick().await < until {
        sends.spawn(send(ctx.clone(), k));
        k += 1;
    }
    sends.join_all().await;
    k
}

async fn send(ctx: Arc<Ctx>, k: usize) {
    let body = json!({"to": contact(k), "body": format!("out {k}"), "clientId": format!("c-{k}")});
    loop {
        let answer = ctx
            .http
            .post(format!("{}/api/crm/sms/send", ctx.lb))
            .bearer_auth(&ctx.tokens[0])
            .json(&body)
            .send()
            .await;
        match answer.map(|r| r.status().as_u16()) {
            Ok(200 | 202) => {
                ctx.counts.sends_taken.fetch_add(1, Ordering::SeqCst);
                return;
            }
            Ok(status) if (400..500).contains(&status) && status != 429 => {
                ctx.counts.sends_refused.fetch_add(1, Ordering::SeqCst);
                return;
            }
            _ => {
                ctx.counts.send_retries.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(RETRY_AFTER).await;
            }
        }
    }
}

/// Twilio's side: posts `delivered` (through nginx) for every message the fake took, each
/// retried until answered `200`.
async fn deliver_statuses(ctx: Arc<Ctx>, fake: Arc<FakeTwilio>) {
    let mut done = 0;
    loop {
        let taken: Vec<_> = fake.state.accepted.lock().unwrap()[done..].to_vec();
        done += taken.len();
        for (sid, form) in taken {
            let params: Vec<(String, String)> = vec![
                ("MessageSid".into(), sid),
                ("MessageStatus".into(), "delivered".into()),
                ("AccountSid".into(), FAKE_ACCOUNT.into()),
            ];
            let callback = form["StatusCallback"].clone();
            while !post_signed(&ctx.http, &ctx.lb, &callback, &params)
                .await
                .is_ok_and(|r| r.status() == 200)
            {
                tokio::time::sleep(RETRY_AFTER).await;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Samples each instance's resident memory from `/proc/<pid>/status` every `every`.
async fn sample_rss(
    pids: Arc<[AtomicU32; 2]>,
    rss: Arc<Mutex<Vec<(f64, u64, u64)>>>,
    started: Instant,
    every: Duration,
) {
    let read = |pid: u32| -> u64 {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            })
            .unwrap_or(0)
    };
    loop {
        let a = read(pids[0].load(Ordering::SeqCst));
        let b = read(pids[1].load(Ordering::SeqCst));
        rss.lock()
            .unwrap()
            .push((started.elapsed().as_secs_f64(), a, b));
        tokio::time::sleep(every).await;
    }
}
