-- Roles, disabled agents and invite links (contract §12); keep in step with
-- ../postgres/0007_admin.sql. An invited agent has no password yet (password_hash '') until
-- they accept their invite. While no admin exists, the oldest active agent is one: existing
-- databases get theirs here, new agents in the insert (src/store/agents.rs).
ALTER TABLE agents ADD COLUMN role TEXT NOT NULL DEFAULT 'agent' CHECK (role IN ('admin', 'agent'));
ALTER TABLE agents ADD COLUMN disabled BOOLEAN NOT NULL DEFAULT FALSE;
UPDATE agents SET role = 'admin'
    WHERE id = (SELECT id FROM agents ORDER BY created_at, id LIMIT 1);

-- One-time invite links, by the SHA-256 of their token (the token itself is only in the link).
CREATE TABLE invites (
    token_hash TEXT PRIMARY KEY,
    agent_id   BIGINT NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE INDEX invites_by_agent ON invites (agent_id);
