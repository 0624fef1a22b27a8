//! Scale of data: loads a large inbox straight into a fresh database, starts the release
//! server on it as its own process, and times the reads an agent's page makes: the
//! conversation list (first page, and the second through `nextCursor`), a thread page,
//! `sync`, the team inbox's views (Mine, Unassigned, Open, Snoozed, Closed: first and second
//! page) and their counts, and searches (`?q=`: names, phones, message words, common and
//! rare). Reports
//! p50/p99/max of each, from sending to the last byte of the answer.
//!
//! The data: agent 1 holds two numbers, agent 2 shares the second one (a shared inbox);
//! `BENCH_CONVERSATIONS` conversations (default 100,000) alternate between the two numbers,
//! and `BENCH_MESSAGES` messages (default 1,000,000; at least twice the conversations) are
//! spread over them in an order that interleaves their activity, with every hundredth in one
//! long thread. Every tenth contact has a name (eight names with accents, and its number).
//! The team inbox: six conversations in ten are closed, one snoozed, three open; a third is
//! assigned to agent 1, a third of the shared number's to agent 2, the rest to no one.
//! The rows are written as the server writes them: `seq` per message, each
//! conversation's `activity` and `last_message_id` from its newest message, unread counts,
//! and the change counter (SQLite) or the seq offset the server raises at start (PostgreSQL).
//!
//! `cargo bench --bench data_scale` (env: BENCH_CONVERSATIONS, BENCH_MESSAGES,
//! BENCH_REQUESTS=200, BENCH_DATABASE_URL=postgres://…/db to load a fresh database created
//! on that server instead of a SQLite temp file, BENCH_KEEP_DATABASE=1 to keep it and print
//! its URL, e.g. to read the query plans; BENCH_REUSE_DATABASE=<that URL> to time it again
//! without loading, and BENCH_ONLY=sync,12021 to time only the requests whose names
//! contain one of those texts).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use smsdesk::domain::NewAgent;
use smsdesk::model::Status;
use sqlx::Connection;

const PASSWORD: &str = "bench-password";
const NUMBERS: [&str; 2] = ["+15550000001", "+15550000002"];
/// Messages go round the conversations in steps of this prime, so that neighbours in
/// activity belong to far-apart conversations on either number.
const STEP: u64 = 7919;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e3)
}

/// Messages 1 to `$1` (the number is also the `seq`), over `$2` conversations: every hundredth
/// in the first (the long thread), the others in turn in steps of `$3`, so that every
/// conversation gets at least one. Plain SQL that both backends run alike.
const INSERT_MESSAGES: &str = "\
    WITH RECURSIVE n (k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM n WHERE k < $1), \
    placed (k, conversation) AS ( \
        SELECT k, CASE WHEN k % 100 = 0 THEN 1 ELSE ((k - k / 100 - 1) * $3) % $2 + 1 END \
        FROM n) \
    INSERT INTO messages (conversation_id, direction, from_number, to_number, body, media, \
        status, status_rank, twilio_sid, agent_id, segments, created_at, updated_at, seq) \
    SELECT c.id, \
        CASE WHEN p.k % 3 = 0 THEN 'outbound' ELSE 'inbound' END, \
        CASE WHEN p.k % 3 = 0 THEN c.our_number ELSE c.contact_phone END, \
        CASE WHEN p.k % 3 = 0 THEN c.contact_phone ELSE c.our_number END, \
        'Message number ' || p.k || ' of the bench, long enough to look like a real one.', \
        '[]', \
        CASE WHEN p.k % 3 = 0 THEN $4 ELSE $5 END, \
        CASE WHEN p.k % 3 = 0 THEN $6 ELSE $7 END, \
        'SMbench' || p.k, \
        CASE WHEN p.k % 3 = 0 THEN $8 END, \
        1, $9, $9, p.k \
    FROM placed p JOIN conversations c ON c.id = p.conversation + $10 \
    ORDER BY p.k";

