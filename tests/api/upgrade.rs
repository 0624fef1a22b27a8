//! A database of the release before the team inbox (its migrations up to 0013, with an
//! agent, a conversation and its messages) upgraded by the server's start: every
//! conversation is open and unassigned, its messages are as they were, and everything of
//! the team inbox works on it, notes included.

use serde_json::json;
use smsdesk::api::conversations::ConversationPage;
use smsdesk::api::session::SessionStarted;
use smsdesk::api::sync::Changes;
use smsdesk::model::{ConversationStatus, InboxCounts};

use crate::helpers::{Agent, Backend, TestApp, with_database};
use crate::team_inbox::patch;

const NUMBER: &str = "+15550009001";
const CONTACT: &str = "+14155550991";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_of_the_release_before_upgrades_sqlite() {
    with_database(Backend::Sqlite, upgrade).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_of_the_release_before_upgrades_postgres() {
    with_database(Backend::Postgres, upgrade).await
}

/// What the release before stored: statements of its schema, in the dialect both share.
const BEFORE: [&str; 6] = [
    "INSERT INTO agents (email, name, password_hash, created_at, role) \
     VALUES ('ana@example.com', 'Ana', $1, $2, 'admin')",
    "INSERT INTO agent_numbers (agent_id, number) SELECT id, $1 FROM agents",
    "INSERT INTO conversations (our_number, contact_phone, contact_name, unread_count, \
       activity, created_at, updated_at) VALUES ($1, $2, 'Old Friend', 1, 2, $3, $3)",
    "INSERT INTO messages (conversation_id, direction, from_number, to_number, body, media, \
       status, status_rank, twilio_sid, segments, created_at, updated_at, seq) \
     SELECT id, 'outbound', our_number, contact_phone, 'how are you?', '[]', 'delivered', 4, \
       'SM00000000000000000000000000000001', 1, $1, $1, 1 FROM conversations",
    "INSERT INTO messages (conversation_id, direction, from_number, to_number, body, media, \
       status, status_rank, twilio_sid, segments, created_at, updated_at, seq) \
     SELECT id, 'inbound', contact_phone, our_number, 'fine, thanks', '[]', 'received', 4, \
       'SM00000000000000000000000000000002', 1, $1, $1, 2 FROM conversations",
    "UPDATE conversations SET last_message_id = (SELECT MAX(id) FROM messages)",
];

async fn upgrade(url: String) {
    let backend = if url.starts_with("postgres") {
        "postgres"
    } else {
        "sqlite"
    };
    let old = tempfile::tempdir().unwrap();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(backend);
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if name.as_str() < "0014" {
            std::fs::copy(&path, old.path().join(&name)).unwrap();
        }
    }
    let migrator = sqlx::migrate::Migrator::new(old.path()).await.unwrap();
    let hash = smsdesk::auth::hash_password("password123").unwrap();
    let now = chrono::Utc::now();
    macro_rules! fill {
        ($pool:expr) => {{
            let pool = $pool;
            migrator.run(&pool).await.unwrap();
            let run = |sql| sqlx::query(sql);
            run(BEFORE[0])
                .bind(&hash)
                .bind(now)
                .execute(&pool)
                .await
                .unwrap();
            run(BEFORE[1]).bind(NUMBER).execute(&pool).await.unwrap();
            run(BEFORE[2])
                .bind(NUMBER)
                .bind(CONTACT)
                .bind(now)
                .execute(&pool)
                .await
                .unwrap();
            run(BEFORE[3]).bind(now).execute(&pool).await.unwrap();
            run(BEFORE[4]).bind(now).execute(&pool).await.unwrap();
            run(BEFORE[5]).execute(&pool).await.unwrap();
            pool
        }};
    }
    if backend == "postgres" {
        fill!(sqlx::PgPool::connect(&url).await.unwrap())
            .close()
            .await;
    } else {
        let options: sqlx::sqlite::SqliteConnectOptions = url.parse().unwrap();
        let pool = fill!(
            sqlx::SqlitePool::connect_with(options.create_if_missing(true))
                .await
                .unwrap()
        );
        // SQLite's writes counted their seqs as they committed (0004_seq_by_transaction.sql).
        sqlx::query("UPDATE change_counter SET seq = 2")
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
    }

    let app = TestApp::builder().spawn(&url).await;
    let (status, started) = app
        .post_json_as::<SessionStarted>(
            "/api/auth/login",
            None,
            json!({"email": "ana@example.com", "password": "password123"}),
        )
        .await;
    assert_eq!(status, 200);
    let ana = Agent {
        id: started.agent.id.to_string(),
        token: started.token,
    };

    let (status, page) = app
        .get_as::<ConversationPage>("/api/crm/sms/conversations", Some(&ana))
        .await;
    assert_eq!(status, 200);
    let [c] = &page.conversations[..] else {
        panic!("one conversation: {page:?}")
    };
    assert_eq!(
        (c.status, c.snoozed_until, &c.assignee),
        (ConversationStatus::Open, None, &None)
    );
    assert_eq!(
        (c.contact.name.as_deref(), c.unread_count),
        (Some("Old Friend"), 1)
    );
    assert_eq!(c.last_message.as_ref().unwrap().body, "fine, thanks");
    let (_, counts) = app
        .get_as::<InboxCounts>("/api/crm/sms/conversations/counts", Some(&ana))
        .await;
    assert_eq!((counts.open, counts.unassigned, counts.mine), (1, 1, 0));
    let (_, changes) = app
        .get_as::<Changes>("/api/crm/sms/sync?since=0", Some(&ana))
        .await;
    assert_eq!(changes.messages.len(), 2);

    let id = c.id.to_string();
    let (status, closed) = patch(
        &app,
        &ana,
        &id,
        json!({"status": "closed", "assigneeId": ana.id}),
    )
    .await;
    assert_eq!(
        (status, &closed["status"]),
        (200, &json!("closed")),
        "{closed}"
    );
    let (status, note) = app
        .post_json(
            &format!("/api/crm/sms/conversations/{id}/notes"),
            Some(&ana),
            json!({"body": "an old customer", "clientId": "n-1"}),
        )
        .await;
    assert_eq!(
        (status, &note["message"]["direction"]),
        (201, &json!("note")),
        "{note}"
    );
    let changes = {
        let (_, c) = app
            .get_as::<Changes>(
                &format!("/api/crm/sms/sync?since={}", changes.cursor),
                Some(&ana),
            )
            .await;
        c
    };
    assert_eq!(changes.messages.len(), 1, "the note, after every old seq");
    assert_eq!(changes.conversations.len(), 1, "the closed conversation");
}
