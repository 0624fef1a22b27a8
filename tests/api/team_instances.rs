//! The team inbox on two instances sharing a PostgreSQL database and a Redis: an assignment
//! made on one reaches the agents' sockets on both; snoozes that run out are reopened and
//! pushed once, though both instances look for them; an instance that missed the events
//! while Redis was down has the conversations' new state in `sync`; and writers of every kind
//! on both leave counts that are what the lists hold.

use std::collections::HashMap;
use std::time::Duration as StdDuration;

use chrono::{Duration, Utc};
use serde_json::{Value, json};
use smsdesk::api::conversations::ConversationPage;
use smsdesk::api::sync::Changes;
use smsdesk::model::ConversationStatus;

use crate::fanout::{Pair, wait_for_redis};
use crate::helpers::{Agent, Backend, Mode, RedisServer, TestApp, wait_until, with_database};
use crate::team_inbox::{OTHER, SHARED, counts, patch};
use crate::team_rules::{COUNTERS_OFF, counted};

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writers_of_every_kind_on_two_instances_leave_the_counts_right() {
    with_two(StdDuration::from_millis(100), async |p| {
        writers_of_every_kind([&p.a, &p.b]).await
    })
    .await
}

/// Writers of every kind at once, each round spread over the two instances `apps` of one
/// database (or twice the same one): inbound messages to new conversations and to existing
/// ones (closed and snoozed ones too, which reopens them), assignments and unassignments,
/// closes, reopens and snoozes, sends to unassigned conversations (which assigns the
/// sender), snoozes that run out while the others write, and an agent disabled halfway.
/// Afterwards each agent's counts, on each instance, are what the views hold paged to the
/// end, and the counters (with their changes not folded yet, then folded) are what a
/// `GROUP BY` over the conversations gives.
pub async fn writers_of_every_kind(apps: [&TestApp; 2]) {
    let a = apps[0];
    let alice = a.agent("alice@example.com", &[SHARED, OTHER]).await;
    let bob = a.agent("bob@example.com", &[SHARED]).await;
    let carol = a.agent("carol@example.com", &[SHARED, OTHER]).await;
    let dave = a.agent("dave@example.com", &[OTHER]).await;
    let mut conversations = Vec::new();
    for i in 0..8 {
        let (contact, number) = (format!("+141555504{i:02}"), [SHARED, OTHER][i / 5]);
        apps[i % 2].inbound(&contact, number, "hi").await;
        let id = a.conversation_from(&alice, &contact, Some(number)).await;
        conversations.push((contact, number, id));
    }
    let snooze =
        |d: Duration| json!({"status": "snoozed", "snoozedUntil": (Utc::now() + d).to_rfc3339()});
    for round in 0..8 {
        let on = |k: usize| apps[(k + round) % 2];
        let edits = conversations
            .iter()
            .enumerate()
            .map(|(k, (_, number, id))| {
                let (body, may_refuse) = match (k + round) % 7 {
                    0 if *number == SHARED => (json!({"assigneeId": bob.id}), false),
                    0 => (json!({"assigneeId": dave.id}), false),
                    // Refused once Carol is disabled.
                    1 => (json!({"assigneeId": carol.id}), round >= 4),
                    2 => (json!({"assigneeId": null}), false),
                    3 => (json!({"status": "closed"}), false),
                    4 => (snooze(Duration::days(1)), false),
                    5 => (snooze(Duration::seconds(2)), false),
                    _ => (json!({"status": "open"}), false),
                };
                let alice = &alice;
                async move {
                    let (status, answer) = patch(on(k), alice, id, body).await;
                    assert!(
                        status == 200 || (may_refuse && status == 422),
                        "{status} {answer} round {round} edit {k}"
                    );
                }
            });
        let (_, _, to_reply) = &conversations[round % 5];
        let client_id = format!("c-{round}");
        let send = on(1).send(&bob, to_reply, "on it", &client_id);
        let existing = [round * 3 % 8, (round * 3 + 1) % 8].map(|k| &conversations[k]);
        let fresh = [
            (format!("+141555505{round:02}"), SHARED),
            (format!("+141555506{round:02}"), OTHER),
        ];
        let inbound = existing
            .iter()
            .map(|(contact, number, _)| (contact.as_str(), *number))
            .chain(
                fresh
                    .iter()
                    .map(|(contact, number)| (contact.as_str(), *number)),
            )
            .enumerate()
            .map(|(k, (contact, number))| on(k).inbound(contact, number, "again"));
        let disable = async {
            if round == 4 {
                on(0)
                    .admin_patch(&alice, &carol, json!({"disabled": true}))
                    .await;
            }
        };
        let (_, (sent, _), _, ()) = tokio::join!(
            futures_util::future::join_all(edits),
            send,
            futures_util::future::join_all(inbound),
            disable
        );
        assert_eq!(sent, 202);
    }
    // Each instance looks every 0.1 s: once the short snoozes have run out, nothing changes.
    wait_until("the short snoozes run out", async || {
        let (_, page) = a
            .get_as::<ConversationPage>(
                "/api/crm/sms/conversations?status=snoozed&limit=100",
                Some(&alice),
            )
            .await;
        page.conversations.iter().all(|c| {
            c.snoozed_until
                .is_some_and(|t| t > Utc::now() + Duration::hours(1))
        })
    })
    .await;
    for app in apps {
        for agent in [&alice, &bob, &dave] {
            let agent: &Agent = agent;
            assert_eq!(
                counts(app, agent).await,
                counted(app, agent).await,
                "the counts are what the lists hold"
            );
        }
    }
    assert_eq!(a.scalar(COUNTERS_OFF).await, 0, "the counters drifted");
    wait_until("the changes of the counters are folded", async || {
        a.scalar("SELECT COUNT(*) FROM conversation_count_changes")
            .await
            == 0
    })
    .await;
    assert_eq!(a.scalar(COUNTERS_OFF).await, 0, "a fold lost a change");
}
