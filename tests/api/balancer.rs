//! Two instances behind nginx, with the very configuration `deploy/` ships, on one PostgreSQL
//! database and a Redis of the test's own: a socket connected through nginx gets what either
//! instance raises, and when its instance is killed it is back through nginx within 2 s and
//! `sync` returns what it missed.
//!
//! Needs `nginx`, `redis-server` and `TEST_DATABASE_URL`; without one of them the test says
//! so and is skipped, except under `CI`, where that is a failure.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::json;
use tokio::time::Instant;

use crate::helpers::{
    Backend, FAKE_ACCOUNT, FAKE_TOKEN, FakeTwilio, Nginx, PUBLIC_URL, Part, RedisServer,
    ServerProcess, Socket, SocketAuth, ci, jpeg, multipart, new_sid, nginx_binary, post_signed,
    read, wait_until, with_database,
};

/// The page's promise: a socket whose instance dies is back within this time.
const RECONNECT_WITHIN: Duration = Duration::from_secs(2);
const NUMBER: &str = "+15550001000";

/// An instance with everything but its port: the test's database, Redis and fake Twilio.
fn instance(database_url: &str, redis_url: &str, fake: &FakeTwilio) -> ServerProcess {
    ServerProcess::new(vec![
        ("DATABASE_URL", database_url.to_owned()),
        ("REDIS_URL", redis_url.to_owned()),
        ("TWILIO_ACCOUNT_SID", FAKE_ACCOUNT.into()),
        ("TWILIO_AUTH_TOKEN", FAKE_TOKEN.into()),
        ("TWILIO_API_BASE", fake.url.clone()),
        ("PUBLIC_URL", PUBLIC_URL.into()),
        ("TRUSTED_PROXIES", "127.0.0.1".into()),
    ])
}

fn port(server: &ServerProcess) -> u16 {
    server.addr.rsplit(':').next().unwrap().parse().unwrap()
}

