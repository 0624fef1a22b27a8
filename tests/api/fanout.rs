//! Several instances (docs/reliability.md): two real instances on one PostgreSQL database and a
//! private Redis. An event raised on either reaches the agent's sockets on both, once;
//! logout on one, or an admin disabling the agent there, disconnects the sockets on the
//! other; and while Redis is down everything keeps answering, sockets of the instance that raised an event still get it,
//! the others catch up through `sync`, and fan-out comes back with Redis by itself. An
//! instance started while Redis is down starts, and connects when Redis is back.
//! (What an instance does about what it missed meanwhile: `resync.rs`.)

use std::time::Duration;

use serde_json::{Value, json};
use smsdesk::api::health::Readiness;
use smsdesk::api::sync::Changes;
use smsdesk::config::DEFAULT_SESSION_CHECK_PERIOD;

use crate::helpers::{Backend, Mode, RedisServer, Socket, TestApp, wait_until, with_database};

const NUMBER: &str = "+15550001000";
const CONTACT: &str = "+14155550123";

/// Two instances sharing a database and a Redis.
pub struct Pair {
    pub a: TestApp,
    pub b: TestApp,
    pub redis: RedisServer,
}

/// Runs `test` on two instances with `REDIS_URL`, on a fresh PostgreSQL database. Skips
/// without `TEST_DATABASE_URL` or `redis-server` (fails instead under `CI`).
async fn with_two_instances(test: impl AsyncFnOnce(Pair)) {
    with_two_instances_checking(DEFAULT_SESSION_CHECK_PERIOD, test).await
}

