//! Login failures shared by every instance (docs/security.md, "Logins"): one row per counted attempt
//! and subject (a client address, an account), stamped with the database's clock. The
//! throttle's rules are in `crate::auth::throttle`; this is what they count on.

use super::db::{on_pool, on_tx};
use super::{DbClock, Store, StoreResult};

/// What the database holds about one subject of an attempt, within the window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FailureCount {
    pub count: i64,
    /// When the subject is at its limit, the time of the failure that keeps it there (the
    /// limit-th newest): it may try again once that one leaves the window.
    pub blocking_since_us: Option<i64>,
}

/// An attempt's two subjects and their limits.
#[derive(Clone, Copy, Debug)]
pub struct LoginSubjects<'a> {
    pub address: &'a str,
    pub account: &'a str,
    pub max_per_address: i64,
    pub max_per_account: i64,
}

/// The failures of an attempt's two subjects within the window, as one statement reads them.
#[derive(sqlx::FromRow)]
struct Counts {
    by_address: i64,
    address_blocking_since: Option<i64>,
    by_account: i64,
    account_blocking_since: Option<i64>,
    now_us: i64,
}

/// What [`Store::reserve_login`] found, and whether it counted the attempt.
#[derive(Clone, Copy, Debug)]
pub struct LoginReservation {
    pub by_address: FailureCount,
    pub by_account: FailureCount,
    pub clock: DbClock,
    /// Both subjects were under their limits, so the attempt was counted against them.
    pub counted: bool,
}

impl Store {
    /// Counts the failures of both subjects within the last `window_us` and, unless one of
    /// them is at its limit, counts attempt `attempt` against both. Attempts on the same
    /// subjects, on any instance, take their turns: each counts what the ones before it
    /// added, so none is let through past a limit and none is refused below it.
    #[tracing::instrument(skip_all, err)]
    pub async fn reserve_login(
        &self,
        subjects: LoginSubjects<'_>,
        window_us: i64,
        attempt: i64,
    ) -> StoreResult<LoginReservation> {
        let mut tx = self.writer.begin().await?;
        // The subjects' rows are locked until the commit. Every attempt locks its address
        // before its account, and the two are never the same subject: no deadlock.
        on_tx!(&mut tx, |db| {
            sqlx::query(
                "INSERT INTO login_subjects (subject, last_used_us) \
                 VALUES ($1, (SELECT now_us FROM db_clock)), ($2, (SELECT now_us FROM db_clock)) \
                 ON CONFLICT (subject) DO UPDATE SET last_used_us = excluded.last_used_us",
            )
            .bind(subjects.address)
            .bind(subjects.account)
            .execute(db)
            .await
            .map(|r| r.rows_affected())
        })?;
        let counts: Counts = on_tx!(&mut tx, |db| {
            sqlx::query_as(
                "SELECT \
                   (SELECT COUNT(*) FROM login_failures WHERE subject = $1 \
                      AND at_us > (SELECT now_us FROM db_clock) - $3) AS by_address, \
                   (SELECT at_us FROM login_failures WHERE subject = $1 \
                      AND at_us > (SELECT now_us FROM db_clock) - $3 \
                      ORDER BY at_us DESC LIMIT 1 OFFSET $4) AS address_blocking_since, \
                   (SELECT COUNT(*) FROM login_failures WHERE subject = $2 \
                      AND at_us > (SELECT now_us FROM db_clock) - $3) AS by_account, \
                   (SELECT at_us FROM login_failures WHERE subject = $2 \
                      AND at_us > (SELECT now_us FROM db_clock) - $3 \
                      ORDER BY at_us DESC LIMIT 1 OFFSET $5) AS account_blocking_since, \
                   (SELECT now_us FROM db_clock) AS now_us",
            )
            .bind(subjects.address)
            .bind(subjects.account)
            .bind(window_us)
            .bind(subjects.max_per_address - 1)
            .bind(subjects.max_per_account - 1)
            .fetch_one(db)
            .await
        })?;
        let counted =
            counts.address_blocking_since.is_none() && counts.account_blocking_since.is_none();
        if counted {
            on_tx!(&mut tx, |db| {
                sqlx::query(
                    "INSERT INTO login_failures (subject, at_us, attempt) \
                     VALUES ($1, (SELECT now_us FROM db_clock), $3), \
                       ($2, (SELECT now_us FROM db_clock), $3)",
                )
                .bind(subjects.address)
                .bind(subjects.account)
                .bind(attempt)
                .execute(db)
                .await
                .map(|r| r.rows_affected())
            })?;
        }
        tx.commit().await?;
        Ok(LoginReservation {
            by_address: FailureCount {
                count: counts.by_address,
                blocking_since_us: counts.address_blocking_since,
            },
            by_account: FailureCount {
                count: counts.by_account,
                blocking_since_us: counts.account_blocking_since,
            },
            clock: DbClock::read_now(counts.now_us),
            counted,
        })
    }

