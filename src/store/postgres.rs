//! PostgreSQL, for production: one pool for reads and writes, `seq` from a sequence.

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use super::db::Dialect;
use super::queue::claim_sql;

pub(super) const DIALECT: Dialect = Dialect {
    name: "postgres",
    next_seq: "SELECT nextval('change_seq')",
    lock_status: "SELECT status FROM messages WHERE id = $1 FOR UPDATE",
    // Concurrent workers each take another job instead of queueing on the same row.
    claim: claim_sql!(" FOR UPDATE SKIP LOCKED"),
    // Under READ COMMITTED two writers could both see no agent; this lock makes any other
    // insert (setup, the CLI, another instance) wait for us, and us for it.
    lock_agents: Some("LOCK TABLE agents IN SHARE ROW EXCLUSIVE MODE"),
};

/// Connects and migrates.
pub(super) async fn connect(url: &str) -> anyhow::Result<PgPool> {
    let options: PgConnectOptions = url.parse()?;
    let pool = PgPoolOptions::new()
        .max_connections(16)
        .acquire_timeout(std::time::Duration::from_secs(3))
        .connect_with(options.application_name("smsdesk"))
        .await?;
    sqlx::migrate!("./migrations/postgres").run(&pool).await?;
    Ok(pool)
}
