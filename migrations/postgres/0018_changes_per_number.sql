-- `sync` reads the conversations changed after its cursor (src/store/reads.rs,
-- `conversation_changes`) one number at a time, in change order, as the list reads a number's
-- page: this index holds each number's conversations in that order, so a page of changes
-- reads about a page of rows. Walking `conversations_by_change` instead steps over every
-- conversation of the numbers the agent does not hold, and past an old cursor a planner may
-- rather read all the agent's conversations and sort them (docs/performance.md, "Scale of
-- data"). `conversations_by_change` stays: the start's `MAX(changed)` reads it
-- (src/store/postgres.rs). Keep in step with ../sqlite/0018_changes_per_number.sql.
CREATE INDEX conversations_changed_per_number ON conversations (our_number, changed, id);
