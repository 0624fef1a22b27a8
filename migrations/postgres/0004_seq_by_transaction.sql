-- seq follows transaction order, so that PostgreSQL itself can tell, whichever instance
-- wrote, below which seq no change can commit any more. Keep the views in step with
-- ../sqlite/0004_seq_by_transaction.sql: the statements (src/store/) use them by name.
--
-- A change's seq is seq_offset + (its transaction's id << 8) + n, where n = 1, 2, … counts
-- the transaction's changes (src/store/db.rs, at most 255). Transaction ids (xid8: 64 bits,
-- never wrapping) are handed out in order, and a transaction gets its id at its first write.
-- So whatever is still running in this database, or has not written yet, will take seqs
-- above seq_visible, and sync (in the same statement, so with the same snapshot) shows
-- nothing above it. A write that began later but committed earlier is shown once every
-- older one has ended: milliseconds.
--
-- seq_offset lifts new seqs above those already stored: here over the old sequence's, and
-- after a dump is restored into a younger cluster. The server raises it at start if needed.
DROP SEQUENCE change_seq;

CREATE TABLE seq_origin (
    id         SMALLINT PRIMARY KEY CHECK (id = 1),
    seq_offset BIGINT NOT NULL
);
INSERT INTO seq_origin (id, seq_offset) VALUES (1, 0);

-- The base of this transaction's seqs (it gets its id here if it had none).
CREATE VIEW seq_base AS
    SELECT seq_offset + (pg_current_xact_id()::text::bigint << 8) AS base FROM seq_origin;

-- The highest seq sync may show: below the smallest id among the transactions running in
-- this snapshot, else below its xmax (ids from there on may be running or not given yet).
-- Transactions of other databases are left out, as they cannot write here: pg_stat_activity
-- names their database (an id it does not place, like a prepared transaction's, counts).
CREATE VIEW seq_visible AS
    SELECT o.seq_offset + (COALESCE(
        (SELECT min(x::text::bigint) FROM pg_snapshot_xip(s.snap) AS x
         WHERE x::xid NOT IN (SELECT backend_xid FROM pg_stat_activity
                              WHERE datname <> current_database() AND backend_xid IS NOT NULL)),
        pg_snapshot_xmax(s.snap)::text::bigint) << 8) AS up_to
    FROM seq_origin AS o, pg_current_snapshot() AS s (snap);
