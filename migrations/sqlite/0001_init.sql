-- smsdesk schema, SQLite flavour (times are RFC 3339 text). Keep it in step with ../postgres/0001_init.sql.

CREATE TABLE agents (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    email         TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at    TEXT NOT NULL
);

CREATE TABLE agent_numbers (
    agent_id BIGINT NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    number   TEXT NOT NULL,
    PRIMARY KEY (agent_id, number)
);
-- Who hears about a conversation: every agent holding its number.
CREATE INDEX agent_numbers_by_number ON agent_numbers (number, agent_id);

CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    agent_id   BIGINT NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE INDEX sessions_by_agent ON sessions (agent_id);

CREATE TABLE conversations (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    our_number      TEXT NOT NULL,
    contact_phone   TEXT NOT NULL,
    contact_name    TEXT,
    opted_out       BOOLEAN NOT NULL DEFAULT FALSE,
    unread_count    BIGINT NOT NULL DEFAULT 0,
    last_message_id BIGINT,
    -- seq of the newest message: the list's order and cursor.
    activity        BIGINT NOT NULL DEFAULT 0,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    UNIQUE (our_number, contact_phone)
);
CREATE INDEX conversations_by_activity ON conversations (our_number, activity DESC, id DESC);

CREATE TABLE messages (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id BIGINT NOT NULL REFERENCES conversations (id),
    direction       TEXT NOT NULL CHECK (direction IN ('inbound', 'outbound')),
    from_number     TEXT NOT NULL,
    to_number       TEXT NOT NULL,
    body            TEXT NOT NULL,
    media           TEXT NOT NULL DEFAULT '[]',
    status          TEXT NOT NULL,
    status_rank     BIGINT NOT NULL,
    error_code      BIGINT,
    error_message   TEXT,
    twilio_sid      TEXT UNIQUE,
    client_id       TEXT,
    agent_id        BIGINT REFERENCES agents (id),
    segments        BIGINT NOT NULL,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    -- The global change cursor: bumped on every change, read by sync.
    seq             BIGINT NOT NULL UNIQUE,
    UNIQUE (agent_id, client_id)
);
CREATE INDEX messages_by_conversation ON messages (conversation_id, id DESC);

-- One row holding the last seq handed out; SQLite serialises writers, so seqs commit in order
-- and sync never skips a change.
CREATE TABLE change_counter (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    seq BIGINT NOT NULL
);
INSERT INTO change_counter (id, seq) VALUES (1, 0);

-- The durable sending queue.
CREATE TABLE send_jobs (
    message_id     BIGINT PRIMARY KEY REFERENCES messages (id),
    run_at         TEXT NOT NULL,
    attempts       BIGINT NOT NULL DEFAULT 0,
    lease_until    TEXT,
    first_tried_at TEXT,
    -- An earlier attempt may have reached Twilio: look before sending again.
    maybe_sent     BOOLEAN NOT NULL DEFAULT FALSE,
    last_error     TEXT
);
CREATE INDEX send_jobs_due ON send_jobs (run_at);

-- Status callbacks for a sid we have not recorded yet (no message id in the URL).
CREATE TABLE early_statuses (
    twilio_sid  TEXT NOT NULL,
    status      TEXT NOT NULL,
    error_code  BIGINT,
    received_at TEXT NOT NULL,
    PRIMARY KEY (twilio_sid, status)
);
