//! The two backends behind one type. [`Pool`] and [`Tx`] hold either backend's pool or
//! transaction, and `on_pool!` / `on_tx!` run a statement, written once, on whichever it is:
//! the statement is compiled for both, only the types differ. What the dialects do differently
//! is spelled out in a [`Dialect`] per backend (`postgres.rs`, `sqlite.rs`).

use sqlx::{PgPool, Postgres, Sqlite, SqlitePool, Transaction};

use super::error::StoreResult;
use super::watermark::Watermark;

#[derive(Clone)]
pub(super) enum Pool {
    Postgres(PgPool),
    Sqlite(SqlitePool),
}

pub(super) enum Tx {
    Postgres(Transaction<'static, Postgres>),
    Sqlite(Transaction<'static, Sqlite>),
}

/// Runs `$body` with `$db` bound to the pool of whichever backend `$pool` is.
macro_rules! on_pool {
    ($pool:expr, |$db:ident| $body:expr) => {
        match $pool {
            $crate::store::db::Pool::Postgres($db) => $body,
            $crate::store::db::Pool::Sqlite($db) => $body,
        }
    };
}

/// Runs `$body` with `$db` bound to the connection of the transaction `$tx`.
macro_rules! on_tx {
    ($tx:expr, |$db:ident| $body:expr) => {
        match $tx {
            $crate::store::db::Tx::Postgres(tx) => {
                let $db = &mut **tx;
                $body
            }
            $crate::store::db::Tx::Sqlite(tx) => {
                let $db = &mut **tx;
                $body
            }
        }
    };
}

pub(super) use {on_pool, on_tx};

/// The statements that differ between the backends.
pub(super) struct Dialect {
    pub name: &'static str,
    /// Takes the next `seq`, returning it.
    pub next_seq: &'static str,
    /// Reads message `$1`'s status, which must not change until the transaction ends: a
    /// status is only written after Rust decided it may replace the stored one.
    pub lock_status: &'static str,
    /// Claims the first due job of the sending queue (see `queue.rs`).
    pub claim: &'static str,
    /// Makes another first-agent insert wait for this one, where writers are not serialised
    /// anyway.
    pub lock_agents: Option<&'static str>,
}

impl Pool {
    pub(super) fn dialect(&self) -> &'static Dialect {
        match self {
            Self::Postgres(_) => &super::postgres::DIALECT,
            Self::Sqlite(_) => &super::sqlite::DIALECT,
        }
    }

    pub(super) async fn begin(&self) -> StoreResult<Tx> {
        Ok(match self {
            Self::Postgres(pool) => Tx::Postgres(pool.begin().await?),
            Self::Sqlite(pool) => Tx::Sqlite(pool.begin().await?),
        })
    }
}

impl Tx {
    pub(super) fn dialect(&self) -> &'static Dialect {
        match self {
            Self::Postgres(_) => &super::postgres::DIALECT,
            Self::Sqlite(_) => &super::sqlite::DIALECT,
        }
    }

    pub(super) async fn commit(self) -> StoreResult<()> {
        match self {
            Self::Postgres(tx) => tx.commit().await?,
            Self::Sqlite(tx) => tx.commit().await?,
        }
        Ok(())
    }

    /// The next `seq`. Every write that changes a message takes one inside its transaction,
    /// while holding a [`Watermark::enter`] guard until it commits, so `sync` never shows a
    /// change that a lower `seq` could still commit behind.
    pub(super) async fn next_seq(&mut self, watermark: &Watermark) -> StoreResult<i64> {
        let sql = self.dialect().next_seq;
        let seq: i64 = on_tx!(self, |db| sqlx::query_scalar(sql).fetch_one(db).await)?;
        watermark.observe(seq);
        Ok(seq)
    }
}
