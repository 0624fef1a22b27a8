//! What the database holds is read as it is: a value the server does not know is an error
//! the agent sees as one, never shown as some default.

use sqlx::{Connection, Executor};

use crate::helpers::TestApp;
use crate::on_both_backends;

on_both_backends! {
    an_unknown_status_in_the_database_is_an_error_not_pending: Simulator,
}

/// Runs `sql` on the test's database, beside the server.
async fn execute(app: &TestApp, sql: String) {
    if app.database_url.starts_with("postgres") {
        let mut db = sqlx::PgConnection::connect(&app.database_url)
            .await
            .unwrap();
        db.execute(sqlx::AssertSqlSafe(sql.clone())).await.unwrap();
    } else {
        let mut db = sqlx::SqliteConnection::connect(&app.database_url)
            .await
            .unwrap();
        db.execute(sqlx::AssertSqlSafe(sql.clone())).await.unwrap();
    }
}

async fn an_unknown_status_in_the_database_is_an_error_not_pending(app: TestApp) {
    let alice = app.agent("alice@example.com", &["+15550001000"]).await;
    let sid = app.inbound("+14155550123", "+15550001000", "hi").await;
    let conversation = app.conversation(&alice, "+14155550123").await;
    let messages = format!("/api/crm/sms/conversations/{conversation}/messages");
    let (status, page) = app.get(&messages, Some(&alice)).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["messages"][0]["status"], "received");

    // As a newer version (or a hand in the database) might have written it.
    execute(
        &app,
        format!("UPDATE messages SET status = 'teleported' WHERE twilio_sid = '{sid}'"),
    )
    .await;
    for path in [messages.as_str(), "/api/crm/sms/sync?since=0"] {
        let (status, body) = app.get(path, Some(&alice)).await;
        assert_eq!(status, 500, "{path}: {body}");
        assert_eq!(body["error"]["code"], "internal", "{path}: {body}");
    }
}
