-- The views' counts (GET /api/crm/sms/conversations/counts), kept as counters rather than
-- counted over every conversation of an agent's numbers on each read (docs/performance.md).
-- Keep in step with ../sqlite/0016_inbox_counts.sql. Triggers on conversations keep them in
-- the transaction of every write, so no write can leave them behind. `assignee_key` is the
-- assignee, 0 for none: agents' ids start at 1, and a unique key needs a value to match.
CREATE TABLE conversation_counts (
    our_number   TEXT NOT NULL,
    status       TEXT NOT NULL,
    assignee_key BIGINT NOT NULL,
    n            BIGINT NOT NULL,
    PRIMARY KEY (our_number, status, assignee_key)
);

INSERT INTO conversation_counts (our_number, status, assignee_key, n)
SELECT our_number, status, COALESCE(assignee_id, 0), COUNT(*)
FROM conversations GROUP BY our_number, status, COALESCE(assignee_id, 0);

CREATE FUNCTION conversation_counts_add(p_number TEXT, p_status TEXT, p_assignee BIGINT,
    p_by BIGINT) RETURNS VOID LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO conversation_counts AS cc (our_number, status, assignee_key, n)
    VALUES (p_number, p_status, COALESCE(p_assignee, 0), p_by)
    ON CONFLICT (our_number, status, assignee_key) DO UPDATE SET n = cc.n + excluded.n;
END
$$;

-- A move takes the two counter rows' locks in their key's order, so that two writers moving
-- conversations in opposite directions between the same rows cannot deadlock.
CREATE FUNCTION conversation_counts_kept() RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM conversation_counts_add(NEW.our_number, NEW.status, NEW.assignee_id, 1);
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM conversation_counts_add(OLD.our_number, OLD.status, OLD.assignee_id, -1);
    ELSIF (OLD.our_number, OLD.status, COALESCE(OLD.assignee_id, 0))
        < (NEW.our_number, NEW.status, COALESCE(NEW.assignee_id, 0)) THEN
        PERFORM conversation_counts_add(OLD.our_number, OLD.status, OLD.assignee_id, -1);
        PERFORM conversation_counts_add(NEW.our_number, NEW.status, NEW.assignee_id, 1);
    ELSE
        PERFORM conversation_counts_add(NEW.our_number, NEW.status, NEW.assignee_id, 1);
        PERFORM conversation_counts_add(OLD.our_number, OLD.status, OLD.assignee_id, -1);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER conversation_counts_insert AFTER INSERT ON conversations
    FOR EACH ROW EXECUTE FUNCTION conversation_counts_kept();
CREATE TRIGGER conversation_counts_update AFTER UPDATE OF our_number, status, assignee_id
    ON conversations FOR EACH ROW
    WHEN (OLD.our_number IS DISTINCT FROM NEW.our_number OR OLD.status IS DISTINCT FROM NEW.status
          OR OLD.assignee_id IS DISTINCT FROM NEW.assignee_id)
    EXECUTE FUNCTION conversation_counts_kept();
CREATE TRIGGER conversation_counts_delete AFTER DELETE ON conversations
    FOR EACH ROW EXECUTE FUNCTION conversation_counts_kept();

-- The counts now read these rows, not the conversations.
DROP INDEX conversations_counted;