/// Conversation `c` of `$1` on number `c % 2`, with a contact phone of its own.
const INSERT_CONVERSATIONS: &str = "\
    WITH RECURSIVE n (c) AS (SELECT 1 UNION ALL SELECT c + 1 FROM n WHERE c < $1) \
    INSERT INTO conversations (our_number, contact_phone, created_at, updated_at) \
    SELECT CASE WHEN c % 2 = 1 THEN $2 ELSE $3 END, '+1202' || (1000000 + c), $4, $4 \
    FROM n ORDER BY c";

/// Every tenth contact's name: one of eight (with accents) and the conversation's number.
const SET_NAMES: &str = "\
    UPDATE conversations SET contact_name = CASE (id / 10) % 8 \
        WHEN 0 THEN 'José Álvarez' WHEN 1 THEN 'Zoë Ångström' WHEN 2 THEN 'Ana Lima' \
        WHEN 3 THEN 'Björn Öst' WHEN 4 THEN 'Chloé Dubois' WHEN 5 THEN 'Mary Smith' \
        WHEN 6 THEN 'Søren Kierkegaard' ELSE 'Renée Martin' END || ' ' || id \
    WHERE id % 10 = 0";

/// Each conversation's newest message, its activity, and whether it waits to be read.
const SET_ACTIVITY: &str = "\
    UPDATE conversations SET \
        last_message_id = (SELECT m.id FROM messages m WHERE m.conversation_id = conversations.id \
                           ORDER BY m.id DESC LIMIT 1), \
        activity = (SELECT m.seq FROM messages m WHERE m.conversation_id = conversations.id \
                    ORDER BY m.id DESC LIMIT 1), \
        unread_count = (SELECT CASE WHEN m.direction = 'inbound' THEN 1 ELSE 0 END \
                        FROM messages m WHERE m.conversation_id = conversations.id \
                        ORDER BY m.id DESC LIMIT 1)";

/// The team inbox's state of every conversation: six in ten closed, one snoozed (until `$1`),
/// three open; a third assigned to agent `$2`, a third of number `$3`'s to agent `$4`. Its
/// last change is its activity.
const SET_TEAM: &str = "\
    UPDATE conversations SET \
        status = CASE WHEN id % 10 < 6 THEN 'closed' WHEN id % 10 = 6 THEN 'snoozed' \
                 ELSE 'open' END, \
        snoozed_until = CASE WHEN id % 10 = 6 THEN $1 END, \
        assignee_id = CASE WHEN id % 3 = 0 THEN $2 \
                      WHEN id % 3 = 1 AND our_number = $3 THEN $4 END, \
        changed = activity";

/// Runs `$body` with `$db` a connection of whichever backend `$url` names.
macro_rules! on_connection {
    ($url:expr, |$db:ident| $body:expr) => {
        if $url.starts_with("postgres") {
            let mut $db = sqlx::PgConnection::connect($url).await.expect("connect");
            $body
        } else {
            let mut $db = sqlx::SqliteConnection::connect($url)
                .await
                .expect("connect");
            $body
        }
    };
}

