-- Pictures agents send (docs/api.md, "Sending pictures"); keep in step with
-- ../sqlite/0015_uploads.sql. The bytes live in the database so that every instance serves
-- them. An upload no message holds is deleted a day after it came (src/housekeeping.rs);
-- one a message holds stays with the message.
CREATE TABLE uploads (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    agent_id     BIGINT NOT NULL REFERENCES agents (id),
    content_type TEXT NOT NULL,
    size         BIGINT NOT NULL,
    bytes        BYTEA NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL
);
-- JPEG, PNG and GIF are compressed already: storing them out of line without trying again
-- saves the CPU of a compression that would fail.
ALTER TABLE uploads ALTER COLUMN bytes SET STORAGE EXTERNAL;
CREATE INDEX uploads_by_age ON uploads (created_at);

-- The pictures of an outbound message, in order. Twilio fetches each by its token (random,
-- the only key) until it expires; the agents see it through the message.
CREATE TABLE message_media (
    message_id BIGINT NOT NULL REFERENCES messages (id),
    n          BIGINT NOT NULL,
    upload_id  BIGINT NOT NULL REFERENCES uploads (id),
    token      TEXT NOT NULL UNIQUE,
    expires_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (message_id, n)
);
CREATE INDEX message_media_by_upload ON message_media (upload_id);
