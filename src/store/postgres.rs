//! PostgreSQL, for production: one pool for reads and writes; any number of instances may
//! share the database. A `seq` is made of its transaction's id (`seq_base`), so `seq` order
//! is the order in which transactions began to write, and `sync` cuts off below the oldest
//! transaction of the database still running (`seq_visible`); see
//! `migrations/postgres/0004_seq_by_transaction.sql`.

use std::time::Duration;

use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use super::agents::{insert_session, live_sessions_sql};
use super::dialect::{Backend, Dialect, list_filters};
use super::inbox::{assignable, unassign_lost_sql, wake_snoozed_sql};
use super::queue::claim_sql;
use super::rows::conversation_select;
use super::statuses::status_target;

/// A page of the conversation list with `$filter`: each number's page, walked in its index
/// by `LATERAL`.
macro_rules! list_per_number {
    ($filter:literal) => {
        concat!(
            conversation_select!(
                "(SELECT up_to FROM seq_visible) AS visible_up_to, ",
                "(SELECT page.* FROM agent_numbers an CROSS JOIN LATERAL \
                   (SELECT * FROM conversations WHERE our_number = an.number \
                    AND activity < $2",
                $filter,
                " ORDER BY activity DESC, id DESC LIMIT $3) page \
                 WHERE an.agent_id = $1 ORDER BY page.activity DESC, page.id DESC LIMIT $3) c"
            ),
            "ORDER BY c.activity DESC, c.id DESC"
        )
    };
}

/// The conversations changed in a range of `seq`s, each number's walked in its index by
/// `LATERAL`, as `list_per_number!` walks a page.
const CONVERSATION_CHANGES: &str = concat!(
    conversation_select!(
        "",
        "(SELECT page.* FROM agent_numbers an CROSS JOIN LATERAL \
           (SELECT * FROM conversations WHERE our_number = an.number \
            AND changed > $2 AND changed <= $4 ORDER BY changed, id LIMIT $3) page \
         WHERE an.agent_id = $1 ORDER BY page.changed, page.id LIMIT $3) c"
    ),
    "ORDER BY c.changed, c.id"
);

impl Backend for sqlx::Postgres {
    const DIALECT: Dialect = Dialect {
        name: "postgres",
        count_seqs: None,
        status_target: [
            status_target!("id", " FOR UPDATE"),
            status_target!("twilio_sid", " FOR UPDATE"),
        ],
        lock_status: "SELECT status FROM messages WHERE id = $1 FOR UPDATE",
        list_conversations: list_filters!(list_per_number),
        conversation_changes: CONVERSATION_CHANGES,
        // A disable (an UPDATE of the agent) or a number taken away (a DELETE of it) waits
        // for the assignment to end, and then sees it.
        assignable: assignable!(" FOR SHARE OF a, an"),
        wake_snoozed: wake_snoozed_sql!(" FOR UPDATE OF c"),
        unassign_lost: unassign_lost_sql!(" FOR UPDATE OF c"),
        // Each fold takes changes no other fold holds, and the counters in key order: two
        // folds (two instances) neither wait for the same change nor deadlock on counters.
        fold_counts: Some(
            "WITH folded AS (DELETE FROM conversation_count_changes WHERE id IN ( \
               SELECT id FROM conversation_count_changes ORDER BY id LIMIT $1 \
               FOR UPDATE SKIP LOCKED) RETURNING our_number, status, assignee_key, n) \
             INSERT INTO conversation_counts AS cc (our_number, status, assignee_key, n) \
             SELECT our_number, status, assignee_key, SUM(n) FROM folded \
             GROUP BY our_number, status, assignee_key \
             ORDER BY our_number, status, assignee_key \
             ON CONFLICT (our_number, status, assignee_key) DO UPDATE SET n = cc.n + excluded.n",
        ),
        // Concurrent workers each take another job instead of queueing on the same row.
        claim: claim_sql!(" FOR UPDATE SKIP LOCKED"),
        // Under READ COMMITTED two writers could both see no agent, or each see the other admin
        // left; this lock makes any other writer of agents (setup, the CLI, an admin, another
        // instance) wait for us, and us for it. Reads and sessions' key checks do not wait.
        lock_agents: Some("LOCK TABLE agents IN SHARE ROW EXCLUSIVE MODE"),
        // Under READ COMMITTED a session insert could read the agent as enabled, a disable
        // commit and delete the agent's sessions, and the insert commit after it: a session
        // of a disabled agent, usable again once they are enabled. Holding the agent's row
        // (a disable's UPDATE waits for it, or it waits for the disable and rereads the
        // row) puts the insert wholly before or wholly after the disable.
        insert_session: insert_session!(" FOR SHARE"),
        // An attempt holds its address's row while it waits for its account's: a prune that
        // waited for one while holding the other could deadlock with it.
        prune_login_subjects: "DELETE FROM login_subjects WHERE subject IN (SELECT subject \
            FROM login_subjects WHERE last_used_us <= (SELECT now_us FROM db_clock) - $1 \
            FOR UPDATE SKIP LOCKED)",
        live_sessions: live_sessions_sql!("SELECT json_array_elements_text($1::json)"),
    };
}

