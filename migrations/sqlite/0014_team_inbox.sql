-- The team inbox (docs/api.md, "The team inbox"): who owns a conversation, and whether it is
-- done, plus notes between agents. Keep in step with ../postgres/0014_team_inbox.sql, which
-- says what `changed` and `version` are. Every conversation of an upgraded database is open
-- and unassigned (the defaults).
ALTER TABLE conversations ADD COLUMN status TEXT NOT NULL DEFAULT 'open'
    CHECK (status IN ('open', 'snoozed', 'closed'));
ALTER TABLE conversations ADD COLUMN snoozed_until TEXT;
ALTER TABLE conversations ADD COLUMN assignee_id BIGINT REFERENCES agents (id) ON DELETE SET NULL;
ALTER TABLE conversations ADD COLUMN changed BIGINT NOT NULL DEFAULT 0;
ALTER TABLE conversations ADD COLUMN version BIGINT NOT NULL DEFAULT 0;

CREATE INDEX conversations_by_status ON conversations (our_number, status, activity DESC, id DESC);
CREATE INDEX conversations_unassigned ON conversations (our_number, status, activity DESC, id DESC)
    WHERE assignee_id IS NULL;
CREATE INDEX conversations_by_assignee ON conversations (assignee_id, status, activity DESC, id DESC)
    WHERE assignee_id IS NOT NULL;
-- The views' counts, in one pass over an agent's conversations that reads nothing else.
CREATE INDEX conversations_counted ON conversations (our_number, status, assignee_id);
CREATE INDEX conversations_by_change ON conversations (changed);
CREATE INDEX conversations_snoozed ON conversations (snoozed_until) WHERE status = 'snoozed';

-- Notes: messages only agents see, so `direction` also takes 'note'. SQLite cannot alter a
-- CHECK constraint, and rebuilding `messages` would copy every message and needs foreign keys
-- off, which a migration's transaction cannot turn off. Widening the constraint leaves every
-- stored row valid, which is the case where SQLite documents editing the schema's text in
-- place (https://www.sqlite.org/lang_altertable.html, "otheralter"); RESET reloads it on this
-- connection, and the DDL above already moved the schema version for any other.
PRAGMA writable_schema = ON;
UPDATE sqlite_schema
    SET sql = replace(sql, 'CHECK (direction IN (''inbound'', ''outbound''))',
                      'CHECK (direction IN (''inbound'', ''outbound'', ''note''))')
    WHERE type = 'table' AND name = 'messages';
PRAGMA writable_schema = RESET;