/// [`with_two_instances`] whose instances check their sockets' sessions every `period`.
pub async fn with_two_instances_checking(period: Duration, test: impl AsyncFnOnce(Pair)) {
    let Some(redis) = RedisServer::start().await else {
        return;
    };
    with_database(Backend::Postgres, async move |url| {
        let spawn = || {
            TestApp::builder()
                .mode(Mode::FakeTwilio)
                .env("REDIS_URL", redis.url())
                .settings(move |s| s.session_check_period = period)
                .spawn(&url)
        };
        let (a, b) = (spawn().await, spawn().await);
        test(Pair { a, b, redis }).await
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inbound_sms_reaches_the_sockets_on_both_instances_once() {
    with_two_instances(async |p| {
        let alice = p.a.agent("alice@example.com", &[NUMBER]).await;
        let mut sockets = [p.a.socket(&alice).await, p.b.socket(&alice).await];

        let first = p.b.inbound(CONTACT, NUMBER, "to b").await;
        for s in &mut sockets {
            assert_eq!(s.next("message:new").await["twilioSid"], first);
        }
        let second = p.a.inbound(CONTACT, NUMBER, "to a").await;
        // Events from one instance arrive in order, so a duplicate of the first would have
        // come before the second.
        for s in &mut sockets {
            assert_eq!(
                s.next("message:new").await["twilioSid"],
                second,
                "the first came twice"
            );
        }
        let third = p.b.inbound(CONTACT, NUMBER, "to b again").await;
        for s in &mut sockets {
            assert_eq!(
                s.next("message:new").await["twilioSid"],
                third,
                "the second came twice"
            );
            assert!(s.received("message:new").is_empty());
            assert!(s.received("resync").is_empty(), "nothing was missed");
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_callbacks_on_one_instance_reach_sockets_on_both() {
    with_two_instances(async |p| {
        let alice = p.a.agent("alice@example.com", &[NUMBER]).await;
        let conversation = p.a.conversation(&alice, CONTACT).await;
        let (status, sent) = p.a.send(&alice, &conversation, "hello", "c-1").await;
        assert_eq!(status, 202, "{sent}");
        let id = sent["message"]["id"].as_str().unwrap().to_owned();
        let sid =
            p.a.wait_status(&alice, &id, "queued")
                .await
                .twilio_sid
                .unwrap();
        let mut sockets = [p.a.socket(&alice).await, p.b.socket(&alice).await];

        let r =
            p.b.post_webhook(
                "/api/crm/sms/status-webhook",
                &[("MessageSid", &sid), ("MessageStatus", "delivered")],
            )
            .await;
        assert_eq!(r.status(), 200);
        for s in &mut sockets {
            let pushed = s
                .next_where("message:status", |v| v["status"] == "delivered")
                .await;
            assert_eq!(pushed["id"], id.as_str());
        }
        // A later event from the same instance: any duplicate would have come first.
        let later = p.b.inbound(CONTACT, NUMBER, "thanks").await;
        for s in &mut sockets {
            assert_eq!(s.next("message:new").await["twilioSid"], later);
            let again: Vec<Value> = s.received("message:status");
            assert!(
                again.iter().all(|v| v["status"] != "delivered"),
                "delivered came twice: {again:?}"
            );
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typing_on_one_instance_reaches_the_other_agent_on_the_other() {
    with_two_instances(async |p| {
        let alice = p.a.agent("alice@example.com", &[NUMBER]).await;
        let bob = p.b.agent("bob@example.com", &[NUMBER]).await;
        let mut alice_on_a = p.a.socket(&alice).await;
        let mut bob_on_b = p.b.socket(&bob).await;
        p.a.inbound(CONTACT, NUMBER, "hi").await;
        let conversation = bob_on_b.next("message:new").await["conversationId"].clone();
        alice_on_a.next("message:new").await;

        for is_typing in [true, false] {
            alice_on_a
                .emit(
                    "typing",
                    json!({"conversationId": conversation, "isTyping": is_typing}),
                )
                .await;
            let typing = bob_on_b.next("typing").await;
            assert_eq!(typing["agentId"], alice.id.as_str());
            assert_eq!(typing["conversationId"], conversation);
            assert_eq!(typing["isTyping"], is_typing, "once each, in order");
        }
        // Alice's own typing is not sent back to her, from either instance.
        let later = p.b.inbound(CONTACT, NUMBER, "still there?").await;
        assert_eq!(alice_on_a.next("message:new").await["twilioSid"], later);
        assert!(alice_on_a.received("typing").is_empty());
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canned_reply_changed_on_one_instance_reaches_every_agent_on_both_once() {
    with_two_instances(async |p| {
        // Agents who share no number: a reply is everyone's.
        let alice = p.a.agent("alice@example.com", &[NUMBER]).await;
        let bob = p.b.agent("bob@example.com", &["+15550002000"]).await;
        let mut sockets = [
            p.a.socket(&alice).await,
            p.b.socket(&alice).await,
            p.a.socket(&bob).await,
            p.b.socket(&bob).await,
        ];

        let (status, added) =
            p.b.post_json(
                "/api/crm/sms/replies",
                Some(&alice),
                json!({"shortcut": "thanks", "body": "Thanks!"}),
            )
            .await;
        assert_eq!(status, 201, "{added}");
        for s in &mut sockets {
            assert_eq!(s.next("reply:changed").await, added);
        }
        let id = added["id"].as_str().unwrap();
        let r =
            p.b.http
                .delete(p.b.url(&format!("/api/crm/sms/replies/{id}")))
                .bearer_auth(&alice.token)
                .send()
                .await
                .unwrap();
        assert_eq!(r.status(), 204);
        for s in &mut sockets {
            assert_eq!(s.next("reply:deleted").await, json!({"id": id}));
            // Events from one instance arrive in order: a second change would have come first.
            assert!(s.received("reply:changed").is_empty());
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_on_one_instance_disconnects_the_session_on_the_other() {
    with_two_instances(async |p| {
        let alice = p.a.agent("alice@example.com", &[NUMBER]).await;
        let bob = p.a.agent("bob@example.com", &[NUMBER]).await;
        let mut alice_on_b = p.b.socket(&alice).await;
        let mut alice_on_a = p.a.socket(&alice).await;
        let mut bob_on_b = p.b.socket(&bob).await;

        let (status, _) =
            p.a.post_json("/api/auth/logout", Some(&alice), json!({}))
                .await;
        assert_eq!(status, 204);
        alice_on_b.closed().await;
        alice_on_a.closed().await;

        // Only that session's sockets: Bob's on the same instance still hears.
        let sid = p.a.inbound(CONTACT, NUMBER, "hello bob").await;
        assert_eq!(bob_on_b.next("message:new").await["twilioSid"], sid);
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabling_an_agent_on_one_instance_disconnects_them_on_the_other() {
    with_two_instances(async |p| {
        // The first agent is the admin.
        let admin = p.a.agent("admin@example.com", &[NUMBER]).await;
        let bob = p.a.agent("bob@example.com", &[NUMBER]).await;
        let mut bob_on_b = p.b.socket(&bob).await;
        let mut bob_on_a = p.a.socket(&bob).await;
        let mut admin_on_b = p.b.socket(&admin).await;

        p.a.admin_patch(&admin, &bob, json!({"disabled": true}))
            .await;
        bob_on_b.closed().await;
        bob_on_a.closed().await;
        let (status, _) = p.b.get("/api/auth/me", Some(&bob)).await;
        assert_eq!(status, 401);

        let sid = p.a.inbound(CONTACT, NUMBER, "hello admin").await;
        assert_eq!(admin_on_b.next("message:new").await["twilioSid"], sid);
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_going_away_and_coming_back() {
    with_two_instances(async |mut p| {
        let alice = p.a.agent("alice@example.com", &[NUMBER]).await;
        let conversation = p.a.conversation(&alice, CONTACT).await;
        let mut on_a = p.a.socket(&alice).await;
        let mut on_b = p.b.socket(&alice).await;
        for app in [&p.a, &p.b] {
            wait_for_redis(app, "up").await;
        }

        p.redis.stop();
        for app in [&p.a, &p.b] {
            wait_for_redis(app, "down").await;
        }
        // Webhooks and the API answer as ever; this instance's sockets still hear.
        let while_down = p.b.inbound(CONTACT, NUMBER, "while redis is down").await;
        assert_eq!(on_b.next("message:new").await["twilioSid"], while_down);
        let (status, sent) = p.a.send(&alice, &conversation, "reply", "c-down").await;
        assert_eq!(status, 202, "{sent}");
        let reply = sent["message"]["id"].clone();
        assert_eq!(on_a.next("message:new").await["id"], reply);
        // The other instance's sockets catch up through sync, as the page does on reconnect.
        let (status, changes) =
            p.a.get_as::<Changes>("/api/crm/sms/sync?since=0", Some(&alice))
                .await;
        assert_eq!(status, 200);
        assert!(
            changes
                .messages
                .iter()
                .any(|m| m.twilio_sid.as_deref() == Some(while_down.as_str())),
            "sync on a shows what b received"
        );

        p.redis.restart().await;
        for app in [&p.a, &p.b] {
            wait_for_redis(app, "up").await;
        }
        let back = p.b.inbound(CONTACT, NUMBER, "redis is back").await;
        assert_eq!(
            next_inbound(&mut on_a).await,
            back,
            "a never hears what b raised while redis was down, and hears b again"
        );
        assert_eq!(next_inbound(&mut on_b).await, back);
        let from_a = p.a.inbound(CONTACT, NUMBER, "and the other way").await;
        for s in [&mut on_a, &mut on_b] {
            assert_eq!(next_inbound(s).await, from_a);
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_started_while_redis_is_down_starts_and_connects_when_it_is_back() {
    let Some(mut redis) = RedisServer::start().await else {
        return;
    };
    redis.stop();
    let redis_url = redis.url();
    with_database(Backend::Postgres, async |url| {
        let spawn = || {
            TestApp::builder()
                .mode(Mode::FakeTwilio)
                .env("REDIS_URL", redis_url.clone())
                .spawn(&url)
        };
        let a = spawn().await;
        wait_for_redis(&a, "down").await;
        let alice = a.agent("alice@example.com", &[NUMBER]).await;
        let mut on_a = a.socket(&alice).await;
        let local = a.inbound(CONTACT, NUMBER, "while redis is down").await;
        assert_eq!(next_inbound(&mut on_a).await, local);

        redis.restart().await;
        wait_for_redis(&a, "up").await;
        // Connected only now: whatever other instances published before never reached it.
        on_a.next("resync").await;
        let b = spawn().await;
        wait_for_redis(&b, "up").await;
        let from_b = b.inbound(CONTACT, NUMBER, "through redis").await;
        assert_eq!(next_inbound(&mut on_a).await, from_b);
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_says_nothing_of_redis_without_it() {
    with_database(Backend::Sqlite, async |url| {
        let app = TestApp::builder().spawn(&url).await;
        let (status, body) = app.get("/readyz", None).await;
        assert_eq!(status, 200);
        assert!(body.get("redis").is_none(), "{body}");
    })
    .await
}

/// Waits until `/readyz` of `app` says Redis is `state`, staying `200` all along.
pub async fn wait_for_redis(app: &TestApp, state: &str) {
    wait_until(&format!("readyz to say redis is {state}"), async || {
        let (status, ready) = app.get_as::<Readiness>("/readyz", None).await;
        assert_eq!(status, 200, "ready while the database answers: {ready:?}");
        match ready.redis.as_deref() {
            Some(s) if s == state => Ok(()),
            _ => Err(format!("{ready:?}")),
        }
    })
    .await
}

/// The sid of the next inbound `message:new`, skipping those of sends.
pub async fn next_inbound(socket: &mut Socket) -> String {
    let message = socket
        .next_where("message:new", |m| m["direction"] == "inbound")
        .await;
    message["twilioSid"].as_str().unwrap().to_owned()
}