/// The sockets `instance` holds, as its `/readyz` says.
async fn sockets(http: &reqwest::Client, instance: &ServerProcess) -> u64 {
    let (status, ready) = read(
        http.get(format!("{}/readyz", instance.addr))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{ready}");
    assert_eq!(ready["redis"], "up", "{ready}");
    ready["sockets"].as_u64().unwrap()
}

/// Posts a signed inbound SMS to `base` (an instance, or nginx).
async fn inbound(http: &reqwest::Client, base: &str, body: &str) -> u16 {
    let params: Vec<(String, String)> = [
        ("MessageSid", new_sid()),
        ("From", "+14155550123".to_owned()),
        ("To", NUMBER.to_owned()),
        ("Body", body.to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let url = format!("{PUBLIC_URL}/api/crm/sms/webhook");
    post_signed(http, base, &url, &params)
        .await
        .expect("webhook answered")
        .status()
        .as_u16()
}

/// Posts Twilio's signed status callback for a message the fake took, to `base`.
async fn status_callback(
    http: &reqwest::Client,
    base: &str,
    sid: &str,
    callback: &str,
    status: &str,
) {
    let params: Vec<(String, String)> = vec![
        ("MessageSid".into(), sid.to_owned()),
        ("MessageStatus".into(), status.into()),
        ("AccountSid".into(), FAKE_ACCOUNT.into()),
    ];
    let r = post_signed(http, base, callback, &params).await.unwrap();
    assert_eq!(r.status(), 200, "status callback {status}");
}

/// The `message:new` bodies the socket gets until it has every one of `bodies`, counted.
async fn receive_all(socket: &mut Socket, bodies: &[String]) -> HashMap<String, usize> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    while !bodies.iter().all(|b| seen.contains_key(b)) {
        let m = socket.next("message:new").await;
        *seen
            .entry(m["body"].as_str().unwrap_or_default().to_owned())
            .or_default() += 1;
    }
    seen
}

/// `nginx`, or `None` (said why) to skip the test outside CI.
fn nginx_or_skip() -> Option<PathBuf> {
    let nginx = nginx_binary();
    if nginx.is_none() {
        assert!(
            !ci(),
            "nginx is not installed, but CI is: the balancer test must run in CI \
             (apt-get install nginx, as .ci/run does)"
        );
        eprintln!("skipped: nginx is not installed, so the balancer is not tested here");
    }
    nginx
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_behind_nginx() {
    let Some(nginx_bin) = nginx_or_skip() else {
        return;
    };
    let Some(redis) = RedisServer::start().await else {
        return;
    };
    with_database(Backend::Postgres, async |database_url| {
        let fake = FakeTwilio::start().await;
        let mut a = instance(&database_url, &redis.url(), &fake);
        let mut b = instance(&database_url, &redis.url(), &fake);
        let nginx = Nginx::start(&nginx_bin, [port(&a), port(&b)], 1024).await;
        let lb = nginx.url.clone();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();

        a.add_agent("ana@x.io", NUMBER);
        a.start().await;
        b.start().await;
        let (status, login) = read(
            http.post(format!("{lb}/api/auth/login"))
                .json(&json!({"email": "ana@x.io", "password": "password123"}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 200, "login through nginx: {login}");
        let token = login["token"].as_str().unwrap().to_owned();
        let mut socket = Socket::connect_to(&lb, SocketAuth::Token(token.clone()))
            .await
            .expect("a socket through nginx");
        // Call the instance that holds the socket A.
        if sockets(&http, &b).await == 1 {
            std::mem::swap(&mut a, &mut b);
        }
        assert_eq!(
            (sockets(&http, &a).await, sockets(&http, &b).await),
            (1, 0),
            "the socket is on one instance"
        );

        // Webhooks to both instances and through nginx: the socket on A gets each once.
        let mut bodies = Vec::new();
        for i in 0..12 {
            let body = format!("hello {i}");
            let target = match i % 3 {
                0 => &a.addr,
                1 => &b.addr,
                _ => &lb,
            };
            assert_eq!(inbound(&http, target, &body).await, 200, "{body}");
            bodies.push(body);
        }
        let seen = receive_all(&mut socket, &bodies).await;
        // A last one from B: once it is here, a copy of any earlier one would be too.
        assert_eq!(inbound(&http, &b.addr, "last").await, 200);
        let mut seen_after = receive_all(&mut socket, &["last".to_owned()]).await;
        for m in socket.received("message:new") {
            *seen_after
                .entry(m["body"].as_str().unwrap_or_default().to_owned())
                .or_default() += 1;
        }
        for body in &bodies {
            let times = seen[body] + seen_after.get(body).copied().unwrap_or(0);
            assert_eq!(times, 1, "{body} reached the socket once");
        }

        // A send through A, its statuses posted to B: the socket on A shows them.
        let (_, list) = read(
            http.get(format!("{lb}/api/crm/sms/conversations"))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap(),
        )
        .await;
        let conversation = list["conversations"][0]["id"].as_str().unwrap().to_owned();
        let (status, sent) = read(
            http.post(format!("{}/api/crm/sms/send", a.addr))
                .bearer_auth(&token)
                .json(&json!({"conversationId": conversation, "body": "on our way", "clientId": "c-1"}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 202, "send through A: {sent}");
        let id = sent["message"]["id"].clone();
        let (sid, form) = wait_until("Twilio to take the send", async || {
            fake.state.accepted.lock().unwrap().first().cloned()
        })
        .await;
        let callback = form["StatusCallback"].clone();
        for status in ["sent", "delivered"] {
            status_callback(&http, &b.addr, &sid, &callback, status).await;
            socket
                .next_where("message:status", |s| s["id"] == id && s["status"] == status)
                .await;
        }

        // A picture over nginx's 1 MB for other bodies is uploaded through it, and Twilio
        // fetches it through it, from whichever instance answers.
        let picture = jpeg(3 * 1024 * 1024);
        let (content_type, body) = multipart(&[Part::file("photo.jpg", "image/jpeg", &picture)]);
        let (status, upload) = read(
            http.post(format!("{lb}/api/crm/sms/uploads"))
                .bearer_auth(&token)
                .header("content-type", content_type)
                .body(body)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 201, "a 3 MB upload through nginx: {upload}");
        let (status, mms) = read(
            http.post(format!("{lb}/api/crm/sms/send"))
                .bearer_auth(&token)
                .json(&json!({"conversationId": conversation, "body": "", "mediaIds": [upload["id"]], "clientId": "c-2"}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 202, "{mms}");
        let link = wait_until("Twilio to take the picture", async || {
            fake.state.media_urls.lock().unwrap().get(1).and_then(|u| u.first().cloned())
        })
        .await;
        for _ in 0..2 {
            let r = http.get(link.replace(PUBLIC_URL, &lb)).send().await.unwrap();
            assert_eq!(r.status(), 200, "{link} through nginx");
            assert_eq!(r.bytes().await.unwrap().len(), picture.len());
        }

        // Where the page's sync stands now.
        let (_, synced) = read(
            http.get(format!("{lb}/api/crm/sms/sync?since=0&limit=1000"))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap(),
        )
        .await;
        let cursor = synced["cursor"].as_i64().unwrap();

        // kill -9 of the socket's instance: back through nginx within 2 s, on B.
        a.kill_9();
        let killed = Instant::now();
        socket.closed().await;
        let mut missed = Vec::new();
        for i in 0..3 {
            let body = format!("while away {i}");
            assert_eq!(inbound(&http, &lb, &body).await, 200, "{body} through nginx");
            missed.push(body);
        }
        let mut socket = loop {
            match Socket::connect_to(&lb, SocketAuth::Token(token.clone())).await {
                Ok(s) => break s,
                Err(e) => {
                    assert!(
                        killed.elapsed() < RECONNECT_WITHIN,
                        "no socket through nginx {RECONNECT_WITHIN:?} after the kill: {e}\n{}",
                        nginx.error_log()
                    );
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        };
        let back_after = killed.elapsed();
        eprintln!("balancer: the socket was back through nginx {back_after:?} after the kill");
        assert!(
            back_after < RECONNECT_WITHIN,
            "the socket was back through nginx after {back_after:?}"
        );

        // What it missed comes from sync; what comes now arrives live.
        let (_, synced) = read(
            http.get(format!("{lb}/api/crm/sms/sync?since={cursor}&limit=1000"))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap(),
        )
        .await;
        let got: Vec<&str> = synced["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|m| m["body"].as_str())
            .collect();
        for body in &missed {
            assert_eq!(
                got.iter().filter(|g| *g == body).count(),
                1,
                "sync returns {body} once: {synced}"
            );
        }
        assert!(
            synced["cursor"].as_i64().unwrap() > cursor,
            "the cursor moves on"
        );
        assert_eq!(inbound(&http, &lb, "back again").await, 200);
        receive_all(&mut socket, &["back again".to_owned()]).await;
    })
    .await;
}

/// A rolling restart: A goes down and comes back, then B does, seconds apart. Status
/// callbacks posted through nginx all along are each answered `200` (Twilio does not post
/// a status callback again), and the page shows every status.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_behind_nginx_answers_every_callback() {
    let Some(nginx_bin) = nginx_or_skip() else {
        return;
    };
    let Some(redis) = RedisServer::start().await else {
        return;
    };
    with_database(Backend::Postgres, async |database_url| {
        let fake = FakeTwilio::start().await;
        let mut a = instance(&database_url, &redis.url(), &fake);
        let mut b = instance(&database_url, &redis.url(), &fake);
        let nginx = Nginx::start(&nginx_bin, [port(&a), port(&b)], 1024).await;
        let lb = nginx.url.clone();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        a.add_agent("ana@x.io", NUMBER);
        a.start().await;
        b.start().await;
        let (_, login) = read(
            http.post(format!("{lb}/api/auth/login"))
                .json(&json!({"email": "ana@x.io", "password": "password123"}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        let token = login["token"].as_str().unwrap().to_owned();
        const SENDS: usize = 12;
        for i in 0..SENDS {
            let (status, body) = read(
                http.post(format!("{lb}/api/crm/sms/send"))
                    .bearer_auth(&token)
                    .json(&json!({"to": "+14155550123", "body": format!("m {i}"), "clientId": format!("c-{i}")}))
                    .send()
                    .await
                    .unwrap(),
            )
            .await;
            assert_eq!(status, 202, "{body}");
        }
        wait_until("Twilio to take every send", async || {
            fake.accepted_count() == SENDS
        })
        .await;
        let accepted = fake.state.accepted.lock().unwrap().clone();
        let mut phases = accepted.chunks(SENDS / 3);
        let deliver = async |phase: &[(String, HashMap<String, String>)]| {
            for (sid, form) in phase {
                status_callback(&http, &lb, sid, &form["StatusCallback"], "delivered").await;
            }
        };

        // A is down: nginx finds it refusing and passes each callback to B.
        a.kill_9();
        deliver(phases.next().unwrap()).await;
        // A is back and B goes down, seconds later: A answers them.
        a.start().await;
        b.kill_9();
        deliver(phases.next().unwrap()).await;
        // B is back.
        b.start().await;
        deliver(phases.next().unwrap()).await;

        let (_, synced) = read(
            http.get(format!("{lb}/api/crm/sms/sync?since=0&limit=1000"))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap(),
        )
        .await;
        let messages = synced["messages"].as_array().unwrap();
        assert_eq!(messages.len(), SENDS);
        assert!(
            messages.iter().all(|m| m["status"] == "delivered"),
            "{synced}"
        );
    })
    .await;
}
