-- Per-number pacing slots and login failures, as on PostgreSQL (keep in step with
-- ../postgres/0005_shared_pacing_and_throttle.sql): one instance here, the same statements.
-- 'now' is the same for every use within one statement.
CREATE VIEW db_clock AS
    SELECT CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER) AS now_us;

CREATE TABLE send_pace (
    number       TEXT PRIMARY KEY,
    next_free_us BIGINT NOT NULL
);

ALTER TABLE send_jobs ADD COLUMN slot_us BIGINT;

CREATE TABLE login_failures (
    subject TEXT NOT NULL,
    at_us   BIGINT NOT NULL,
    attempt BIGINT NOT NULL,
    PRIMARY KEY (subject, at_us, attempt)
);
CREATE INDEX login_failures_at ON login_failures (at_us);

-- A row per subject that attempts lock, so that attempts on the same address or account,
-- on any instance, count one after the other.
CREATE TABLE login_subjects (
    subject      TEXT PRIMARY KEY,
    last_used_us BIGINT NOT NULL
);
