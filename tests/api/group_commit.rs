//! Group commit of inbound webhooks: many at once, duplicates of one `MessageSid` in one
//! batch and across batches, and a batch with a message the database refuses. Each test
//! holds the database's write lock while its webhooks queue up, so that they are written as
//! one batch when it is let go.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use futures_util::future::join_all;
use smsdesk::api::sync::Changes;
use sqlx::{Connection, Executor};

use crate::helpers::{TestApp, new_sid};
use crate::on_both_backends;

on_both_backends! {
    concurrent_webhooks_are_stored_once_and_pushed_once: Simulator,
    a_message_the_database_refuses_fails_alone: Simulator,
}

const OURS: &str = "+15550001000";

/// A connection of the test's own that keeps every write of the server waiting until
/// [`WriteLock::release`].
enum WriteLock {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

impl WriteLock {
    async fn take(app: &TestApp) -> Self {
        if app.database_url.starts_with("postgres") {
            let mut db = sqlx::PgConnection::connect(&app.database_url)
                .await
                .unwrap();
            db.execute("BEGIN; LOCK TABLE conversations IN EXCLUSIVE MODE")
                .await
                .unwrap();
            Self::Postgres(db)
        } else {
            let mut db = sqlx::SqliteConnection::connect(&app.database_url)
                .await
                .unwrap();
            db.execute("BEGIN EXCLUSIVE").await.unwrap();
            Self::Sqlite(db)
        }
    }

    async fn release(self) {
        match self {
            Self::Sqlite(mut db) => db.execute("ROLLBACK").await.map(drop),
            Self::Postgres(mut db) => db.execute("ROLLBACK").await.map(drop),
        }
        .unwrap();
    }
}

/// Makes the database refuse every message whose body is `poison`, as a real constraint
/// would: the statement fails inside the database.
async fn poison(app: &TestApp) {
    if app.database_url.starts_with("postgres") {
        let mut db = sqlx::PgConnection::connect(&app.database_url)
            .await
            .unwrap();
        db.execute(
            "CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$ \
             BEGIN IF NEW.body = 'poison' THEN RAISE EXCEPTION 'poisoned'; END IF; \
             RETURN NEW; END $$; \
             CREATE TRIGGER refuse_poison BEFORE INSERT ON messages FOR EACH ROW \
             EXECUTE FUNCTION refuse_poison()",
        )
        .await
        .unwrap();
    } else {
        let mut db = sqlx::SqliteConnection::connect(&app.database_url)
            .await
            .unwrap();
        db.execute(
            "CREATE TRIGGER refuse_poison BEFORE INSERT ON messages \
             WHEN NEW.body = 'poison' BEGIN SELECT RAISE(ABORT, 'poisoned'); END",
        )
        .await
        .unwrap();
    }
}

/// Posts an inbound webhook; its status.
async fn post(app: &TestApp, sid: &str, from: &str, body: &str) -> u16 {
    app.post_webhook(
        "/api/crm/sms/webhook",
        &[
            ("MessageSid", sid),
            ("From", from),
            ("To", OURS),
            ("Body", body),
        ],
    )
    .await
    .status()
    .as_u16()
}

/// Posts every `(sid, from, body)` at once while the write lock is held, then lets the
/// writes go: the webhooks that queued meanwhile are written together. Their statuses.
async fn post_together(app: &TestApp, webhooks: &[(String, String, String)]) -> Vec<u16> {
    let lock = WriteLock::take(app).await;
    let posts = join_all(
        webhooks
            .iter()
            .map(|(sid, from, body)| post(app, sid, from, body)),
    );
    let release = async {
        // Long enough for every request to reach the writer's queue; the writer waits for
        // the lock meanwhile (SQLite's busy timeout is 5 s).
        tokio::time::sleep(Duration::from_millis(700)).await;
        lock.release().await;
    };
    let (statuses, ()) = tokio::join!(posts, release);
    statuses
}

/// Every message the agent can sync, by body.
async fn synced(app: &TestApp, agent: &crate::helpers::Agent) -> HashMap<String, usize> {
    let (status, changes) = app
        .get_as::<Changes>("/api/crm/sms/sync?since=0&limit=500", Some(agent))
        .await;
    assert_eq!(status, 200);
    let mut bodies = HashMap::new();
    for m in changes.messages {
        *bodies.entry(m.body).or_default() += 1;
    }
    bodies
}

async fn concurrent_webhooks_are_stored_once_and_pushed_once(app: TestApp) {
    let alice = app.agent("alice@example.com", &[OURS]).await;
    let mut socket = app.socket(&alice).await;
    // 40 messages from 8 contacts; 10 of them posted three times at once (one batch), and
    // then once more each (another batch).
    let messages: Vec<(String, String, String)> = (0..40)
        .map(|n| (new_sid(), format!("+1415555{:04}", n % 8), format!("m{n}")))
        .collect();
    let mut first_wave = messages.clone();
    for m in &messages[..10] {
        first_wave.push(m.clone());
        first_wave.push(m.clone());
    }
    let statuses = post_together(&app, &first_wave).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let statuses = post_together(&app, &messages[..10]).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");

    let mut pushed = HashMap::<String, usize>::new();
    while pushed.len() < messages.len() {
        let event = socket.next("message:new").await;
        *pushed
            .entry(event["body"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    // One more round trip through the server: any event still coming would be there by now.
    let stored = synced(&app, &alice).await;
    for event in socket.received("message:new") {
        *pushed
            .entry(event["body"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    let expected: HashSet<&str> = messages.iter().map(|(_, _, b)| b.as_str()).collect();
    assert_eq!(stored.len(), messages.len());
    for body in &expected {
        assert_eq!(stored.get(*body), Some(&1), "{body} stored once");
        assert_eq!(pushed.get(*body), Some(&1), "{body} pushed once");
    }
    let (_, list) = app
        .get("/api/crm/sms/conversations?limit=50", Some(&alice))
        .await;
    let unread: i64 = list["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["unreadCount"].as_i64().unwrap())
        .sum();
    assert_eq!(unread, 40, "each message counted once");
}

async fn a_message_the_database_refuses_fails_alone(app: TestApp) {
    let alice = app.agent("alice@example.com", &[OURS]).await;
    let mut socket = app.socket(&alice).await;
    poison(&app).await;
    let mut webhooks: Vec<(String, String, String)> = (0..20)
        .map(|n| (new_sid(), format!("+1415555{:04}", n % 4), format!("ok{n}")))
        .collect();
    let poisoned = new_sid();
    webhooks.insert(
        7,
        (poisoned.clone(), "+14155550001".into(), "poison".into()),
    );
    let statuses = post_together(&app, &webhooks).await;
    for ((sid, _, body), status) in webhooks.iter().zip(&statuses) {
        let expected = if *sid == poisoned { 500 } else { 200 };
        assert_eq!(*status, expected, "{body}");
    }
    let mut pushed = HashSet::new();
    while pushed.len() < 20 {
        let event = socket.next("message:new").await;
        assert!(pushed.insert(event["body"].as_str().unwrap().to_owned()));
    }
    let stored = synced(&app, &alice).await;
    assert_eq!(stored.len(), 20, "{stored:?}");
    assert!(!stored.contains_key("poison"));
    assert!(socket.received("message:new").is_empty(), "nothing twice");
    // Twilio's retry of the refused message is refused again; the others stay as they are.
    assert_eq!(post(&app, &poisoned, "+14155550001", "poison").await, 500);
    assert_eq!(synced(&app, &alice).await, stored);
}
