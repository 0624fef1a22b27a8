-- The team inbox (docs/api.md, "The team inbox"): who owns a conversation, and whether it is
-- done, plus notes between agents. Keep in step with ../sqlite/0014_team_inbox.sql.
--
-- Every conversation of an upgraded database is open and unassigned (the defaults).
-- `changed` is the seq of the conversation's last change of its own state (name, opt-out,
-- unread count, status, snooze, assignee), taken as every seq is (0004_seq_by_transaction.sql),
-- so that sync can return the conversations changed after its cursor under the same
-- watermark; 0 for a conversation not changed since the upgrade. `version` counts those
-- changes under the row's lock, so events about one conversation can be put in the order
-- its writes committed (src/events.rs).
ALTER TABLE conversations
    ADD COLUMN status TEXT NOT NULL DEFAULT 'open'
        CHECK (status IN ('open', 'snoozed', 'closed')),
    ADD COLUMN snoozed_until TIMESTAMPTZ,
    ADD COLUMN assignee_id BIGINT REFERENCES agents (id) ON DELETE SET NULL,
    ADD COLUMN changed BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN version BIGINT NOT NULL DEFAULT 0;

-- The list's views, each read per number (or per assignee) in the list's order, so that a
-- page never walks the conversations of the other views (docs/performance.md).
CREATE INDEX conversations_by_status ON conversations (our_number, status, activity DESC, id DESC);
CREATE INDEX conversations_unassigned ON conversations (our_number, status, activity DESC, id DESC)
    WHERE assignee_id IS NULL;
CREATE INDEX conversations_by_assignee ON conversations (assignee_id, status, activity DESC, id DESC)
    WHERE assignee_id IS NOT NULL;
-- sync's conversations, and the snoozes that run out.
-- The views' counts, in one pass over an agent's conversations that reads nothing else.
CREATE INDEX conversations_counted ON conversations (our_number, status, assignee_id);
CREATE INDEX conversations_by_change ON conversations (changed);
CREATE INDEX conversations_snoozed ON conversations (snoozed_until) WHERE status = 'snoozed';

-- Notes: messages only agents see.
ALTER TABLE messages DROP CONSTRAINT messages_direction_check;
ALTER TABLE messages ADD CONSTRAINT messages_direction_check
    CHECK (direction IN ('inbound', 'outbound', 'note'));

-- store_inbound (0008_store_inbound.sql) as before, and now: an inbound message reopens a
-- closed or snoozed conversation in the same write, marks the conversation changed (its
-- unread count, perhaps its status and opt-out, with the message's own seq), and returns the
-- conversation's team state with the rest.
DROP FUNCTION store_inbound(TEXT, TEXT, TEXT, TEXT, TEXT, BIGINT, BOOLEAN, BIGINT, TEXT, BIGINT,
    TIMESTAMPTZ);
CREATE FUNCTION store_inbound(
    p_to TEXT, p_from TEXT, p_body TEXT, p_media TEXT, p_sid TEXT, p_segments BIGINT,
    p_opted_out BOOLEAN, p_nth BIGINT, p_status TEXT, p_rank BIGINT, p_at TIMESTAMPTZ
) RETURNS TABLE (
    id BIGINT, conversation_id BIGINT, direction TEXT, from_number TEXT, to_number TEXT,
    body TEXT, media TEXT, status TEXT, error_code BIGINT, error_message TEXT,
    twilio_sid TEXT, client_id TEXT, agent_id BIGINT, segments BIGINT,
    created_at TIMESTAMPTZ, updated_at TIMESTAMPTZ, seq BIGINT,
    contact_name TEXT, opted_out BOOLEAN, unread_count BIGINT, audience BIGINT[],
    c_status TEXT, snoozed_until TIMESTAMPTZ, assignee_id BIGINT, assignee_name TEXT,
    version BIGINT
) LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    conv BIGINT;
    m messages;
BEGIN
    -- A Twilio retry takes no lock and no transaction id.
    PERFORM 1 FROM messages WHERE messages.twilio_sid = p_sid;
    IF FOUND THEN
        RETURN;
    END IF;
    INSERT INTO conversations AS c (our_number, contact_phone, activity, changed, created_at,
        updated_at)
    VALUES (p_to, p_from, (SELECT base FROM seq_base) + p_nth, (SELECT base FROM seq_base) + p_nth,
        p_at, p_at)
    ON CONFLICT (our_number, contact_phone) DO UPDATE SET updated_at = excluded.updated_at
    RETURNING c.id INTO conv;
    -- A concurrent writer of the same sid makes this one wait for its end, then skip.
    INSERT INTO messages AS n (conversation_id, direction, from_number, to_number, body, media,
        status, status_rank, twilio_sid, segments, created_at, updated_at, seq)
    VALUES (conv, 'inbound', p_from, p_to, p_body, p_media, p_status, p_rank, p_sid,
        p_segments, p_at, p_at, (SELECT base FROM seq_base) + p_nth)
    ON CONFLICT DO NOTHING
    RETURNING n.* INTO m;
    IF m.id IS NULL THEN
        RETURN;
    END IF;
    RETURN QUERY
    UPDATE conversations AS c SET unread_count = c.unread_count + 1, last_message_id = m.id,
        activity = m.seq, changed = m.seq, version = c.version + 1, updated_at = p_at,
        opted_out = COALESCE(p_opted_out, c.opted_out), status = 'open', snoozed_until = NULL
    WHERE c.id = conv
    RETURNING m.id, m.conversation_id, m.direction, m.from_number, m.to_number, m.body,
        m.media, m.status, m.error_code, m.error_message, m.twilio_sid, m.client_id,
        m.agent_id, m.segments, m.created_at, m.updated_at, m.seq,
        c.contact_name, c.opted_out, c.unread_count,
        ARRAY(SELECT an.agent_id FROM agent_numbers AS an WHERE an.number = c.our_number
              ORDER BY an.agent_id),
        c.status, c.snoozed_until, c.assignee_id,
        (SELECT a.name FROM agents AS a WHERE a.id = c.assignee_id), c.version;
END
$$;
