//! Persistence: one [`Store`] over PostgreSQL or SQLite. Each statement is written once, in
//! the common dialect of both (`$n` parameters, `ON CONFLICT`, `RETURNING`), and run on
//! whichever backend is open (`db.rs`); the few differences are a `Dialect` (`dialect.rs`)
//! that each backend gives (`postgres.rs`, `sqlite.rs`), which only this file opens. Ids and
//! enums are bound and read as their own types (`crate::model`), and a row of more than two
//! columns is a named struct (`rows.rs` and beside its statement): a value the database
//! holds that is none of its type's fails to read.
//!
//! The methods are split by concern: agents and sessions (`agents.rs`), what admins do to
//! agents (`admin.rs`), reads (`reads.rs`), conversations and outbound messages (`writes.rs`),
//! inbound messages (`inbound.rs`, by group commit), statuses (`statuses.rs`), the sending
//! queue (`queue.rs`) and its pace (`pacing.rs`), checks of sent messages' statuses
//! (`status_checks.rs`), search (`search.rs`), the team inbox (`inbox.rs`: contact names,
//! status, snooze, assignee, counts, notes), canned replies (`replies.rs`) and the pictures
//! agents send (`uploads.rs`). Every write about a conversation returns what it changed together with its
//! [`Audience`], read in the same transaction, for [`crate::events`] to publish; a reply's
//! audience is every agent.

mod admin;
mod agents;
mod db;
mod dialect;
mod error;
mod inbound;
mod inbox;
mod logins;
mod pacing;
mod postgres;
mod queue;
mod reads;
mod replies;
mod rows;
mod search;
mod search_sql;
mod sqlite;
mod status_checks;
mod statuses;
mod types;
mod uploads;
mod writes;

use std::sync::Arc;
use std::time::Duration;

use crate::config::DatabaseUrl;

use self::db::Pool;

pub use self::admin::{AgentChanges, AgentUpdate, Invite};
pub use self::error::{StoreError, StoreResult};
pub use self::inbound::InboundArrival;
pub use self::inbox::{ConversationEdit, EditOutcome, NewNote, NoteOutcome, StatusEdit};
pub use self::logins::{FailureCount, LoginReservation, LoginSubjects};
pub use self::replies::{ReplyChanges, ReplyOutcome};
pub use self::types::*;
pub use self::uploads::{MAX_PICTURES, StoredPicture, Upload, is_token};

/// The database, whichever backend it is: every read and write of the server.
pub struct Store {
    /// On PostgreSQL the same pool as `writer`; on SQLite a pool of read-only connections.
    reader: Pool,
    writer: Pool,
    /// The task that writes inbound messages, several to a transaction.
    inbound: inbound::InboundWriter,
    /// Turns to move a picture's bytes to or from the database (`uploads.rs`).
    pictures: tokio::sync::Semaphore,
    /// The last watermark read for a `sync` waiting on writes in flight, and when that read
    /// began: the waiting `sync`s share one read at a time (`reads.rs`).
    watermark: tokio::sync::Mutex<Option<(std::time::Instant, i64)>>,
}

/// Connects to the database named by `url`, retrying for about `patience`, and runs the
/// migrations of its backend.
pub async fn connect(url: &DatabaseUrl, patience: Duration) -> anyhow::Result<Arc<Store>> {
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        match Store::open(url).await {
            Ok(store) => return Ok(Arc::new(store)),
            Err(e) if tokio::time::Instant::now() < deadline && error::is_retryable(&e) => {
                tracing::warn!(error = %e, "database not answering yet; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

impl Store {
    async fn open(url: &DatabaseUrl) -> anyhow::Result<Self> {
        let (reader, writer) = if url.is_postgres() {
            let pool = postgres::connect(url.expose()).await?;
            (Pool::Postgres(pool.clone()), Pool::Postgres(pool))
        } else {
            let (reader, writer) = sqlite::connect(url.expose()).await?;
            (Pool::Sqlite(reader), Pool::Sqlite(writer))
        };
        let inbound = inbound::InboundWriter::start(writer.clone());
        Ok(Self {
            reader,
            writer,
            inbound,
            pictures: tokio::sync::Semaphore::new(uploads::PICTURES_AT_ONCE),
            watermark: tokio::sync::Mutex::default(),
        })
    }

    /// `"postgres"` or `"sqlite"`.
    pub fn backend(&self) -> &'static str {
        self.writer.dialect().name
    }

    /// The database connections open in this process: (idle, busy).
    pub fn pool_connections(&self) -> (usize, usize) {
        let pools: &[&Pool] = match (&self.reader, &self.writer) {
            (Pool::Postgres(_), _) => &[&self.writer],
            _ => &[&self.reader, &self.writer],
        };
        pools.iter().fold((0, 0), |(idle, busy), pool| {
            let (size, free) = match pool {
                Pool::Postgres(p) => (p.size() as usize, p.num_idle()),
                Pool::Sqlite(p) => (p.size() as usize, p.num_idle()),
            };
            (idle + free, busy + size.saturating_sub(free))
        })
    }

    #[tracing::instrument(skip_all, err)]
    pub async fn ping(&self) -> StoreResult<()> {
        db::on_pool!(&self.reader, |db| sqlx::query("SELECT 1")
            .execute(db)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }
}