/// Loads the data set; returns the agent's email and the long thread's conversation id.
async fn load(url: &str, conversations: u64, messages: u64) -> (String, i64) {
    let store = smsdesk::store::connect(
        &smsdesk::config::DatabaseUrl::parse(url).unwrap(),
        Duration::from_secs(10),
    )
    .await
    .expect("database");
    let hash = smsdesk::auth::hash_password(PASSWORD).unwrap();
    let email = "agent@bench.test".to_owned();
    let both: Vec<String> = NUMBERS.iter().map(|n| n.to_string()).collect();
    let agent = store
        .create_agent(&new_agent(&email, "Agent", &both), &hash)
        .await
        .unwrap()
        .unwrap();
    let sharer = store
        .create_agent(&new_agent("shares@bench.test", "Shares", &both[1..]), &hash)
        .await
        .unwrap()
        .unwrap();

    let now = chrono::Utc::now();
    let started = Instant::now();
    let long_thread = on_connection!(url, |db| {
        let mut tx = db.begin().await.unwrap();
        sqlx::query(INSERT_CONVERSATIONS)
            .bind(conversations as i64)
            .bind(NUMBERS[0])
            .bind(NUMBERS[1])
            .bind(now)
            .execute(&mut *tx)
            .await
            .unwrap();
        let first: i64 = sqlx::query_scalar("SELECT MIN(id) FROM conversations")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        sqlx::query(INSERT_MESSAGES)
            .bind(messages as i64)
            .bind(conversations as i64)
            .bind(STEP as i64)
            .bind(Status::Delivered.as_str())
            .bind(Status::Received.as_str())
            .bind(Status::Delivered.rank())
            .bind(Status::Received.rank())
            .bind(agent.id)
            .bind(now)
            .bind(first - 1)
            .execute(&mut *tx)
            .await
            .unwrap();
        sqlx::query(SET_ACTIVITY).execute(&mut *tx).await.unwrap();
        sqlx::query(SET_NAMES).execute(&mut *tx).await.unwrap();
        sqlx::query(SET_TEAM)
            .bind(now + chrono::Duration::days(30))
            .bind(agent.id)
            .bind(NUMBERS[1])
            .bind(sharer.id)
            .execute(&mut *tx)
            .await
            .unwrap();
        // SQLite's next seqs come after its change counter; PostgreSQL's server raises its
        // seq offset at start above every stored seq.
        if !url.starts_with("postgres") {
            sqlx::query("UPDATE change_counter SET seq = $1")
                .bind(messages as i64)
                .execute(&mut *tx)
                .await
                .unwrap();
        }
        tx.commit().await.unwrap();
        // PostgreSQL: the activity update left a dead index entry per conversation, which the
        // first reads past them would otherwise step over; a live database vacuums as it goes.
        let analyze = if url.starts_with("postgres") {
            "VACUUM ANALYZE"
        } else {
            "ANALYZE"
        };
        sqlx::query(analyze).execute(&mut db).await.unwrap();
        first
    });
    // The load's writes left the counters' changes for the server's chore to fold
    // (`housekeeping::fold_counts`); fold them all now, as a live database has, so that the
    // counts are timed as a live server reads them, not behind a backlog of a whole import.
    while store.fold_counts(100_000).await.unwrap() > 0 {}
    drop(store);
    if url.starts_with("postgres") {
        on_connection!(url, |db| {
            sqlx::query("VACUUM ANALYZE conversation_count_changes, conversation_counts")
                .execute(&mut db)
                .await
                .unwrap();
        });
    }
    println!(
        "  loaded {conversations} conversations and {messages} messages in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    (email, long_thread)
}

/// The agent's email and the long thread's conversation id of a database loaded before.
async fn reused(url: &str) -> (String, i64) {
    let first: i64 = on_connection!(url, |db| {
        sqlx::query_scalar("SELECT MIN(id) FROM conversations")
            .fetch_one(&mut db)
            .await
            .unwrap()
    });
    ("agent@bench.test".to_owned(), first)
}

/// A fresh database on the PostgreSQL server `server` names, and the URL of it.
async fn create_pg_database(server: &str) -> (String, String) {
    let name = format!("smsdesk_scale_{}", rand::random::<u32>());
    let mut admin = sqlx::PgConnection::connect(server).await.expect("connect");
    // The name is ours: a prefix and digits.
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .unwrap();
    let mut url = url::Url::parse(server).unwrap();
    url.set_path(&name);
    (name, url.to_string())
}

async fn drop_pg_database(server: &str, name: &str) {
    let mut admin = sqlx::PgConnection::connect(server).await.expect("connect");
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&mut admin)
    .await
    .unwrap();
}

struct Timer {
    http: reqwest::Client,
    /// Only the requests whose names contain one of these are timed (all when empty).
    only: Vec<String>,
    base: String,
    token: String,
    requests: u64,
}

