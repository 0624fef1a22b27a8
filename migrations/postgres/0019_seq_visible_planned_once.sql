-- seq_visible, the same value, computed by a function. As a view, every statement that reads
-- it (each list, view and search page, and sync) planned its body again: `pg_stat_activity`
-- is itself a view of three relations, and planning it was half the planning of a list page,
-- about 0.35 ms of every call (docs/performance.md, "The team inbox's views"). A PL/pgSQL
-- function plans its query once per connection and keeps it.
--
-- STABLE: its query runs in the snapshot of the statement that calls it, as the view's did,
-- so pg_current_snapshot() is still that statement's and a page still holds every change up
-- to the value it reads beside it (0004_seq_by_transaction.sql).
CREATE FUNCTION seq_visible_up_to() RETURNS BIGINT
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (
        SELECT o.seq_offset + (COALESCE(
            (SELECT min(x::text::bigint) FROM pg_snapshot_xip(s.snap) AS x
             WHERE x::xid NOT IN (SELECT backend_xid FROM pg_stat_activity
                                  WHERE datname <> current_database()
                                    AND backend_xid IS NOT NULL)),
            pg_snapshot_xmax(s.snap)::text::bigint) << 8)
        FROM seq_origin AS o, pg_current_snapshot() AS s (snap)
    );
END
$$;

CREATE OR REPLACE VIEW seq_visible AS SELECT seq_visible_up_to() AS up_to;
