-- Keep in step with ../postgres/0017_count_changes.sql, which says why PostgreSQL's triggers
-- now append changes instead of updating the counters. SQLite has one writer at a time, so
-- its triggers (0016_inbox_counts.sql) go on updating the counters in place and this table
-- stays empty: it is here so that both backends read the counts with one statement.
CREATE TABLE conversation_count_changes (
    id           INTEGER PRIMARY KEY,
    our_number   TEXT NOT NULL,
    status       TEXT NOT NULL,
    assignee_key BIGINT NOT NULL,
    n            BIGINT NOT NULL
);
CREATE INDEX conversation_count_changes_by_number ON conversation_count_changes (our_number);