/// A transaction of ours left open holds `sync` back on every instance (its id stays the
/// oldest running); the server ends it after this long idle. None of ours waits on anything
/// but the database between its statements.
const IDLE_IN_TRANSACTION: Duration = Duration::from_secs(5);

/// A connection idle this long is pinged before use. One used sooner fails its statement
/// only if the server went away within that second, when the request would most likely
/// have failed anyway; sqlx then closes it.
const PING_IDLE_AFTER: Duration = Duration::from_secs(1);

/// Connects and migrates.
pub(super) async fn connect(url: &str) -> anyhow::Result<PgPool> {
    let pool = PgPoolOptions::new()
        .max_connections(16)
        .acquire_timeout(Duration::from_secs(3))
        // sqlx pings a connection when it goes back to the pool, and by default again when
        // it is taken: a second round trip before every statement. One taken soon after its
        // release has just answered; only one idle longer is pinged, as it may have outlived
        // its server (a restart) and would fail the request it was taken for.
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= PING_IDLE_AFTER {
                    conn.ping().await?;
                }
                Ok(true)
            })
        })
        .connect_with(connect_options(url)?)
        .await?;
    sqlx::migrate!("./migrations/postgres").run(&pool).await?;
    seqs_above_stored(&pool).await?;
    Ok(pool)
}

fn connect_options(url: &str) -> anyhow::Result<PgConnectOptions> {
    let options: PgConnectOptions = url.parse()?;
    Ok(options.application_name("smsdesk").options([
        (
            "idle_in_transaction_session_timeout",
            format!("{}ms", IDLE_IN_TRANSACTION.as_millis()),
        ),
        // Every statement of ours reads a handful of rows by index, and JIT's compile costs
        // far more than any of them runs. The planner still turns it on for a cheap statement
        // whose estimate is off: the sync watermark's, over the one-row `seq_origin` taken
        // for thousands of rows (never analyzed), was compiled at every `sync`, 4 s a call
        // once hundreds of sockets synced at once (docs/reliability.md, "Soak").
        ("jit", "off".to_owned()),
    ]))
}

/// The highest `seq`, `activity` or `changed` stored: every new `seq` must come after it.
macro_rules! stored {
    () => {
        "COALESCE(GREATEST((SELECT MAX(seq) FROM messages), \
         (SELECT MAX(activity) FROM conversations), (SELECT MAX(changed) FROM conversations)), 0)"
    };
}

/// Raises `seq_origin` until every new `seq` comes after every stored one. Transaction ids
/// only grow within a cluster, but a dump restored into another one starts them low again,
/// and the changes after it would sort before the restored ones: cursors handed out before
/// would pass them by. (This is also how the first `seq`s of a database migrated from the
/// old sequence come after its last.)
async fn seqs_above_stored(pool: &PgPool) -> anyhow::Result<()> {
    // A transaction that has not written yet gets an id of at least the snapshot's xmax,
    // so its seqs start above `seq_offset + (xmax << 8)` (seq_base).
    let behind: bool = sqlx::query_scalar(concat!(
        "SELECT ",
        stored!(),
        " >= seq_offset + (pg_snapshot_xmax(pg_current_snapshot())::text::bigint << 8) \
         FROM seq_origin"
    ))
    .fetch_one(pool)
    .await?;
    if !behind {
        return Ok(());
    }
    tracing::warn!("stored seqs are ahead of this cluster's transaction ids; raising seq_offset");
    let mut tx = pool.begin().await?;
    // Every write and every sync reads seq_origin (through the views) and keeps it locked
    // until it ends: once this lock is ours, none that used the old offset is in flight,
    // and every transaction that can still take a seq will take it above seq_visible.
    sqlx::query("LOCK TABLE seq_origin IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await?;
    sqlx::query(concat!(
        "UPDATE seq_origin SET seq_offset = seq_offset + GREATEST(0, ",
        stored!(),
        " - (SELECT up_to FROM seq_visible))"
    ))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_connection_ends_a_transaction_left_idle_and_never_compiles_a_statement() {
        let options =
            connect_options("postgres://u:p@db/smsdesk?options=-c%20search_path%3Dapp").unwrap();
        assert_eq!(
            options.get_options(),
            Some("-c search_path=app -c idle_in_transaction_session_timeout=5000ms -c jit=off")
        );
    }

    /// The server takes the options as sent (a server that ignored them would hold `sync`
    /// back behind JIT compiles again).
    #[tokio::test]
    async fn the_server_runs_our_sessions_without_jit() {
        use sqlx::Connection;
        let Ok(url) = std::env::var("TEST_DATABASE_URL") else {
            return;
        };
        let mut db = sqlx::PgConnection::connect_with(&connect_options(&url).unwrap())
            .await
            .unwrap();
        let jit: String = sqlx::query_scalar("SHOW jit")
            .fetch_one(&mut db)
            .await
            .unwrap();
        let idle: String = sqlx::query_scalar("SHOW idle_in_transaction_session_timeout")
            .fetch_one(&mut db)
            .await
            .unwrap();
        assert_eq!((jit.as_str(), idle.as_str()), ("off", "5s"));
    }
}
