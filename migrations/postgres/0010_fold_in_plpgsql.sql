-- smsdesk_fold (0006_search.sql) as PL/pgSQL, folding exactly as before.
--
-- As a one-line SQL function it was inlined wherever it is used, and inlining parses its body
-- again: at the start of every statement that stores a message, for the generated `search`
-- column. An inbound message is written by its own statements (store_inbound, 0008), so each
-- message paid for that parse, about 40 % of its insert's cost (0.30 → 0.18 ms per call of
-- store_inbound for one message, measured with pgbench). A PL/pgSQL function is compiled
-- once per connection and called, never inlined. Indexes on it match by the function, as
-- before; what it returns is unchanged, so they stay valid.
CREATE OR REPLACE FUNCTION smsdesk_fold(text) RETURNS text
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE STRICT
    AS $$ BEGIN RETURN lower(public.unaccent('public.unaccent'::regdictionary, $1)); END $$;
