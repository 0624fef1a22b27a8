//! Several instances on one PostgreSQL database share what must be shared (docs/reliability.md, "Several instances"):
//! `SEND_RATE_PER_NUMBER` paces all instances' sends together, login failures on one count
//! on the other, and an instance killed while it holds leased and paced sends leaves every
//! one of them to the other, each reaching Twilio exactly once and no sooner than its slot.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use serde_json::{Value, json};
use sqlx::{Connection, PgConnection};

use crate::helpers::{
    Backend, FAKE_ACCOUNT, FAKE_TOKEN, FakeTwilio, Mode, PUBLIC_URL, ServerProcess, TestApp,
    post_signed, read, wait_until_within, with_database,
};
use smsdesk::send_queue::SLOT_TOLERANCE;

const NUMBER: &str = "+15550001000";
const CONTACT: &str = "+14155550123";
/// How much earlier than its slot a send may reach the fake: the store's tolerance, and the
/// way from the slot's check to the fake's clock, which differs from one send to the next.
const MARGIN: Duration = Duration::from_millis(SLOT_TOLERANCE.as_millis() as u64 + 80);
/// How late the first of a paced run may reach the fake on a loaded machine, which shortens
/// the distance from it to every later send.
const FIRST_SEND_JITTER: Duration = Duration::from_millis(700);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_through_two_instances_share_their_numbers_pace_on_postgres() {
    with_database(Backend::Postgres, async |url| {
        let spawn = || {
            TestApp::builder()
                .mode(Mode::FakeTwilio)
                .env("SEND_RATE_PER_NUMBER", "1")
                .spawn(&url)
        };
        let (a, b) = (spawn().await, spawn().await);
        let alice = a.agent("alice@example.com", &[NUMBER]).await;
        let conversation = a.conversation(&alice, CONTACT).await;
        const SENDS: usize = 6;
        for i in 0..SENDS {
            let through = if i % 2 == 0 { &a } else { &b };
            let (status, body) = through
                .send(
                    &alice,
                    &conversation,
                    &format!("paced {i}"),
                    &format!("p-{i}"),
                )
                .await;
            assert_eq!(status, 202, "{body}");
        }
        let fakes = [a.fake.as_ref().unwrap(), b.fake.as_ref().unwrap()];
        wait_until_within(
            "every send to reach Twilio",
            Duration::from_secs(30),
            async || fakes.iter().map(|f| f.sent_count()).sum::<usize>() >= SENDS,
        )
        .await;
        a.wait_queue_empty().await;
        // Pruning keeps a number whose slots are recent.
        assert_eq!(b.store.prune_pacing().await.unwrap(), 0);

        let mut sent: Vec<(Instant, String)> = fakes
            .iter()
            .flat_map(|f| {
                let bodies = f.state.sent.lock().unwrap().clone();
                let at = f.state.sent_at.lock().unwrap().clone();
                at.into_iter()
                    .zip(bodies.into_iter().map(|m| m["Body"].clone()))
            })
            .collect();
        sent.sort();
        assert_each_once(sent.iter().map(|(_, body)| body), "paced", SENDS);
        // Paced across both instances: the k-th send no sooner than k slots after the first. The
        // first one's own way to the fake may have been slow (a busy machine stalls a task for
        // hundreds of ms), which shortens every later distance by as much: allow for that once.
        // Unshared pacing would put the sixth send ~2 s after the first, far below this bound.
        let first = sent[0].0;
        for (k, (at, body)) in sent.iter().enumerate() {
            assert!(
                *at - first + MARGIN + FIRST_SEND_JITTER >= Duration::from_secs(k as u64),
                "one segment a second across both instances, but {body:?} came {:?} after the first",
                *at - first
            );
        }
        assert!(
            fakes.iter().all(|f| f.sent_count() > 0),
            "both instances sent: {:?}",
            fakes.map(|f| f.sent_count())
        );
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_failures_count_on_every_instance_on_postgres() {
    with_database(Backend::Postgres, async |url| {
        let spawn = || {
            TestApp::builder()
                .env("TRUSTED_PROXIES", "127.0.0.1")
                .spawn(&url)
        };
        let (a, b) = (spawn().await, spawn().await);
        a.agent("alice@example.com", &[NUMBER]).await;

        for i in 0..10 {
            let on = if i % 2 == 0 { &a } else { &b };
            let (status, body, _) =
                login(on, "203.0.113.9", "mallory@example.com", "guess-guess").await;
            assert_eq!(status, 401, "failure {i}: {body}");
        }
        for on in [&a, &b] {
            let (status, body, retry_after) =
                login(on, "203.0.113.9", "alice@example.com", "password123").await;
            assert_eq!(status, 429, "{body}");
            let wait = retry_after.expect("Retry-After");
            assert!((14 * 60..=15 * 60).contains(&wait), "{wait}");
        }
        let (status, body, _) = login(&b, "198.51.100.7", "alice@example.com", "password123").await;
        assert_eq!(status, 200, "a real agent from another address: {body}");

        // Parallel guesses from one address, spread over both instances, get exactly as far
        // as ten sequential ones.
        let answers = join_all((0..80).map(|i| {
            let on = if i % 2 == 0 { &a } else { &b };
            login(on, "192.0.2.44", "alice@example.com", "guess-guess")
        }))
        .await;
        let statuses: Vec<u16> = answers.iter().map(|a| a.0).collect();
        let count = |s: u16| statuses.iter().filter(|x| **x == s).count();
        assert_eq!(count(401), 10, "{statuses:?}");
        assert_eq!(count(429), 70, "{statuses:?}");
        assert!(answers.iter().filter(|a| a.0 == 429).all(|a| a.2.is_some()));

        // Housekeeping forgets failures once they leave the window (here: a window of 0).
        assert_eq!(a.state.runtime.login_throttle.prune().await.unwrap(), 0);
        // The 20 failures, each counted against an address and an account.
        assert!(a.store.prune_login_failures(0).await.unwrap() >= 40);
        let (status, body, _) = login(&b, "192.0.2.44", "alice@example.com", "guess-guess").await;
        assert_eq!(status, 401, "{body}");
    })
    .await
}

/// A login through a trusted proxy for `address`: status, body, Retry-After.
async fn login(
    app: &TestApp,
    address: &str,
    email: &str,
    password: &str,
) -> (u16, Value, Option<u64>) {
    let r = app
        .http
        .post(app.url("/api/auth/login"))
        .header("X-Forwarded-For", address)
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap();
    let retry_after = r
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse().expect("Retry-After in seconds"));
    let (status, body) = read(r).await;
    (status, body, retry_after)
}

fn assert_each_once<'a>(bodies: impl Iterator<Item = &'a String>, prefix: &str, n: usize) {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for body in bodies {
        *seen.entry(body.as_str()).or_default() += 1;
    }
    for i in 0..n {
        let body = format!("{prefix} {i}");
        assert_eq!(seen.get(body.as_str()), Some(&1), "{body}: {seen:?}");
    }
    assert_eq!(seen.len(), n, "{seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_an_instance_holding_leased_and_paced_sends_on_postgres() {
    with_database(Backend::Postgres, kill_9_with_leased_and_paced_sends).await
}

/// Two a second per number, and a lease of 3 s so the survivor takes over soon.
const RATE: &str = "2";
const INTERVAL: Duration = Duration::from_millis(500);
const BACKLOG: usize = 10;

async fn kill_9_with_leased_and_paced_sends(url: String) {
    let fake = FakeTwilio::start().await;
    // Twilio takes each message at once but answers late: the kill lands between the two.
    *fake.state.delay.lock().unwrap() = Duration::from_millis(600);
    let instance = || {
        ServerProcess::new(vec![
            ("DATABASE_URL", url.clone()),
            ("TWILIO_ACCOUNT_SID", FAKE_ACCOUNT.into()),
            ("TWILIO_AUTH_TOKEN", FAKE_TOKEN.into()),
            ("TWILIO_API_BASE", fake.url.clone()),
            ("PUBLIC_URL", PUBLIC_URL.into()),
            ("SEND_RATE_PER_NUMBER", RATE.into()),
            ("SEND_LEASE_SECONDS", "3".into()),
        ])
    };
    let (mut a, mut b) = (instance(), instance());
    a.add_agent("a@x.io", NUMBER);
    a.start().await;

    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let (_, login) = read(
        http.post(format!("{}/api/auth/login", a.addr))
            .json(&json!({"email": "a@x.io", "password": "password123"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let token = login["token"].as_str().unwrap().to_owned();
    let (_, conversation) = read(
        http.post(format!("{}/api/crm/sms/conversations", a.addr))
            .bearer_auth(&token)
            .json(&json!({"phone": CONTACT}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    for i in 0..BACKLOG {
        let (status, body) = read(
            http.post(format!("{}/api/crm/sms/send", a.addr))
                .bearer_auth(&token)
                .json(&json!({"conversationId": conversation["id"], "body": format!("backlog {i}"), "clientId": format!("k-{i}")}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 202, "{body}");
    }
    wait_until_within(
        "instance A to be sending its backlog",
        Duration::from_secs(20),
        async || fake.accepted_count() >= 3,
    )
    .await;
    a.kill_9();

    let mut db = PgConnection::connect(&url).await.unwrap();
    let (leased, slotted): (i64, i64) = sqlx::query_as(
        "SELECT COUNT(*) FILTER (WHERE lease_until > now()), \
                COUNT(*) FILTER (WHERE slot_us > (SELECT now_us FROM db_clock)) \
         FROM send_jobs",
    )
    .fetch_one(&mut db)
    .await
    .unwrap();
    assert!(leased >= 1, "A died holding a lease");
    assert!(slotted >= 1, "A died with slots reserved ahead");
    db.close().await.unwrap();

    b.start().await;
    let _ = fake.state.app_addr.set(b.addr.clone());
    wait_until_within(
        "instance B to send the rest",
        Duration::from_secs(30),
        async || fake.accepted_count() >= BACKLOG,
    )
    .await;
    wait_until_within(
        "the queue to drain on B",
        Duration::from_secs(30),
        async || {
            let (_, ready) =
                read(http.get(format!("{}/readyz", b.addr)).send().await.unwrap()).await;
            if ready["queue"]["depth"] == 0 {
                Ok(())
            } else {
                Err(ready)
            }
        },
    )
    .await;

    // Exactly once: one create per message, none repeated after the takeover.
    let sent = fake.state.sent.lock().unwrap().clone();
    let bodies: Vec<String> = sent.iter().map(|m| m["Body"].clone()).collect();
    assert_each_once(bodies.iter(), "backlog", BACKLOG);
    // Paced: each send comes at least a slot after the one before, whichever instance sent
    // it; a message that missed its slot while A was dead goes late, and the ones after it
    // make way.
    let mut at = fake.state.sent_at.lock().unwrap().clone();
    at.sort();
    for (k, pair) in at.windows(2).enumerate() {
        assert!(
            pair[1] - pair[0] + MARGIN >= INTERVAL,
            "send {} came {:?} after the one before",
            k + 1,
            pair[1] - pair[0]
        );
    }

    // Twilio reports them delivered (to B); the page shows each delivered, with its sid.
    let accepted = fake.state.accepted.lock().unwrap().clone();
    for (sid, _) in &accepted {
        let params = vec![
            ("MessageSid".to_owned(), sid.clone()),
            ("MessageStatus".to_owned(), "delivered".to_owned()),
            ("AccountSid".to_owned(), FAKE_ACCOUNT.to_owned()),
        ];
        let url = format!("{PUBLIC_URL}/api/crm/sms/status-webhook");
        let r = post_signed(&http, &b.addr, &url, &params).await.unwrap();
        assert_eq!(r.status(), 200);
    }
    let (_, changes) = read(
        http.get(format!("{}/api/crm/sms/sync?since=0&limit=1000", b.addr))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    let messages = changes["messages"].as_array().unwrap();
    assert_eq!(messages.len(), BACKLOG, "{changes}");
    for m in messages {
        assert_eq!(m["status"], "delivered", "{m}");
        assert!(
            accepted
                .iter()
                .any(|(sid, _)| m["twilioSid"] == sid.as_str()),
            "{m}"
        );
    }
}
