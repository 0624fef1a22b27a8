-- A send is made once whatever happens; keep in step with ../postgres/0012_sending_once.sql.

-- A retry names the failed message it sends again: one retry per message, however many are
-- asked for at once (src/store/writes.rs).
ALTER TABLE messages ADD COLUMN retry_of BIGINT REFERENCES messages (id);
CREATE UNIQUE INDEX messages_one_retry ON messages (retry_of);

-- The sid of Twilio's 201 to a create, kept on its job when the worker that had it lost its
-- claim before recording it: whoever holds the job records it, and never posts again.
ALTER TABLE send_jobs ADD COLUMN twilio_sid TEXT;

-- When each number's last create went out plus that message's share of the rate: the next
-- one goes no sooner, whatever slot it was given (src/store/pacing.rs).
ALTER TABLE send_pace ADD COLUMN sent_until_us BIGINT NOT NULL DEFAULT 0;

-- Sent messages whose status is not final yet: fetched from Twilio at the times
-- StatusChecks says, counted from when Twilio took them, in case their callbacks never come
-- (src/store/status_checks.rs).
CREATE TABLE status_checks (
    message_id  BIGINT PRIMARY KEY REFERENCES messages (id),
    twilio_sid  TEXT NOT NULL,
    accepted_at TEXT NOT NULL,
    -- How many checks were claimed so far.
    checks      BIGINT NOT NULL DEFAULT 0,
    due_at      TEXT NOT NULL
);
CREATE INDEX status_checks_due ON status_checks (due_at);
