//! The team inbox on two instances sharing a PostgreSQL database and a Redis: an assignment
//! made on one reaches the agents' sockets on both; snoozes that run out are reopened and
//! pushed once, though both instances look for them; and an instance that missed the
//! events while Redis was down has the conversations' new state in `sync`.

use std::collections::HashMap;
use std::time::Duration as StdDuration;

use chrono::{Duration, Utc};
use serde_json::{Value, json};
use smsdesk::api::sync::Changes;
use smsdesk::model::ConversationStatus;

use crate::fanout::{Pair, wait_for_redis};
use crate::helpers::{Backend, Mode, RedisServer, TestApp, with_database};
use crate::team_inbox::patch;

const NUMBER: &str = "+15550008101";

/// Two instances with `REDIS_URL` on a fresh PostgreSQL database, each reopening run-out
/// snoozes every `snooze_period`. Skips as `fanout.rs` does.
async fn with_two(snooze_period: StdDuration, test: impl AsyncFnOnce(Pair)) {
    let Some(redis) = RedisServer::start().await else {
        return;
    };
    with_database(Backend::Postgres, async move |url| {
        let spawn = || {
            TestApp::builder()
                .mode(Mode::FakeTwilio)
                .env("REDIS_URL", redis.url())
                .settings(move |s| s.snooze_check_period = snooze_period)
                .spawn(&url)
        };
        let (a, b) = (spawn().await, spawn().await);
        for app in [&a, &b] {
            wait_for_redis(app, "up").await;
        }
        test(Pair { a, b, redis }).await
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_assignment_on_one_instance_reaches_sockets_on_both() {
    with_two(StdDuration::from_secs(3600), async |p| {
        let alice = p.a.agent("alice@example.com", &[NUMBER]).await;
        let bob = p.a.agent("bob@example.com", &[NUMBER]).await;
        p.a.inbound("+14155550811", NUMBER, "hi").await;
        let id = p.a.conversation(&alice, "+14155550811").await;
        let mut sockets = [p.a.socket(&bob).await, p.b.socket(&bob).await];

        let (status, _) = patch(&p.a, &alice, &id, json!({"assigneeId": bob.id})).await;
        assert_eq!(status, 200);
        for s in &mut sockets {
            let pushed = s.next("conversation:updated").await;
            assert_eq!(
                (&pushed["id"], &pushed["assignee"]["id"]),
                (&json!(id), &json!(bob.id))
            );
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snoozes_that_run_out_are_pushed_once_by_two_instances() {
    with_two(StdDuration::from_millis(100), async |p| {
        let alice = p.a.agent("alice@example.com", &[NUMBER]).await;
        let mut ids = Vec::new();
        for i in 0..10 {
            let contact = format!("+141555508{:02}", 20 + i);
            p.a.inbound(&contact, NUMBER, "hi").await;
            ids.push(p.a.conversation(&alice, &contact).await);
        }
        let mut sockets = [p.a.socket(&alice).await, p.b.socket(&alice).await];
        let until = (Utc::now() + Duration::seconds(2)).to_rfc3339();
        for id in &ids {
            let (status, c) = patch(
                &p.a,
                &alice,
                id,
                json!({"status": "snoozed", "snoozedUntil": until}),
            )
            .await;
            assert_eq!(status, 200, "{c}");
        }
        for s in &mut sockets {
            let mut opened: HashMap<String, usize> = HashMap::new();
            while opened.len() < ids.len() {
                let c = s.next("conversation:updated").await;
                if c["status"] == "open" {
                    *opened
                        .entry(c["id"].as_str().unwrap().to_owned())
                        .or_default() += 1;
                }
            }
            assert!(opened.values().all(|n| *n == 1), "{opened:?}");
        }
        // Each instance's events reach a socket in order, and both looked again since: a
        // second reopening would have come before these.
        for (s, app) in sockets.iter_mut().zip([&p.a, &p.b]) {
            patch(app, &alice, &ids[0], json!({"contactName": "after"})).await;
            let next: Value = s
                .next_where("conversation:updated", |c| c["status"] != "snoozed")
                .await;
            assert_eq!(next["contact"]["name"], "after", "reopened twice: {next}");
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_that_missed_the_events_has_the_conversations_in_sync() {
    with_two(StdDuration::from_secs(3600), async |mut p| {
        let alice = p.a.agent("alice@example.com", &[NUMBER]).await;
        p.a.inbound("+14155550812", NUMBER, "hi").await;
        let id = p.a.conversation(&alice, "+14155550812").await;
        let (_, before) =
            p.b.get_as::<Changes>("/api/crm/sms/sync?since=0", Some(&alice))
                .await;

        p.redis.stop();
        for app in [&p.a, &p.b] {
            wait_for_redis(app, "down").await;
        }
        patch(
            &p.a,
            &alice,
            &id,
            json!({"contactName": "Renamed", "status": "closed"}),
        )
        .await;
        let (status, changes) =
            p.b.get_as::<Changes>(
                &format!("/api/crm/sms/sync?since={}", before.cursor),
                Some(&alice),
            )
            .await;
        assert_eq!(status, 200);
        let [c] = &changes.conversations[..] else {
            panic!("the changed conversation: {changes:?}")
        };
        assert_eq!(c.id.to_string(), id);
        assert_eq!(
            (c.contact.name.as_deref(), c.status),
            (Some("Renamed"), ConversationStatus::Closed)
        );
    })
    .await
}
