-- A send is made once whatever happens; keep in step with ../sqlite/0012_sending_once.sql.

-- A retry names the failed message it sends again: one retry per message, however many are
-- asked for at once (src/store/writes.rs).
ALTER TABLE messages ADD COLUMN retry_of BIGINT REFERENCES messages (id);
CREATE UNIQUE INDEX messages_one_retry ON messages (retry_of);
