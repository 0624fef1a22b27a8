//! The sync watermark: `sync` never skips a change, whichever instance wrote it and however
//! late it commits, and never returns one twice (docs/reliability.md, "The sync watermark"). Several instances need
//! PostgreSQL; SQLite is tested with its one instance.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};

use futures_util::FutureExt;
use futures_util::future::join_all;
use serde::Deserialize;
use sqlx::{Connection, PgConnection};

use crate::helpers::{Agent, Backend, Mode, TestApp, wait_until, with_database};

const NUMBERS: [&str; 2] = ["+15550001000", "+15550002000"];
/// Few contacts, so that writers meet on the same conversation rows and wait for each other.
const CONTACTS: usize = 6;
const INBOUND_WRITERS: usize = 24;
const INBOUND_EACH: usize = 60;
const SEND_WRITERS: usize = 12;
/// Each send is four changes: stored, taken by Twilio, sent, delivered.
const SENDS_EACH: usize = 30;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_change_is_seen_once_with_two_instances_on_postgres() {
    with_database(Backend::Postgres, async |url| {
        let apps = vec![
            spawn(&url, Mode::FakeTwilio).await,
            spawn(&url, Mode::FakeTwilio).await,
        ];
        every_change_seen_once(apps).await
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_change_is_seen_once_on_sqlite() {
    with_database(Backend::Sqlite, async |url| {
        every_change_seen_once(vec![spawn(&url, Mode::FakeTwilio).await]).await
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_in_flight_on_one_instance_holds_back_sync_on_both() {
    with_database(Backend::Postgres, async |url| {
        // Twilio stays down, so nothing changes the send after it is stored.
        let a = spawn(&url, Mode::TwilioDown).await;
        let b = spawn(&url, Mode::TwilioDown).await;
        write_in_flight(&url, &a, &b).await
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_of_another_database_holds_nothing_back() {
    with_database(Backend::Postgres, async |url| {
        let app = spawn(&url, Mode::Simulator).await;
        other_database_in_flight(&app).await
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_holds_every_change_committed_before_it_despite_a_write_in_flight() {
    with_database(Backend::Postgres, async |url| {
        let app = spawn(&url, Mode::Simulator).await;
        committed_before_sync(&url, &app).await
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_after_a_restore_come_after_the_restored_ones() {
    with_database(Backend::Postgres, async |url| {
        let mut before = spawn(&url, Mode::Simulator).await;
        after_restore(&url, &mut before).await
    })
    .await
}

async fn spawn(url: &str, mode: Mode) -> TestApp {
    TestApp::builder().mode(mode).spawn(url).await
}

/// A message as `sync` returns it, as far as this file looks at it.
#[derive(Debug, Deserialize)]
struct Change {
    id: String,
    seq: i64,
    status: String,
    body: String,
}

#[derive(Deserialize)]
struct SyncPage {
    messages: Vec<Change>,
    cursor: i64,
    #[serde(rename = "hasMore")]
    has_more: bool,
}

/// Pages through `sync` from `cursor` as the page does, until there is no more; returns
/// what it got and the new cursor.
async fn catch_up(app: &TestApp, agent: &Agent, mut cursor: i64) -> (Vec<Change>, i64) {
    let mut got = Vec::new();
    loop {
        let (status, page) = app
            .get_as::<SyncPage>(
                &format!("/api/crm/sms/sync?since={cursor}&limit=500"),
                Some(agent),
            )
            .await;
        assert_eq!(status, 200);
        let empty = page.messages.is_empty();
        got.extend(page.messages);
        cursor = page.cursor;
        if !page.has_more || empty {
            return (got, cursor);
        }
    }
}

/// Dozens of writers (inbound webhooks, sends, status callbacks) spread over `apps`, while
/// a tight `sync` loop on each instance follows its cursor; at the end every loop has seen
/// every message's final state, and no change twice.
async fn every_change_seen_once(apps: Vec<TestApp>) {
    let agent = apps[0].agent("alice@example.com", &NUMBERS).await;
    let mut conversations = Vec::new();
    for c in 0..CONTACTS {
        conversations.push(apps[0].conversation(&agent, &contact(c)).await);
    }
    let sends = SEND_WRITERS * SENDS_EACH;
    let messages = INBOUND_WRITERS * INBOUND_EACH + sends;

    // One task drives the writers and the loops; the servers do the work on their own.
    let stop = AtomicBool::new(false);
    let loops = join_all(apps.iter().map(|app| follow(app, &agent, &stop)));
    let writes = async {
        let inbound = (0..INBOUND_WRITERS).map(|w| inbound_writer(&apps, w).boxed_local());
        let sending =
            (0..SEND_WRITERS).map(|w| send_writer(&apps, &agent, &conversations, w).boxed_local());
        join_all(inbound.chain(sending)).await;
        // The queue's last records (a send taken by Twilio after its callbacks) are changes too.
        apps[0].wait_queue_empty().await;
        let last = wait_until("every message in its final state", async || {
            let (all, _) = catch_up(&apps[0], &agent, 0).await;
            let last: HashMap<String, Change> =
                all.into_iter().map(|c| (c.id.clone(), c)).collect();
            let delivered = last.values().filter(|c| c.status == "delivered").count();
            if last.len() == messages && delivered == sends {
                Ok(last)
            } else {
                Err(format!("{} messages, {delivered} delivered", last.len()))
            }
        })
        .await;
        stop.store(true, Ordering::SeqCst);
        last
    };
    let (seen_by, last) = tokio::join!(loops, writes);

    let mut faults = Vec::new();
    for (i, seen) in seen_by.iter().enumerate() {
        let mut once = HashSet::new();
        let twice: Vec<&Change> = seen
            .iter()
            .filter(|c| !once.insert((c.id.as_str(), c.seq)))
            .collect();
        let missed: Vec<&Change> = last
            .values()
            .filter(|c| !once.contains(&(c.id.as_str(), c.seq)))
            .collect();
        if !missed.is_empty() || !twice.is_empty() {
            faults.push(format!(
                "sync on instance {i} returned {} changes of {messages} messages: it never \
                 returned the final state of {} of them ({:?}…), and {} changes twice ({:?}…)",
                seen.len(),
                missed.len(),
                missed.iter().take(2).collect::<Vec<_>>(),
                twice.len(),
                twice.iter().take(2).collect::<Vec<_>>(),
            ));
        }
        assert!(
            seen.windows(2).all(|w| w[0].seq < w[1].seq),
            "sync on instance {i} returned changes out of seq order"
        );
    }
    assert!(faults.is_empty(), "{}", faults.join("\n"));
}

fn contact(i: usize) -> String {
    format!("+1415555{:04}", i % CONTACTS)
}

/// `sync` in a loop as tight as the requests allow, each call from the last one's cursor;
/// once `stop` is set, one more catch-up. Returns every change in the order returned.
async fn follow(app: &TestApp, agent: &Agent, stop: &AtomicBool) -> Vec<Change> {
    let mut seen = Vec::new();
    let mut cursor = 0;
    loop {
        let stopping = stop.load(Ordering::SeqCst);
        let (got, next) = catch_up(app, agent, cursor).await;
        seen.extend(got);
        cursor = next;
        if stopping {
            return seen;
        }
    }
}

async fn inbound_writer(apps: &[TestApp], w: usize) {
    for i in 0..INBOUND_EACH {
        let app = &apps[(w + i) % apps.len()];
        let to = NUMBERS[w % NUMBERS.len()];
        app.inbound(&contact(w + i), to, &format!("in {w}.{i}"))
            .await;
    }
}

/// Sends, and posts each message's `sent` and `delivered` callbacks once Twilio has it, to
/// another instance than the one that took the send where there is one.
async fn send_writer(apps: &[TestApp], agent: &Agent, conversations: &[String], w: usize) {
    let n = apps.len();
    for i in 0..SENDS_EACH {
        let app = &apps[(w + i) % n];
        let body = format!("out {w}.{i}");
        let conversation = &conversations[(w + i) % conversations.len()];
        let (status, sent) = app
            .send(agent, conversation, &body, &format!("c-{w}-{i}"))
            .await;
        assert_eq!(status, 202, "{sent}");
        let id = sent["message"]["id"].as_str().unwrap();
        let sid = wait_until("Twilio to take the message", async || {
            accepted_sid(apps, &body)
        })
        .await;
        callback(&apps[(w + i + 1) % n], id, &sid, "sent").await;
        callback(app, id, &sid, "delivered").await;
    }
}

/// The sid under which Twilio (the fake of any instance) took the message with this body.
fn accepted_sid(apps: &[TestApp], body: &str) -> Option<String> {
    apps.iter()
        .filter_map(|a| a.fake.as_ref())
        .find_map(|fake| {
            let accepted = fake.state.accepted.lock().unwrap();
            accepted
                .iter()
                .find(|(_, form)| form.get("Body").is_some_and(|b| b == body))
                .map(|(sid, _)| sid.clone())
        })
}

async fn callback(app: &TestApp, id: &str, sid: &str, status: &str) {
    let r = app
        .post_webhook(
            &format!("/api/crm/sms/status-webhook?mid={id}"),
            &[("MessageSid", sid), ("MessageStatus", status)],
        )
        .await;
    let code = r.status();
    let answer = r.text().await.unwrap();
    assert_eq!(code, 200, "{status}: {answer}");
}

/// A send on `a` stays in flight (its transaction waits for a lock this test holds) while an
/// inbound message commits on `b` and both instances sync: neither may hand out a cursor
/// that passes the send, which commits afterwards.
async fn write_in_flight(url: &str, a: &TestApp, b: &TestApp) {
    let agent = a.agent("alice@example.com", &["+15550001000"]).await;
    let conversation = a.conversation(&agent, "+14155550100").await;
    b.inbound("+14155550100", "+15550001000", "before").await;
    let (_, cursor_a) = catch_up(a, &agent, 0).await;
    let (_, cursor_b) = catch_up(b, &agent, 0).await;

    let mut holder = PgConnection::connect(url).await.unwrap();
    // A table lock takes no transaction id, so only the send's own transaction is in flight.
    sqlx::query("BEGIN").execute(&mut holder).await.unwrap();
    sqlx::query("LOCK TABLE send_jobs IN SHARE MODE")
        .execute(&mut holder)
        .await
        .unwrap();
    let mut observer = PgConnection::connect(url).await.unwrap();
    let (sent, (during_a, during_b)) =
        tokio::join!(a.send(&agent, &conversation, "slow", "c-slow"), async {
            wait_until("the send to wait for the lock", async || {
                let waiting: i64 = sqlx::query_scalar(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
                     AND wait_event_type = 'Lock' AND query LIKE 'INSERT INTO send_jobs%'",
                )
                .fetch_one(&mut observer)
                .await
                .unwrap();
                waiting > 0
            })
            .await;
            b.inbound("+14155550199", "+15550001000", "fast").await;
            let during_a = catch_up(a, &agent, cursor_a).await;
            let during_b = catch_up(b, &agent, cursor_b).await;
            // A page loading now sees "fast" in its list; its sync must still start below the send.
            let (status, list) = b.get("/api/crm/sms/conversations", Some(&agent)).await;
            assert_eq!(status, 200, "{list}");
            sqlx::query("ROLLBACK").execute(&mut holder).await.unwrap();
            (during_a, (during_b, list))
        });
    let (during_b, list) = during_b;
    let (status, sent) = sent;
    assert_eq!(status, 202, "{sent}");
    let slow = (
        sent["message"]["id"].as_str().unwrap().to_owned(),
        sent["message"]["seq"].as_i64().unwrap(),
    );
    let listed: Vec<&str> = list["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["lastMessage"]["body"].as_str())
        .collect();
    assert!(listed.contains(&"fast"), "{list}");
    let list_cursor = list["syncCursor"].as_i64().expect("the list's syncCursor");
    for (name, app, (mut seen, cursor)) in [
        ("a", a, during_a),
        ("b", b, during_b),
        ("b's page", b, (Vec::new(), list_cursor)),
    ] {
        // Once sync from 0 shows the send, it is below the cutoff for good.
        wait_until("the send in sync", async || {
            let (all, _) = catch_up(app, &agent, 0).await;
            all.iter().any(|c| c.id == slow.0)
        })
        .await;
        let during: Vec<String> = seen.iter().map(|c| c.body.clone()).collect();
        seen.extend(catch_up(app, &agent, cursor).await.0);
        let once: HashSet<(&str, i64)> = seen.iter().map(|c| (c.id.as_str(), c.seq)).collect();
        assert_eq!(once.len(), seen.len(), "instance {name}: a change twice");
        assert!(
            once.contains(&(slow.0.as_str(), slow.1)),
            "instance {name} skipped the send that committed late: sync returned {during:?} \
             while it was in flight (up to cursor {cursor}, the send's seq is {}), then {:?}",
            slow.1,
            &seen[during.len()..],
        );
    }
}

/// Another database of the same cluster (another application's, or a test's) has a
/// transaction open that took an id: `sync` here still shows what commits meanwhile.
async fn other_database_in_flight(app: &TestApp) {
    let agent = app.agent("alice@example.com", &["+15550001000"]).await;
    let server = std::env::var("TEST_DATABASE_URL").unwrap();
    let mut other = PgConnection::connect(&server).await.unwrap();
    sqlx::query("BEGIN").execute(&mut other).await.unwrap();
    sqlx::query("SELECT pg_current_xact_id()")
        .execute(&mut other)
        .await
        .unwrap();
    app.inbound("+14155550100", "+15550001000", "meanwhile")
        .await;
    wait_until("the message in sync", async || {
        let (got, _) = catch_up(app, &agent, 0).await;
        !got.is_empty()
    })
    .await;
    sqlx::query("ROLLBACK").execute(&mut other).await.unwrap();
}

/// A dump restored into another cluster starts its transaction ids low again: the changes
/// after it must still come after every restored `seq`, for cursors handed out before the
/// restore and for the conversation list's order.
async fn after_restore(url: &str, before: &mut TestApp) {
    let agent = before.agent("alice@example.com", &["+15550001000"]).await;
    before
        .inbound("+14155550100", "+15550001000", "restored")
        .await;
    before.stop().await;
    // The restored rows carry the seqs of a cluster that had come much further.
    let mut db = PgConnection::connect(url).await.unwrap();
    for shift in [
        "UPDATE messages SET seq = seq + 1000000000000",
        "UPDATE conversations SET activity = activity + 1000000000000",
    ] {
        sqlx::query(shift).execute(&mut db).await.unwrap();
    }

    let after = spawn(url, Mode::Simulator).await;
    let (restored, cursor) = catch_up(&after, &agent, 0).await;
    assert_eq!(restored.len(), 1, "{restored:?}");
    after.inbound("+14155550199", "+15550001000", "after").await;
    let (new, _) = wait_until("the new message in sync", async || {
        let (got, cursor) = catch_up(&after, &agent, cursor).await;
        (!got.is_empty()).then_some((got, cursor))
    })
    .await;
    assert_eq!(new[0].body, "after", "{new:?}");
    let (_, list) = after.get("/api/crm/sms/conversations", Some(&agent)).await;
    assert_eq!(
        list["conversations"][0]["contact"]["phone"], "+14155550199",
        "the newest conversation first: {list}"
    );
}

/// A message committed (and announced) while an older write is still in flight, then a page
/// whose socket (re)joined after the announcement calls `sync`: the answer must hold the
/// message, since nothing else will bring it. The older write ends while `sync` waits for it.
async fn committed_before_sync(url: &str, app: &TestApp) {
    let agent = app.agent("alice@example.com", &["+15550001000"]).await;
    app.inbound("+14155550100", "+15550001000", "before").await;
    let (_, cursor) = catch_up(app, &agent, 0).await;

    // Another instance's write in flight: a transaction of smsdesk's database holding an id.
    let mut writer = PgConnection::connect(url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut writer).await.unwrap();
    sqlx::query("SELECT pg_current_xact_id()")
        .execute(&mut writer)
        .await
        .unwrap();
    app.inbound("+14155550100", "+15550001000", "meanwhile")
        .await;

    let mut observer = PgConnection::connect(url).await.unwrap();
    let asked: chrono::DateTime<chrono::Utc> = sqlx::query_scalar("SELECT clock_timestamp()")
        .fetch_one(&mut observer)
        .await
        .unwrap();
    let ((got, _), ()) = tokio::join!(catch_up(app, &agent, cursor), async {
        // Once the sync has read the watermark, the older write ends.
        wait_until("the sync to read the watermark", async || {
            let read: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
                 AND query = 'SELECT up_to FROM seq_visible' AND query_start > $1",
            )
            .bind(asked)
            .fetch_one(&mut observer)
            .await
            .unwrap();
            read > 0
        })
        .await;
        sqlx::query("COMMIT").execute(&mut writer).await.unwrap();
    });
    let bodies: Vec<&str> = got.iter().map(|c| c.body.as_str()).collect();
    assert_eq!(
        bodies,
        ["meanwhile"],
        "sync left out a message committed before it was asked"
    );
}
