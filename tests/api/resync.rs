//! What an instance misses while its Redis subscription is lost (Redis stopped, or the
//! instance's subscriber dropped by Redis while Redis stays up): the sessions that other
//! instances ended, and the events they raised. It finds the ended sessions in the database,
//! every check period and as soon as it is subscribed again, and then tells its sockets to
//! `resync` (the page calls `sync`). Also: typing limited per agent and conversation across
//! instances.

use std::time::{Duration, Instant};

use serde_json::json;
use smsdesk::api::health::Readiness;
use smsdesk::api::sync::Changes;
use smsdesk::config::DEFAULT_SESSION_CHECK_PERIOD;

use crate::fanout::{Pair, next_inbound, wait_for_redis, with_two_instances_checking};
use crate::helpers::{Agent, RedisClient, RedisServer, TestApp, wait_until};

const NUMBER: &str = "+15550001000";
const CONTACT: &str = "+14155550123";
/// Long enough that nothing in a test comes from the periodic check.
const NEVER: Duration = Duration::from_secs(3600);

/// Whether `agent`'s `sync` on `app` from the start shows the inbound message `sid`.
async fn synced(app: &TestApp, agent: &Agent, sid: &str) -> bool {
    let (status, changes) = app
        .get_as::<Changes>("/api/crm/sms/sync?since=0", Some(agent))
        .await;
    assert_eq!(status, 200);
    changes
        .messages
        .iter()
        .any(|m| m.twilio_sid.as_deref() == Some(sid))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_redis_outage_an_instance_ends_the_sessions_it_missed_and_resyncs() {
    with_two_instances_checking(NEVER, async |mut p| {
        let alice = p.a.agent("alice@example.com", &[NUMBER]).await;
        let bob = p.a.agent("bob@example.com", &[NUMBER]).await;
        let mut alice_on_b = p.b.socket(&alice).await;
        let mut bob_on_b = p.b.socket(&bob).await;
        let mut bob_on_a = p.a.socket(&bob).await;
        for app in [&p.a, &p.b] {
            wait_for_redis(app, "up").await;
        }

        p.redis.stop();
        for app in [&p.a, &p.b] {
            wait_for_redis(app, "down").await;
        }
        let (status, _) =
            p.a.post_json("/api/auth/logout", Some(&alice), json!({}))
                .await;
        assert_eq!(status, 204);
        let missed = p.a.inbound(CONTACT, NUMBER, "while redis is down").await;
        assert_eq!(next_inbound(&mut bob_on_a).await, missed);

        p.redis.restart().await;
        alice_on_b.closed().await;
        // Bob's page on b is told to catch up, and sync has what it missed.
        bob_on_b.next("resync").await;
        assert!(synced(&p.b, &bob, &missed).await);
        bob_on_a.next("resync").await;
        assert!(
            alice_on_b.received("resync").is_empty(),
            "the ended session's socket was disconnected first"
        );
        let back = p.a.inbound(CONTACT, NUMBER, "redis is back").await;
        assert_eq!(next_inbound(&mut bob_on_b).await, back);
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_redis_is_down_an_ended_session_is_disconnected_within_the_check_period() {
    let period = Duration::from_millis(500);
    with_two_instances_checking(period, async |mut p| {
        let admin = p.a.agent("admin@example.com", &[NUMBER]).await;
        let bob = p.a.agent("bob@example.com", &[NUMBER]).await;
        let carol = p.a.agent("carol@example.com", &[NUMBER]).await;
        let mut bob_on_b = p.b.socket(&bob).await;
        let mut carol_on_b = p.b.socket(&carol).await;
        p.redis.stop();
        for app in [&p.a, &p.b] {
            wait_for_redis(app, "down").await;
        }

        p.a.admin_patch(&admin, &bob, json!({"disabled": true}))
            .await;
        bob_on_b.closed().await;
        wait_for_redis(&p.b, "down").await;

        // Carol's session holds: her socket stays, and hears b's own events.
        let sid = p.b.inbound(CONTACT, NUMBER, "for carol").await;
        assert_eq!(next_inbound(&mut carol_on_b).await, sid);
    })
    .await
}

/// The subscriber of the instance with the newest connection to Redis: its id.
async fn newest_subscriber(redis: &mut RedisClient) -> String {
    let clients = redis.command(&["CLIENT", "LIST"]).await.unwrap();
    clients
        .lines()
        .filter(|c| {
            c.split(' ')
                .any(|f| f.starts_with("ssub=") && f != "ssub=0")
        })
        .filter_map(|c| {
            c.strip_prefix("id=")?
                .split(' ')
                .next()?
                .parse::<u64>()
                .ok()
        })
        .max()
        .expect("the instances' subscribers")
        .to_string()
}

/// Once both of `apps` are subscribed, has Redis drop the newest subscriber and refuse it a
/// new connection until [`let_subscribers_back`]; the client that did it, and which of
/// `apps` lost its subscriber, once the other one is subscribed.
async fn drop_one_subscriber(server: &RedisServer, apps: [&TestApp; 2]) -> (RedisClient, usize) {
    for app in apps {
        wait_for_redis(app, "up").await;
    }
    let mut redis = server.client().await;
    let subscriber = newest_subscriber(&mut redis).await;
    // Room for the other instance's connection and this one: no more.
    redis
        .command(&["CONFIG", "SET", "maxclients", "2"])
        .await
        .unwrap();
    redis
        .command(&["CLIENT", "KILL", "ID", &subscriber])
        .await
        .unwrap();
    let dropped = wait_until("an instance to lose its subscriber", async || {
        for (i, app) in apps.iter().enumerate() {
            let (_, ready) = app.get_as::<Readiness>("/readyz", None).await;
            if ready.redis.as_deref() == Some("down") {
                return Some(i);
            }
        }
        None
    })
    .await;
    wait_for_redis(apps[1 - dropped], "up").await;
    (redis, dropped)
}

/// Lets the instance [`drop_one_subscriber`] cut off connect again.
async fn let_subscribers_back(redis: &mut RedisClient) {
    redis
        .command(&["CONFIG", "SET", "maxclients", "10000"])
        .await
        .unwrap();
}

/// Redis drops one instance's subscriber (as its output-buffer limit does with an instance
/// that stalled) and keeps refusing it, while the other instance publishes a logout and a
/// message: Redis never stops, yet the dropped instance missed both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_whose_subscriber_redis_dropped_ends_missed_sessions_and_resyncs() {
    with_two_instances_checking(NEVER, async |p: Pair| {
        let alice = p.a.agent("alice@example.com", &[NUMBER]).await;
        let bob = p.a.agent("bob@example.com", &[NUMBER]).await;
        let mut alice_on = [p.a.socket(&alice).await, p.b.socket(&alice).await];
        let mut bob_on = [p.a.socket(&bob).await, p.b.socket(&bob).await];
        let apps = [&p.a, &p.b];
        let (mut redis, dropped) = drop_one_subscriber(&p.redis, apps).await;
        let other = 1 - dropped;

        let (status, _) = apps[other]
            .post_json("/api/auth/logout", Some(&alice), json!({}))
            .await;
        assert_eq!(status, 204);
        alice_on[other].closed().await;
        let missed = apps[other].inbound(CONTACT, NUMBER, "missed").await;
        assert_eq!(next_inbound(&mut bob_on[other]).await, missed);

        let_subscribers_back(&mut redis).await;
        alice_on[dropped].closed().await;
        bob_on[dropped].next("resync").await;
        assert!(synced(apps[dropped], &bob, &missed).await);
        // Only the instance that missed something resyncs: a later event from the dropped
        // instance reaches the other, with no resync before it.
        wait_for_redis(apps[dropped], "up").await;
        let later = apps[dropped].inbound(CONTACT, NUMBER, "later").await;
        assert_eq!(next_inbound(&mut bob_on[other]).await, later);
        assert!(bob_on[other].received("resync").is_empty());
    })
    .await
}

/// While one instance is cut off from Redis, what it raises reaches its own sockets only. The
/// other instance, subscribed all along, has no reason to tell its sockets to `resync`: the
/// instance that was cut off does, once it is subscribed again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_that_delivered_to_its_own_sockets_only_resyncs_every_instance() {
    with_two_instances_checking(NEVER, async |p: Pair| {
        let bob = p.a.agent("bob@example.com", &[NUMBER]).await;
        let mut bob_on = [p.a.socket(&bob).await, p.b.socket(&bob).await];
        let apps = [&p.a, &p.b];
        let (mut redis, dropped) = drop_one_subscriber(&p.redis, apps).await;
        let other = 1 - dropped;

        let here_only = apps[dropped].inbound(CONTACT, NUMBER, "here only").await;
        assert_eq!(next_inbound(&mut bob_on[dropped]).await, here_only);

        let_subscribers_back(&mut redis).await;
        bob_on[dropped].next("resync").await;
        bob_on[other].next("resync").await;
        assert!(synced(apps[other], &bob, &here_only).await);
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typing_is_relayed_at_most_twice_a_second_across_instances() {
    with_two_instances_checking(DEFAULT_SESSION_CHECK_PERIOD, async |mut p| {
        let alice = p.a.agent("alice@example.com", &[NUMBER]).await;
        let bob = p.a.agent("bob@example.com", &[NUMBER]).await;
        let mut bob_on_a = p.a.socket(&bob).await;
        p.a.inbound(CONTACT, NUMBER, "hello team").await;
        let conversation = bob_on_a.next("message:new").await["conversationId"].clone();
        let typing = json!({"conversationId": conversation, "isTyping": true});
        let alice_on = [p.a.socket(&alice).await, p.b.socket(&alice).await];
        for app in [&p.a, &p.b] {
            wait_for_redis(app, "up").await;
        }

        // Alice's tabs on both instances type at once, for long enough that each instance
        // alone would relay several.
        let started = Instant::now();
        while started.elapsed() < Duration::from_millis(2500) {
            for socket in &alice_on {
                socket.emit("typing", typing.clone()).await;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let burst = started.elapsed();
        // A relayed state ends by itself 6 s after it started: once one ends, every `true`
        // relayed is in.
        let mut relayed = 0;
        loop {
            let t = bob_on_a.next("typing").await;
            if t["isTyping"] == false {
                break;
            }
            relayed += 1;
        }
        let allowed = 3 + (burst.as_millis() / 500) as usize;
        assert!(
            (1..=allowed).contains(&relayed),
            "{relayed} relayed in {burst:?} from two instances"
        );

        // Without Redis, each instance's own limit still holds, and typing still goes out.
        p.redis.stop();
        wait_for_redis(&p.a, "down").await;
        alice_on[0].emit("typing", typing).await;
        let t = bob_on_a
            .next_where("typing", |t| t["isTyping"] == true)
            .await;
        assert_eq!(t["agentId"], alice.id.as_str());
    })
    .await
}
