-- An inbound message in one round trip (src/store/inbound.rs): the statements that
-- src/store/writes.rs ran one by one before, in the same order and with the same meaning.
-- The server calls it once per message of a batch, all in one statement and one transaction
-- (group commit). It returns no row when the MessageSid is stored already (a Twilio retry,
-- or the same sid earlier in the batch); otherwise the message, what the conversation now
-- says, and who hears about it, read in the write.
--
-- The status and its rank come from Rust (Status::Received), which owns the rule. p_nth is
-- the change's number in its transaction (src/store/db.rs): the seq is seq_base + p_nth, as
-- in every other write (0004_seq_by_transaction.sql).
CREATE FUNCTION store_inbound(
    p_to TEXT, p_from TEXT, p_body TEXT, p_media TEXT, p_sid TEXT, p_segments BIGINT,
    p_opted_out BOOLEAN, p_nth BIGINT, p_status TEXT, p_rank BIGINT, p_at TIMESTAMPTZ
) RETURNS TABLE (
    id BIGINT, conversation_id BIGINT, direction TEXT, from_number TEXT, to_number TEXT,
    body TEXT, media TEXT, status TEXT, error_code BIGINT, error_message TEXT,
    twilio_sid TEXT, client_id TEXT, agent_id BIGINT, segments BIGINT,
    created_at TIMESTAMPTZ, updated_at TIMESTAMPTZ, seq BIGINT,
    contact_name TEXT, opted_out BOOLEAN, unread_count BIGINT, audience BIGINT[]
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
    INSERT INTO conversations AS c (our_number, contact_phone, activity, created_at, updated_at)
    VALUES (p_to, p_from, (SELECT base FROM seq_base) + p_nth, p_at, p_at)
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
        activity = m.seq, updated_at = p_at, opted_out = COALESCE(p_opted_out, c.opted_out)
    WHERE c.id = conv
    RETURNING m.id, m.conversation_id, m.direction, m.from_number, m.to_number, m.body,
        m.media, m.status, m.error_code, m.error_message, m.twilio_sid, m.client_id,
        m.agent_id, m.segments, m.created_at, m.updated_at, m.seq,
        c.contact_name, c.opted_out, c.unread_count,
        ARRAY(SELECT an.agent_id FROM agent_numbers AS an WHERE an.number = c.our_number
              ORDER BY an.agent_id);
END
$$;
