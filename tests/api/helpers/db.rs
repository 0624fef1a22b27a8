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

/// Whether this is a CI run (`CI` set, and not to `false` or `0`): there, whatever a test
/// needs must be present, and a test that would skip fails instead.
pub fn ci() -> bool {
    is_ci(std::env::var("CI").ok().as_deref())
}

fn is_ci(var: Option<&str>) -> bool {
    var.is_some_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// `TEST_DATABASE_URL`, or `None` (with a printed line) when it is unset outside CI.
fn postgres_server() -> Option<String> {
    let server = choose_postgres(std::env::var("TEST_DATABASE_URL").ok(), ci())
        .unwrap_or_else(|why| panic!("{why}"));
    if server.is_none() {
        eprintln!("skipped: TEST_DATABASE_URL is not set, so PostgreSQL is not tested here");
    }
    server
}

/// The PostgreSQL server to test on; `None` to skip; `Err` when skipping would let a CI run
/// pass having tested one backend of two.
fn choose_postgres(test_database_url: Option<String>, ci: bool) -> Result<Option<String>, String> {
    match test_database_url.filter(|url| !url.trim().is_empty()) {
        Some(url) => Ok(Some(url)),
        None if ci => Err(format!(
            "TEST_DATABASE_URL is not set, but CI is: the PostgreSQL tests must run in CI \
             (TEST_DATABASE_URL={EXAMPLE_URL}, as .ci/run sets it)"
        )),
        None => Ok(None),
    }
}

const EXAMPLE_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ci_is_any_value_but_empty_false_and_0() {
        for (var, expected) in [
            (None, false),
            (Some(""), false),
            (Some("false"), false),
            (Some("0"), false),
            (Some("true"), true),
            (Some("1"), true),
        ] {
            assert_eq!(is_ci(var), expected, "CI={var:?}");
        }
    }

    #[test]
    fn postgres_is_skipped_without_its_url_but_not_in_ci() {
        let url = EXAMPLE_URL;
        assert_eq!(
            choose_postgres(Some(url.into()), true),
            Ok(Some(url.into()))
        );
        assert_eq!(
            choose_postgres(Some(url.into()), false),
            Ok(Some(url.into()))
        );
        assert_eq!(choose_postgres(None, false), Ok(None));
        assert_eq!(choose_postgres(Some(" ".into()), false), Ok(None));
        for unset in [None, Some(String::new())] {
            let refused = choose_postgres(unset, true).expect_err("a failure in CI");
            assert!(refused.contains("TEST_DATABASE_URL"), "{refused}");
        }
    }
}
