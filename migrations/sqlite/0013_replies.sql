-- Canned replies (docs/api.md, "Canned replies"), shared by every agent; keep in step with
-- ../postgres/0013_replies.sql. The unique shortcut decides between two agents adding the same
-- one at once; the list sorts by it in byte order. A reply outlives its author's being
-- disabled (an admin manages it then), and an agent who wrote replies cannot be deleted from
-- under them.
CREATE TABLE replies (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    shortcut   TEXT NOT NULL UNIQUE,
    body       TEXT NOT NULL,
    agent_id   BIGINT NOT NULL REFERENCES agents (id),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
