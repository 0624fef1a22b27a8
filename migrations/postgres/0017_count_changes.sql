-- The views' counters (0016_inbox_counts.sql) without a lock on them in any writer. Keep in
-- step with ../sqlite/0017_count_changes.sql.
--
-- In 0016 a move updated its two counter rows and held their locks until its transaction
-- ended. One move took them in key order, but a transaction that moves several conversations
-- (a snooze running out wakes many, an agent disabled lets go of all theirs, an inbound batch
-- reopens some) took them in the order it met its conversations, between conversation locks:
-- two such transactions, or one and a single move, could wait for each other's rows, and
-- PostgreSQL aborted one (a 500, a lost wake). Now a move only appends its two changes here,
-- which locks nothing another writer waits for; the counts read the counters plus the changes
-- not folded yet, in one snapshot, and a chore folds the changes into the counters
-- (src/store/inbox.rs, `Store::fold_counts`). The only rows writers of conversations still
-- wait for are the conversations', taken in (our_number, contact_phone) order by every
-- writer of several (docs/reliability.md, "Team inbox").
CREATE TABLE conversation_count_changes (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    our_number   TEXT NOT NULL,
    status       TEXT NOT NULL,
    assignee_key BIGINT NOT NULL,
    n            BIGINT NOT NULL
);
CREATE INDEX conversation_count_changes_by_number ON conversation_count_changes (our_number);

DROP TRIGGER conversation_counts_insert ON conversations;
DROP TRIGGER conversation_counts_update ON conversations;
DROP TRIGGER conversation_counts_delete ON conversations;
DROP FUNCTION conversation_counts_kept();
DROP FUNCTION conversation_counts_add(TEXT, TEXT, BIGINT, BIGINT);

CREATE FUNCTION conversation_count_changes_kept() RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        INSERT INTO conversation_count_changes (our_number, status, assignee_key, n)
        VALUES (OLD.our_number, OLD.status, COALESCE(OLD.assignee_id, 0), -1);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO conversation_count_changes (our_number, status, assignee_key, n)
        VALUES (NEW.our_number, NEW.status, COALESCE(NEW.assignee_id, 0), 1);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER conversation_counts_insert AFTER INSERT ON conversations
    FOR EACH ROW EXECUTE FUNCTION conversation_count_changes_kept();
CREATE TRIGGER conversation_counts_update AFTER UPDATE OF our_number, status, assignee_id
    ON conversations FOR EACH ROW
    WHEN (OLD.our_number IS DISTINCT FROM NEW.our_number OR OLD.status IS DISTINCT FROM NEW.status
          OR OLD.assignee_id IS DISTINCT FROM NEW.assignee_id)
    EXECUTE FUNCTION conversation_count_changes_kept();
CREATE TRIGGER conversation_counts_delete AFTER DELETE ON conversations
    FOR EACH ROW EXECUTE FUNCTION conversation_count_changes_kept();
