//! A fresh database per test: a SQLite file in a temp dir, or a database of its own on the
//! PostgreSQL server that `TEST_DATABASE_URL` names, dropped afterwards. Without
//! `TEST_DATABASE_URL` the PostgreSQL tests skip, except under `CI`, where they fail.

use std::panic::AssertUnwindSafe;

use futures_util::FutureExt;
use sqlx::Connection;

#[derive(Clone, Copy, Debug)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs `test` with the URL of a fresh database on `backend`, which is dropped afterwards,
/// whether the test passed or panicked.
pub async fn with_database(backend: Backend, test: impl AsyncFnOnce(String)) {
    super::init_logs();
    let dir = tempfile::tempdir().expect("a temp dir");
    let (url, pg) = match backend {
        Backend::Sqlite => (
            format!("sqlite://{}", dir.path().join("smsdesk.db").display()),
            None,
        ),
        Backend::Postgres => {
            let Some(server) = postgres_server() else {
                return;
            };
            let db = PgDatabase::create(&server).await;
            (db.url.clone(), Some(db))
        }
    };
    let outcome = AssertUnwindSafe(test(url)).catch_unwind().await;
    if let Some(db) = pg {
        db.drop().await;
    }
    drop(dir);
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// `TEST_DATABASE_URL`, or `None` (with a printed line) when it is unset.
fn postgres_server() -> Option<String> {
    let server = std::env::var("TEST_DATABASE_URL").ok();
    if server.is_none() {
        eprintln!("skipped: TEST_DATABASE_URL is not set, so PostgreSQL is not tested here");
    }
    server
}

/// A database of its own on the server, dropped by [`PgDatabase::drop`].
struct PgDatabase {
    server: String,
    name: String,
    url: String,
}

impl PgDatabase {
    async fn create(server: &str) -> Self {
        let name = format!("smsdesk_test_{:016x}", rand::random::<u64>());
        let mut conn = sqlx::PgConnection::connect(server)
            .await
            .expect("TEST_DATABASE_URL must reach PostgreSQL");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&mut conn)
            .await
            .expect("create the test database");
        let mut url = url::Url::parse(server).expect("TEST_DATABASE_URL is a URL");
        url.set_path(&name);
        Self {
            server: server.to_owned(),
            name,
            url: url.to_string(),
        }
    }

    async fn drop(self) {
        if let Ok(mut conn) = sqlx::PgConnection::connect(&self.server).await {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                self.name
            )))
            .execute(&mut conn)
            .await;
        }
    }
}
