//! `kill -9` during a burst of inbound webhooks and sends: after a restart, every webhook
//! that got a 2xx is stored, the rest are stored once Twilio's retries come, nothing is
//! stored twice, and every queued send goes out exactly once.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::Semaphore;

use crate::helpers::{
    Backend, FAKE_ACCOUNT, FAKE_TOKEN, FakeTwilio, PUBLIC_URL, ServerProcess, new_sid, post_signed,
    read, wait_until_within, with_database,
};

const INBOUND: usize = 150;
/// One send between every four inbound messages, so the kill lands among both.
const SENDS: usize = INBOUND / 4;

async fn post_inbound(
    http: &reqwest::Client,
    addr: &str,
    i: usize,
    sid: &str,
) -> Result<u16, String> {
    let params: Vec<(String, String)> = [
        ("MessageSid", sid.to_owned()),
        ("From", format!("+1415555{:04}", i % 7)),
        ("To", "+15550001000".to_owned()),
        ("Body", format!("in-{i}")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let url = format!("{PUBLIC_URL}/api/crm/sms/webhook");
    post_signed(http, addr, &url, &params)
        .await
        .map(|r| r.status().as_u16())
        .map_err(|e| e.to_string())
}

async fn post_send(
    http: &reqwest::Client,
    addr: &str,
    token: &str,
    conversation: &str,
    i: usize,
) -> Result<u16, String> {
    http.post(format!("{addr}/api/crm/sms/send"))
        .bearer_auth(token)
        .json(&json!({"conversationId": conversation, "body": format!("out-{i}"), "clientId": format!("c-{i}")}))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .map_err(|e| e.to_string())
}

async fn crash_and_recover(database_url: String) {
    let fake = FakeTwilio::start().await;
    // Slow Twilio down so the kill lands with calls in flight.
    *fake.state.delay.lock().unwrap() = Duration::from_millis(40);
    let mut server = ServerProcess::new(vec![
        ("DATABASE_URL", database_url),
        ("TWILIO_ACCOUNT_SID", FAKE_ACCOUNT.into()),
        ("TWILIO_AUTH_TOKEN", FAKE_TOKEN.into()),
        ("TWILIO_API_BASE", fake.url.clone()),
        ("PUBLIC_URL", PUBLIC_URL.into()),
    ]);
    let addr = server.addr.clone();
    let _ = fake.state.app_addr.set(addr.clone());
    server.add_agent("a@x.io", "+15550001000");
    server.start().await;

    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let (_, login) = read(
        http.post(format!("{addr}/api/auth/login"))
            .json(&json!({"email": "a@x.io", "password": "password123"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let token = login["token"].as_str().unwrap().to_owned();
    let (_, conversation) = read(
        http.post(format!("{addr}/api/crm/sms/conversations"))
            .bearer_auth(&token)
            .json(&json!({"phone": "+14155550999"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let conversation = conversation["id"].as_str().unwrap().to_owned();

    let sids: Vec<String> = (0..INBOUND).map(|_| new_sid()).collect();
    let acked_inbound = Arc::new(std::sync::Mutex::new(vec![false; INBOUND]));
    let acked_sends = Arc::new(std::sync::Mutex::new(vec![false; SENDS]));
    let limit = Arc::new(Semaphore::new(8));
    let mut tasks = Vec::new();
    for (i, sid) in sids.iter().enumerate() {
        let jobs = [Some((0, i)), (i % 4 == 3).then_some((1, i / 4))];
        for (kind, n) in jobs.into_iter().flatten() {
            let (http, addr, token, conversation, sid) = (
                http.clone(),
                addr.clone(),
                token.clone(),
                conversation.clone(),
                sid.clone(),
            );
            let (acked_inbound, acked_sends, limit) =
                (acked_inbound.clone(), acked_sends.clone(), limit.clone());
            tasks.push(tokio::spawn(async move {
                let _permit = limit.acquire().await.unwrap();
                if kind == 0 {
                    if let Ok(s) = post_inbound(&http, &addr, n, &sid).await {
                        acked_inbound.lock().unwrap()[n] = (200..300).contains(&s);
                    }
                } else if let Ok(s) = post_send(&http, &addr, &token, &conversation, n).await {
                    acked_sends.lock().unwrap()[n] = (200..300).contains(&s);
                }
            }));
        }
    }
    // Kill once part of the burst is acknowledged and sends are reaching Twilio.
    wait_until_within(
        "the burst to get going",
        Duration::from_secs(20),
        async || {
            let inbound_done = acked_inbound.lock().unwrap().iter().filter(|a| **a).count();
            inbound_done >= INBOUND / 3 && fake.sent_count() >= 3
        },
    )
    .await;
    server.kill_9();
    for t in tasks {
        t.await.unwrap();
    }
    let acked_inbound = acked_inbound.lock().unwrap().clone();
    let acked_sends = acked_sends.lock().unwrap().clone();
    for acked in [&acked_inbound, &acked_sends] {
        assert!(
            acked.iter().any(|a| *a) && acked.iter().any(|a| !a),
            "the kill landed mid-burst"
        );
    }

    server.start().await;
    // Twilio retries what was not acknowledged (and sometimes what was).
    for (i, sid) in sids.iter().enumerate() {
        if !acked_inbound[i] || i % 10 == 0 {
            assert_eq!(post_inbound(&http, &addr, i, sid).await, Ok(200));
        }
    }
    // The page resends, with the same clientId, what it got no answer for.
    for (i, acked) in acked_sends.iter().enumerate() {
        if !acked {
            let status = post_send(&http, &addr, &token, &conversation, i)
                .await
                .unwrap();
            assert!(status == 202 || status == 200, "resend {i}: {status}");
        }
    }
    // Jobs leased at the kill come back when their lease ends: the lease outlives the
    // longest attempt (80 s: three Messages-list pages of 15 s, a 20 s create, and room).
    wait_until_within("the queue to drain", Duration::from_secs(120), async || {
        let (_, ready) = read(http.get(format!("{addr}/readyz")).send().await.unwrap()).await;
        if ready["queue"]["depth"] == 0 {
            Ok(())
        } else {
            Err(ready)
        }
    })
    .await;

    let mut messages: Vec<Value> = Vec::new();
    let mut since = 0;
    loop {
        let (_, page) = read(
            http.get(format!("{addr}/api/crm/sms/sync?since={since}&limit=1000"))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap(),
        )
        .await;
        messages.extend(page["messages"].as_array().unwrap().iter().cloned());
        since = page["cursor"].as_i64().unwrap();
        if page["hasMore"] == false {
            break;
        }
    }
    let mut bodies: HashMap<String, usize> = HashMap::new();
    for m in &messages {
        *bodies
            .entry(m["body"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    for i in 0..INBOUND {
        assert_eq!(
            bodies.get(&format!("in-{i}")),
            Some(&1),
            "inbound {i} stored exactly once"
        );
    }
    for i in 0..SENDS {
        assert_eq!(
            bodies.get(&format!("out-{i}")),
            Some(&1),
            "send {i} stored exactly once"
        );
    }
    let mut delivered: HashMap<String, usize> = HashMap::new();
    for (_, form) in fake.state.accepted.lock().unwrap().iter() {
        *delivered.entry(form["Body"].clone()).or_default() += 1;
    }
    for i in 0..SENDS {
        assert_eq!(
            delivered.get(&format!("out-{i}")),
            Some(&1),
            "send {i} reached Twilio exactly once"
        );
    }
    for m in messages.iter().filter(|m| m["direction"] == "outbound") {
        assert!(
            m["twilioSid"].is_string(),
            "every send recorded its sid: {m}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_burst_on_sqlite() {
    with_database(Backend::Sqlite, crash_and_recover).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_burst_on_postgres() {
    with_database(Backend::Postgres, crash_and_recover).await;
}
