-- Keep in step with ../postgres/0018_changes_per_number.sql, which says why `sync` reads a
-- number's changed conversations through this index. Nothing else reads
-- `conversations_by_change` on SQLite (its change counter, not `MAX(changed)`, says where
-- the next seq starts), so this index replaces it.
CREATE INDEX conversations_changed_per_number ON conversations (our_number, changed, id);
DROP INDEX conversations_by_change;
