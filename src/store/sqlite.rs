//! SQLite, the embedded default: one writer connection (SQLite serialises writers anyway,
//! and a single one never meets `SQLITE_BUSY`) and a pool of readers over WAL.

use std::str::FromStr;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use super::sql::{
    agent_select, conversation_select, impl_store, message_columns, returning_columns, visible_to,
};

pub struct SqliteStore {
    watermark: super::Watermark,
    reader: SqlitePool,
    writer: SqlitePool,
}

impl SqliteStore {
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(std::time::Duration::from_secs(5));
        if let Some(dir) = options.get_filename().parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir)
                .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
        }
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(std::time::Duration::from_secs(5))
            .connect_with(options.clone())
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&writer).await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(8)
            .acquire_timeout(std::time::Duration::from_secs(5))
            .connect_with(options.read_only(true))
            .await?;
        Ok(Self {
            watermark: super::Watermark::default(),
            reader,
            writer,
        })
    }
}

impl_store!(SqliteStore, sqlx::Sqlite, backend: "sqlite", agg: "group_concat", skip_locked: "", next_seq: "UPDATE change_counter SET seq = seq + 1 WHERE id = 1 RETURNING seq");
