//! The two backends behind one type. [`Pool`] and [`Tx`] hold either backend's pool or
//! transaction, and `on_pool!` / `on_tx!` run a statement, written once, on whichever it is:
//! the statement is compiled for both, only the types differ. What the dialects do differently
//! is a [`Dialect`], which each backend gives (`postgres.rs`, `sqlite.rs`).
//!
//! A change to a message (or a new conversation) takes a `seq`, written in the statement as
//! [`new_seq!`]: the transaction's base from the view `seq_base` plus the change's number
//! within the transaction, which [`Tx::change`] counts. The views are each backend's own
//! (`migrations/*/0004_seq_by_transaction.sql`); `sync` shows nothing above `seq_visible`.

use sqlx::{PgPool, Postgres, Sqlite, SqlitePool, Transaction};

use super::dialect::{Backend, Dialect};
use super::error::{StoreError, StoreResult};

#[derive(Clone)]
pub(super) enum Pool {
    Postgres(PgPool),
    Sqlite(SqlitePool),
}

/// A transaction, and how many `seq`s it has taken.
pub(super) struct Tx {
    pub conn: TxConn,
    changes: i64,
}

pub(super) enum TxConn {
    Postgres(Transaction<'static, Postgres>),
    Sqlite(Transaction<'static, Sqlite>),
}

/// The most changes one transaction may make: PostgreSQL leaves 8 bits of each `seq` to
/// them (`seq_base` shifts the transaction id by 8), and a change is numbered from 1.
pub(super) const MAX_CHANGES: i64 = 255;

/// The `seq` of a change whose number in the transaction ([`Tx::change`]) is parameter `$n`.
macro_rules! new_seq {
    ($n:literal) => {
        concat!("((SELECT base FROM seq_base) + $", $n, ")")
    };
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
        match &mut ($tx).conn {
            $crate::store::db::TxConn::Postgres(tx) => {
                let $db = &mut **tx;
                $body
            }
            $crate::store::db::TxConn::Sqlite(tx) => {
                let $db = &mut **tx;
                $body
            }
        }
    };
}

pub(super) use {new_seq, on_pool, on_tx};

impl Pool {
    pub(super) fn dialect(&self) -> &'static Dialect {
        match self {
            Self::Postgres(_) => &Postgres::DIALECT,
            Self::Sqlite(_) => &Sqlite::DIALECT,
        }
    }

    pub(super) async fn begin(&self) -> StoreResult<Tx> {
        let conn = match self {
            Self::Postgres(pool) => TxConn::Postgres(pool.begin().await?),
            Self::Sqlite(pool) => TxConn::Sqlite(pool.begin().await?),
        };
        Ok(Tx { conn, changes: 0 })
    }
}

impl Pool {
    /// A transaction that writes from its first statement: on SQLite it takes the write lock
    /// at `BEGIN IMMEDIATE`, waiting for another process's (the busy timeout) instead of
    /// failing at once when its first write would have to turn a read into a write.
    pub(super) async fn begin_write(&self) -> StoreResult<Tx> {
        let conn = match self {
            Self::Postgres(pool) => TxConn::Postgres(pool.begin().await?),
            Self::Sqlite(pool) => TxConn::Sqlite(pool.begin_with("BEGIN IMMEDIATE").await?),
        };
        Ok(Tx { conn, changes: 0 })
    }
}

impl Tx {
    pub(super) fn dialect(&self) -> &'static Dialect {
        match self.conn {
            TxConn::Postgres(_) => &Postgres::DIALECT,
            TxConn::Sqlite(_) => &Sqlite::DIALECT,
        }
    }

    /// Numbers a new change in this transaction: the parameter of its [`new_seq!`].
    pub(super) fn change(&mut self) -> StoreResult<i64> {
        if self.changes == MAX_CHANGES {
            return Err(StoreError::Other(sqlx::Error::InvalidArgument(format!(
                "a transaction may make at most {MAX_CHANGES} changes"
            ))));
        }
        self.changes += 1;
        Ok(self.changes)
    }

    pub(super) async fn commit(mut self) -> StoreResult<()> {
        if let Some(sql) = self.dialect().count_seqs.filter(|_| self.changes > 0) {
            let changes = self.changes;
            on_tx!(&mut self, |db| sqlx::query(sql)
                .bind(changes)
                .execute(db)
                .await
                .map(|r| r.rows_affected()))?;
        }
        match self.conn {
            TxConn::Postgres(tx) => tx.commit().await?,
            TxConn::Sqlite(tx) => tx.commit().await?,
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_transaction_takes_at_most_255_seqs() {
        let pool = Pool::Sqlite(SqlitePool::connect("sqlite::memory:").await.unwrap());
        let mut tx = pool.begin().await.unwrap();
        for n in 1..=255 {
            assert_eq!(tx.change().unwrap(), n);
        }
        assert!(
            tx.change().is_err(),
            "a 256th change would take the first seq of the next transaction id"
        );
    }
}
