-- State several instances must share: per-number pacing slots and login failures. Times are
-- the database's clock (`db_clock`, microseconds since the epoch), so instances whose clocks
-- differ agree on them. Keep in step with ../sqlite/0005_shared_pacing_and_throttle.sql.
CREATE VIEW db_clock AS
    SELECT (EXTRACT(EPOCH FROM statement_timestamp()) * 1000000)::BIGINT AS now_us;

-- The next free slot of each sending number (SEND_RATE_PER_NUMBER).
CREATE TABLE send_pace (
    number       TEXT PRIMARY KEY,
    next_free_us BIGINT NOT NULL
);

-- The slot a queued message was given: it keeps it when it wakes, is retried or is taken over.
ALTER TABLE send_jobs ADD COLUMN slot_us BIGINT;

-- One row per counted login attempt and subject: `ip:<address>` or `account:<sha-256 of the
-- normalised email>`; an attempt counts against both.
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
