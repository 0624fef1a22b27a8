-- Canned replies (docs/api.md, "Canned replies"), shared by every agent; keep in step with
-- ../sqlite/0013_replies.sql. The unique shortcut decides between two agents adding the same
-- one at once. Its "C" collation sorts the list as SQLite does (byte order), whatever the
-- database's locale. A reply outlives its author's being disabled (an admin manages it then),
-- and an agent who wrote replies cannot be deleted from under them.
CREATE TABLE replies (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    shortcut   TEXT COLLATE "C" NOT NULL UNIQUE,
    body       TEXT NOT NULL,
    agent_id   BIGINT NOT NULL REFERENCES agents (id),
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
