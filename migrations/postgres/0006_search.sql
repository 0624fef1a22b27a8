-- Search (contract §11), kept in step by the database itself: the indexes below are on
-- expressions and a generated column, so every write that stores a name, a phone or a message
-- updates them in its own transaction, whichever code path wrote it.
CREATE EXTENSION IF NOT EXISTS unaccent;
CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- Lowercase, without accents: how names, message text and what the agent typed are compared.
-- unaccent() is only STABLE (its dictionary could be changed); named explicitly it does not
-- change, which is what lets indexes use it.
CREATE FUNCTION smsdesk_fold(text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
    AS $$ SELECT lower(public.unaccent('public.unaccent'::regdictionary, $1)) $$;

-- A contact's name contains the text: trigrams of the folded name (LIKE '%…%').
CREATE INDEX conversations_name_search ON conversations
    USING gin (smsdesk_fold(contact_name) gin_trgm_ops);
-- A contact's phone contains the digits: trigrams of the E.164 number without its '+'.
CREATE INDEX conversations_phone_search ON conversations
    USING gin (replace(contact_phone, '+', '') gin_trgm_ops);

-- A message contains the words: its folded words, stored so that checking one message (the
-- conversations of a list page) costs no parsing.
ALTER TABLE messages ADD COLUMN search tsvector
    GENERATED ALWAYS AS (to_tsvector('simple', smsdesk_fold(body))) STORED;
CREATE INDEX messages_search ON messages USING gin (search);