impl Timer {
    /// The whole body of a `200` answer to `GET path`.
    async fn body(&self, path: &str) -> Vec<u8> {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "GET {path}");
        r.bytes().await.unwrap().to_vec()
    }

    async fn get(&self, path: &str) -> Value {
        serde_json::from_slice(&self.body(path).await).unwrap()
    }

    /// Times `requests` GETs of `path` until their last byte, each then checked by `check`,
    /// and prints the figures.
    async fn time(&self, what: &str, path: &str, check: impl Fn(&Value)) {
        if !self.only.is_empty() && !self.only.iter().any(|o| what.contains(o.as_str())) {
            return;
        }
        check(&self.get(path).await);
        let mut took = Vec::with_capacity(self.requests as usize);
        for _ in 0..self.requests {
            let sent = Instant::now();
            let body = self.body(path).await;
            took.push(sent.elapsed());
            check(&serde_json::from_slice(&body).unwrap());
        }
        took.sort();
        println!(
            "  {what:<34} p50 {:>7} ms  p99 {:>7} ms  max {:>7} ms",
            ms(percentile(&took, 0.5)),
            ms(percentile(&took, 0.99)),
            ms(took[took.len() - 1])
        );
    }
}

async fn run(url: &str, conversations: u64, messages: u64, requests: u64, reuse: bool) {
    let (email, long_thread) = if reuse {
        reused(url).await
    } else {
        load(url, conversations, messages).await
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let mut server: Child = Command::new(env!("CARGO_BIN_EXE_smsdesk"))
        .env("PORT", port.to_string())
        .env("DATABASE_URL", url)
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .spawn()
        .expect("start the server");
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
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
    let login: Value = http
        .post(format!("{base}/api/auth/login"))
        .json(&serde_json::json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let only = std::env::var("BENCH_ONLY")
        .unwrap_or_default()
        .split(',')
        .filter(|o| !o.is_empty())
        .map(str::to_owned)
        .collect();
    let timer = Timer {
        http,
        only,
        base,
        token: login["token"].as_str().expect("a token").to_owned(),
        requests,
    };

    let full_page = |page: &Value| {
        assert_eq!(page["conversations"].as_array().unwrap().len(), 50);
    };
    for (view, query) in [
        ("every status", "&status=all"),
        ("Open", ""),
        ("Mine", "&assignee=me"),
        ("Unassigned", "&assignee=none"),
        ("Snoozed", "&status=snoozed"),
        ("Closed", "&status=closed"),
    ] {
        let path = format!("/api/crm/sms/conversations?limit=50{query}");
        let first = timer.get(&path).await;
        let next = first["nextCursor"]
            .as_str()
            .expect("a second page")
            .to_owned();
        timer
            .time(&format!("list: {view}, first page (50)"), &path, full_page)
            .await;
        timer
            .time(
                &format!("list: {view}, second page"),
                &format!("{path}&cursor={next}"),
                full_page,
            )
            .await;
    }
    timer
        .time(
            "the views' counts",
            "/api/crm/sms/conversations/counts",
            |counts| assert!(counts["closed"].as_i64().unwrap() > 0),
        )
        .await;
    timer
        .time(
            "a thread page (50)",
            &format!("/api/crm/sms/conversations/{long_thread}/messages?limit=50"),
            |page| assert_eq!(page["messages"].as_array().unwrap().len(), 50),
        )
        .await;
    timer
        .time(
            "sync, 500 changes",
            &format!("/api/crm/sms/sync?since={}&limit=500", messages / 2),
            |page| assert_eq!(page["messages"].as_array().unwrap().len(), 500),
        )
        .await;
    time_searches(&timer, conversations, messages).await;
    let _ = server.kill();
    let _ = server.wait();
}

/// The searches an agent types, among conversations of every status: names, phones and
/// message words, matched by many conversations (found in the first conversations looked
/// at) or by few (found through the indexes), and by none.
async fn time_searches(timer: &Timer, conversations: u64, messages: u64) {
    let named = conversations / 2 / 10 * 10;
    let phone = 1_000_000 + conversations / 3;
    let rare = messages / 2 + 7;
    let searches = [
        ("search: common name (jose)", "jose".to_owned(), 50),
        (
            "search: one name (alvarez <id>)",
            format!("alvarez {named}"),
            1,
        ),
        (
            "search: phone, written (202) 1xx-xxxx",
            format!("(202) {}-{}", phone / 10_000, phone % 10_000),
            1,
        ),
        (
            "search: phone digits, 5",
            format!("{}", phone / 100 % 100_000),
            1,
        ),
        // An area code: in every contact's number.
        (
            "search: digits of every number (12021)",
            "12021".to_owned(),
            50,
        ),
        ("search: common word (bench)", "bench".to_owned(), 50),
        (
            "search: two words, rare (number N)",
            format!("number {rare}"),
            1,
        ),
        ("search: word prefix (Mess)", "Mess".to_owned(), 50),
        ("search: nothing matches", "zebra".to_owned(), 0),
    ];
    for (what, q, at_least) in searches {
        let path = format!(
            "/api/crm/sms/conversations?limit=50&status=all&q={}",
            url::form_urlencoded::byte_serialize(q.as_bytes()).collect::<String>()
        );
        timer
            .time(what, &path, |page| {
                let found = page["conversations"].as_array().unwrap().len();
                assert!(found >= at_least, "{q}: {found} found");
            })
            .await;
    }
    timer
        .time(
            "search: common word, Open view",
            "/api/crm/sms/conversations?limit=50&q=bench",
            |page| assert_eq!(page["conversations"].as_array().unwrap().len(), 50),
        )
        .await;
    let first = timer
        .get("/api/crm/sms/conversations?limit=50&status=all&q=bench")
        .await;
    let next = first["nextCursor"].as_str().expect("a second page");
    timer
        .time(
            "search: common word, second page",
            &format!("/api/crm/sms/conversations?limit=50&status=all&q=bench&cursor={next}"),
            |page| assert_eq!(page["conversations"].as_array().unwrap().len(), 50),
        )
        .await;
}

#[tokio::main]
async fn main() {
    let conversations = env_or("BENCH_CONVERSATIONS", 100_000);
    let messages = env_or("BENCH_MESSAGES", 1_000_000);
    let requests = env_or("BENCH_REQUESTS", 200);
    let keep = std::env::var_os("BENCH_KEEP_DATABASE").is_some();
    assert!(
        conversations >= 100 && messages >= 2 * conversations && messages >= 5_000,
        "BENCH_CONVERSATIONS must be at least 100, BENCH_MESSAGES at least twice it and 5,000"
    );
    let dir = tempfile::tempdir().unwrap();
    if let Ok(url) = std::env::var("BENCH_REUSE_DATABASE") {
        println!("smsdesk data scale ({url}, loaded before), {requests} requests each");
        run(&url, conversations, messages, requests, true).await;
        return;
    }
    match std::env::var("BENCH_DATABASE_URL") {
        Ok(server) => {
            println!("smsdesk data scale (PostgreSQL), {requests} requests each");
            let (name, url) = create_pg_database(&server).await;
            run(&url, conversations, messages, requests, false).await;
            if keep {
                println!("  kept: {url}");
            } else {
                drop_pg_database(&server, &name).await;
            }
        }
        Err(_) => {
            println!("smsdesk data scale (SQLite), {requests} requests each");
            let path = if keep {
                std::env::temp_dir().join(format!("smsdesk-scale-{}.db", rand::random::<u32>()))
            } else {
                dir.path().join("bench.db")
            };
            let url = format!("sqlite://{}", path.display());
            run(&url, conversations, messages, requests, false).await;
            if keep {
                println!("  kept: {url}");
            }
        }
    }
}

/// A new agent's fields, checked as any other agent's.
fn new_agent(email: &str, name: &str, numbers: &[String]) -> NewAgent {
    NewAgent::parse_invited(email, name, numbers).expect("a valid agent")
}