    /// Takes attempt `attempt` back from `address`, and with `clear_account` clears every
    /// failure of `account`; without it, takes the attempt back from `account` only.
    #[tracing::instrument(skip_all, err)]
    pub async fn settle_login_attempt(
        &self,
        address: &str,
        account: &str,
        attempt: i64,
        clear_account: bool,
    ) -> StoreResult<()> {
        on_pool!(&self.writer, |db| {
            sqlx::query(
                "DELETE FROM login_failures WHERE \
                   (subject = $1 AND attempt = $3) \
                   OR (subject = $2 AND ($4 OR attempt = $3))",
            )
            .bind(address)
            .bind(account)
            .bind(attempt)
            .bind(clear_account)
            .execute(db)
            .await
            .map(|r| r.rows_affected())
        })?;
        Ok(())
    }

    /// Deletes failures older than `window_us`, which no longer count, and the subjects
    /// not used since.
    #[tracing::instrument(skip_all, err)]
    pub async fn prune_login_failures(&self, window_us: i64) -> StoreResult<u64> {
        let mut pruned = 0;
        for sql in [
            "DELETE FROM login_failures WHERE at_us <= (SELECT now_us FROM db_clock) - $1",
            self.writer.dialect().prune_login_subjects,
        ] {
            pruned += on_pool!(&self.writer, |db| {
                sqlx::query(sql)
                    .bind(window_us)
                    .execute(db)
                    .await
                    .map(|r| r.rows_affected())
            })?;
        }
        Ok(pruned)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const WINDOW_US: i64 = 15 * 60 * 1_000_000;

    /// Stores a failure of `subject` that happened `ago_s` seconds ago.
    async fn failed_ago(store: &Store, subject: &str, ago_s: i64, attempt: i64) {
        on_pool!(&store.writer, |db| {
            sqlx::query(
                "INSERT INTO login_failures (subject, at_us, attempt) \
                 VALUES ($1, (SELECT now_us FROM db_clock) - $2, $3)",
            )
            .bind(subject)
            .bind(ago_s * 1_000_000)
            .bind(attempt)
            .execute(db)
            .await
            .map(|r| r.rows_affected())
        })
        .unwrap();
    }

    #[tokio::test]
    async fn failures_slide_out_of_the_window_and_the_wait_is_read_from_their_times() {
        let dir = tempfile::tempdir().unwrap();
        let url = crate::config::DatabaseUrl::parse(&format!(
            "sqlite://{}",
            dir.path().join("t.db").display()
        ))
        .unwrap();
        let store = crate::store::connect(&url, Duration::ZERO).await.unwrap();
        let subjects = LoginSubjects {
            address: "ip:10.0.0.1",
            account: "account:x",
            max_per_address: 3,
            max_per_account: 30,
        };
        // Out of the window: they do not count.
        for attempt in 0..5 {
            failed_ago(&store, subjects.address, 16 * 60, attempt).await;
        }
        for (attempt, ago) in [(10, 600), (11, 300), (12, 60)] {
            failed_ago(&store, subjects.address, ago, attempt).await;
        }
        let found = store.reserve_login(subjects, WINDOW_US, 20).await.unwrap();
        assert!(!found.counted);
        assert_eq!(found.by_address.count, 3);
        let since = found.by_address.blocking_since_us.unwrap();
        let ago = found.clock.now().0 - since;
        assert!(
            (600_000_000..601_000_000).contains(&ago),
            "the oldest of the three keeps the address blocked: {ago}"
        );
        assert_eq!(found.by_account.blocking_since_us, None);

        assert_eq!(store.prune_login_failures(WINDOW_US).await.unwrap(), 5);
        let found = store
            .reserve_login(subjects, 400_000_000, 21)
            .await
            .unwrap();
        assert!(found.counted, "in a shorter window only two are left");
        assert_eq!(found.by_address.count, 2);
    }
}
