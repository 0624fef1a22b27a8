-- The views the statements (src/store/) take seqs and sync's cutoff from; keep them in step
-- with ../postgres/0004_seq_by_transaction.sql. SQLite serialises writers: a transaction's
-- seqs are the counter + 1, 2, …, the counter counts them when it commits (src/store/db.rs),
-- seqs commit in order, and sync may show every one committed.
CREATE VIEW seq_base AS SELECT seq AS base FROM change_counter;
CREATE VIEW seq_visible AS SELECT seq AS up_to FROM change_counter;
