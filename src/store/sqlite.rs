//! SQLite, the embedded default: one writer connection (SQLite serialises writers anyway,
//! and a single one never meets `SQLITE_BUSY`) and a pool of readers over WAL.
//!
//! The store stays bound to the file it opened: open connections would go on writing to a
//! file deleted or replaced under the running server, where nothing will ever read it, so
//! every connection handed out first checks (one `stat`) that the file at the path is still
//! that one. Once it is not, the store is unavailable (`/readyz` 503, webhooks 503 so that
//! Twilio retries) until a restart opens the new file.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use sqlx::Connection;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};

use super::agents::{insert_session, live_sessions_sql};
use super::dialect::{Backend, Dialect, list_filters};
use super::inbox::{assignable, unassign_lost_sql, wake_snoozed_sql};
use super::queue::claim_sql;
use super::rows::conversation_select;
use super::statuses::status_target;

/// A page of the conversation list with `$filter`. No LATERAL here: each number's page is a
/// correlated list of ids, which SQLite reads for each of the agent's numbers (joined first:
/// CROSS JOIN keeps that order).
macro_rules! list_per_number {
    ($filter:literal) => {
        concat!(
            conversation_select!(
                "(SELECT up_to FROM seq_visible) AS visible_up_to, ",
                "agent_numbers an CROSS JOIN conversations c"
            ),
            "WHERE an.agent_id = $1 AND c.id IN (SELECT id FROM conversations \
               WHERE our_number = an.number AND activity < $2",
            $filter,
            " ORDER BY activity DESC, id DESC LIMIT $3) \
             ORDER BY c.activity DESC, c.id DESC LIMIT $3"
        )
    };
}

/// The conversations changed in a range of `seq`s, each number's from its own index, as
/// `list_per_number!` reads a page; only the page's conversations then read their last
/// message, not every number's.
const CONVERSATION_CHANGES: &str = concat!(
    conversation_select!(
        "",
        "(SELECT changes.id FROM agent_numbers an CROSS JOIN conversations changes \
          WHERE an.agent_id = $1 AND changes.id IN (SELECT id FROM conversations \
            WHERE our_number = an.number AND changed > $2 AND changed <= $4 \
            ORDER BY changed, id LIMIT $3) \
          ORDER BY changes.changed, changes.id LIMIT $3) page \
         JOIN conversations c ON c.id = page.id"
    ),
    "ORDER BY c.changed, c.id"
);

/// SQLite serialises writers, and the store has only one writer connection: whatever a write
/// reads stays as it read it until it commits, so nothing needs locking, and `seq`s commit in
/// order, so `sync` may show every one committed.
impl Backend for sqlx::Sqlite {
    const DIALECT: Dialect = Dialect {
        name: "sqlite",
        // `seq_base` reads the counter, which counts the seqs taken by the writes committed.
        count_seqs: Some("UPDATE change_counter SET seq = seq + $1 WHERE id = 1"),
        status_target: [status_target!("id", ""), status_target!("twilio_sid", "")],
        lock_status: "SELECT status FROM messages WHERE id = $1",
        list_conversations: list_filters!(list_per_number),
        conversation_changes: CONVERSATION_CHANGES,
        assignable: assignable!(""),
        wake_snoozed: wake_snoozed_sql!(""),
        unassign_lost: unassign_lost_sql!(""),
        // The triggers update the counters in place (`migrations/sqlite/0017_count_changes.sql`).
        fold_counts: None,
        claim: claim_sql!(""),
        lock_agents: None,
        insert_session: insert_session!(""),
        prune_login_subjects: "DELETE FROM login_subjects \
            WHERE last_used_us <= (SELECT now_us FROM db_clock) - $1",
        live_sessions: live_sessions_sql!("SELECT value FROM json_each($1)"),
    };
}

/// The database file as it was when opened: its path and its identity on disk.
struct DbFile {
    path: PathBuf,
    identity: (u64, u64),
}

#[cfg(unix)]
fn identity(meta: &std::fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (meta.dev(), meta.ino())
}

#[cfg(not(unix))]
fn identity(_: &std::fs::Metadata) -> (u64, u64) {
    (0, 0)
}

impl DbFile {
    /// `None` for a database that is not a file (in memory).
    fn watch(path: &Path) -> Option<Arc<Self>> {
        let meta = std::fs::metadata(path).ok().filter(|m| m.is_file())?;
        Some(Arc::new(Self {
            path: path.to_owned(),
            identity: identity(&meta),
        }))
    }

    fn check(&self) -> Result<(), sqlx::Error> {
        let what = match std::fs::metadata(&self.path) {
            Ok(meta) if identity(&meta) == self.identity => return Ok(()),
            Ok(_) => "was replaced by another file",
            Err(_) => "was deleted",
        };
        Err(sqlx::Error::Io(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!(
                "the database file {} {what} while smsdesk was running; restart smsdesk",
                self.path.display()
            ),
        )))
    }
}

/// Makes every connection of the pool check the file before use, rather than ping it: a
/// SQLite connection lives in this process, and sqlx's ping (by default before every use, on
/// top of the one when it goes back to the pool) is a round trip to its worker thread.
fn watched(pool: SqlitePoolOptions, file: Option<&Arc<DbFile>>) -> SqlitePoolOptions {
    let pool = pool.test_before_acquire(false);
    let Some(file) = file else {
        return pool;
    };
    let (on_acquire, on_connect) = (file.clone(), file.clone());
    pool.before_acquire(move |_, _| {
        let file = on_acquire.clone();
        Box::pin(async move { file.check().map(|()| true) })
    })
    .after_connect(move |_, _| {
        let file = on_connect.clone();
        Box::pin(async move { file.check() })
    })
}

/// How much of the database file readers map: past it, they read pages as before.
const MMAP_SIZE: &str = "1073741824";

/// Connects and migrates: the reader pool, and the writer.
pub(super) async fn connect(url: &str) -> anyhow::Result<(SqlitePool, SqlitePool)> {
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
    // Create the file first, then never again: a connection opened after it is gone
    // must fail, not start an empty database.
    SqliteConnection::connect_with(&options)
        .await?
        .close()
        .await?;
    let file = DbFile::watch(options.get_filename());
    let options = options.create_if_missing(false);
    let writer = watched(SqlitePoolOptions::new(), file.as_ref())
        .max_connections(1)
        .acquire_timeout(std::time::Duration::from_secs(5))
        .connect_with(options.clone())
        .await?;
    sqlx::migrate!("./migrations/sqlite").run(&writer).await?;
    // Readers map the file rather than copy each page they read out of the kernel's cache
    // (a `sync` of 500 messages read ~100 pages that way, a search hundreds): every reader
    // shares the one mapping, where each connection's own page cache would hold a copy.
    let reader = watched(SqlitePoolOptions::new(), file.as_ref())
        .max_connections(8)
        .acquire_timeout(std::time::Duration::from_secs(5))
        .connect_with(options.read_only(true).pragma("mmap_size", MMAP_SIZE))
        .await?;
    Ok((reader, writer))
}
