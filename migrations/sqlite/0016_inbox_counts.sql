-- The views' counts as counters kept by triggers; keep in step with
-- ../postgres/0016_inbox_counts.sql, which says why. SQLite has one writer at a time, so the
-- order of a move's two counter rows does not matter here.
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

CREATE TRIGGER conversation_counts_insert AFTER INSERT ON conversations
BEGIN
    INSERT INTO conversation_counts (our_number, status, assignee_key, n)
    VALUES (NEW.our_number, NEW.status, COALESCE(NEW.assignee_id, 0), 1)
    ON CONFLICT (our_number, status, assignee_key) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER conversation_counts_update AFTER UPDATE OF our_number, status, assignee_id
    ON conversations
    WHEN OLD.our_number IS NOT NEW.our_number OR OLD.status IS NOT NEW.status
        OR OLD.assignee_id IS NOT NEW.assignee_id
BEGIN
    UPDATE conversation_counts SET n = n - 1
    WHERE our_number = OLD.our_number AND status = OLD.status
        AND assignee_key = COALESCE(OLD.assignee_id, 0);
    INSERT INTO conversation_counts (our_number, status, assignee_key, n)
    VALUES (NEW.our_number, NEW.status, COALESCE(NEW.assignee_id, 0), 1)
    ON CONFLICT (our_number, status, assignee_key) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER conversation_counts_delete AFTER DELETE ON conversations
BEGIN
    UPDATE conversation_counts SET n = n - 1
    WHERE our_number = OLD.our_number AND status = OLD.status
        AND assignee_key = COALESCE(OLD.assignee_id, 0);
END;

-- The counts now read these rows, not the conversations.
DROP INDEX conversations_counted;
