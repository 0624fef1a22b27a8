//! The statements of a search on each backend (`src/store/search.rs` says how a search
//! reads): kept apart from the search's steps, which choose among them.

use super::rows::{conversation_select, filtered, visible_to};

/// The statements of one backend. Conversation ids travel as a JSON array of integers.
pub(super) struct SearchSql {
    /// Per part, the conversations its index names: the part as `$1` (and on SQLite at most
    /// `$2` index rows; each row is an index row, so a conversation may come more than once).
    pub(super) parts: [&'static str; 3],
    /// The conversations of `$2` that agent `$1` sees, below cursor `$3`, at most `$4`, in
    /// the list's order, that the view `$5`–`$7` holds (`filtered!`); only those get their
    /// last message read.
    pub(super) page_of: &'static str,
    /// Agent `$1`'s next `$3` conversations below `$2` (id and activity) in the view `$4`–`$6`,
    /// in the list's order.
    pub(super) window: &'static str,
    /// Which of the conversations `$1` are among `$2` or match the parts `$3`–`$5` (a part
    /// left out is `NULL`); on SQLite also those whose name contains `$6` or phone `$7`
    /// (`LIKE` patterns, see `Store::phone_check` in `src/store/search.rs`).
    pub(super) check: &'static str,
    /// Agent `$1`'s conversations below `$2` that match any of the parts `$4`–`$6`, at most
    /// `$3`, in the list's order, in the view `$7`–`$9`.
    pub(super) below: &'static str,
}

/// PostgreSQL: the name (folded) contains the text, the phone the digits, or a message all
/// the words (a `tsquery`). The text and the words come folded already, the text as a
/// `LIKE` literal and the words as a `tsquery` of quoted words (see `search_terms` in `src/store/search.rs`).
pub(super) const POSTGRES: SearchSql = SearchSql {
    parts: [
        "SELECT id FROM conversations \
         WHERE contact_name_folded LIKE ('%' || $1::text || '%')",
        "SELECT id FROM conversations \
         WHERE replace(contact_phone, '+', '') LIKE ('%' || $1::text || '%')",
        "SELECT conversation_id AS id FROM messages \
         WHERE search @@ to_tsquery('simple', $1::text)",
    ],
    page_of: concat!(
        conversation_select!(
            "(SELECT up_to FROM seq_visible) AS visible_up_to, ",
            "(SELECT * FROM conversations c \
              WHERE c.id IN (SELECT json_array_elements_text($2::json)::bigint) \
              AND c.activity < $3 \
              AND c.our_number IN (SELECT number FROM agent_numbers WHERE agent_id = $1)",
            filtered!("c", "5", "6", "7"),
            "ORDER BY c.activity DESC, c.id DESC LIMIT $4) c"
        ),
        "ORDER BY c.activity DESC, c.id DESC"
    ),
    window: concat!(
        "SELECT page.id, page.activity FROM agent_numbers an CROSS JOIN LATERAL \
           (SELECT c.id, c.activity FROM conversations c \
            WHERE c.our_number = an.number AND c.activity < $2",
        filtered!("c", "4", "5", "6"),
        "ORDER BY c.activity DESC, c.id DESC LIMIT $3) page \
         WHERE an.agent_id = $1 ORDER BY page.activity DESC, page.id DESC LIMIT $3"
    ),
    // The words are looked for newest message first through the conversation's own index,
    // and the first match ends the look: a common word is found at once.
    check: "SELECT c.id FROM conversations c \
        WHERE c.id IN (SELECT json_array_elements_text($1::json)::bigint) \
        AND (c.id IN (SELECT json_array_elements_text($2::json)::bigint) \
          OR c.contact_name_folded LIKE ('%' || $3::text || '%') \
          OR replace(c.contact_phone, '+', '') LIKE ('%' || $4::text || '%') \
          OR ($5::text IS NOT NULL AND EXISTS (SELECT 1 FROM (SELECT s.id FROM messages s \
              WHERE s.conversation_id = c.id \
              AND s.search @@ to_tsquery('simple', $5::text) \
              ORDER BY s.id DESC LIMIT 1) first_match)))",
    below: concat!(
        conversation_select!("(SELECT up_to FROM seq_visible) AS visible_up_to, "),
        "WHERE c.id IN ( \
           SELECT id FROM conversations \
             WHERE contact_name_folded LIKE ('%' || $4::text || '%') \
           UNION SELECT id FROM conversations \
             WHERE replace(contact_phone, '+', '') LIKE ('%' || $5::text || '%') \
           UNION SELECT conversation_id FROM messages \
             WHERE search @@ to_tsquery('simple', $6::text)) \
         AND c.activity < $2 AND",
        visible_to!("1"),
        filtered!("c", "7", "8", "9"),
        "ORDER BY c.activity DESC, c.id DESC LIMIT $3"
    ),
};

/// SQLite: an FTS5 expression over the name and phone trigrams, a `LIKE` pattern for a
/// name shorter than a trigram, and an FTS5 expression over message words. A part left out
/// is `NULL`, tested before the FTS5 table is asked.
pub(super) const SQLITE: SearchSql = SearchSql {
    parts: [
        "SELECT rowid AS id FROM conversations_search \
         WHERE conversations_search MATCH $1 LIMIT $2",
        "SELECT id FROM conversations WHERE contact_name LIKE $1 ESCAPE '\\' LIMIT $2",
        "SELECT m.conversation_id AS id FROM (SELECT rowid FROM messages_search \
           WHERE messages_search MATCH $1 LIMIT $2) hit \
         JOIN messages m ON m.id = hit.rowid",
    ],
    page_of: concat!(
        conversation_select!(
            "(SELECT up_to FROM seq_visible) AS visible_up_to, ",
            "(SELECT * FROM conversations c \
              WHERE c.id IN (SELECT value FROM json_each($2)) AND c.activity < $3 \
              AND c.our_number IN (SELECT number FROM agent_numbers WHERE agent_id = $1)",
            filtered!("c", "5", "6", "7"),
            "ORDER BY c.activity DESC, c.id DESC LIMIT $4) c"
        ),
        "ORDER BY c.activity DESC, c.id DESC"
    ),
    window: concat!(
        "SELECT c.id, c.activity FROM agent_numbers an CROSS JOIN conversations c \
         WHERE an.agent_id = $1 AND c.id IN (SELECT page.id FROM conversations page \
           WHERE page.our_number = an.number AND page.activity < $2",
        filtered!("page", "4", "5", "6"),
        "ORDER BY page.activity DESC, page.id DESC LIMIT $3) \
         ORDER BY c.activity DESC, c.id DESC LIMIT $3"
    ),
    // One query of the words index per conversation, with its id: a check per message would
    // cost a query per message (ten thousand for a long thread). A text written as a phone
    // number is compared with the conversation's own name and phone (`$6`, `$7`) instead of
    // the trigram index: every phone shares its digits' trigrams with every other (an area
    // code is in all of them), so each lookup of the index by rowid reads through lists as
    // long as the table, and the name, which holds no such trigrams, is no cheaper there
    // since a trigram's list is shared by both columns.
    check: "SELECT w.value AS id FROM json_each($1) w \
        WHERE w.value IN (SELECT value FROM json_each($2)) \
          OR ($3 IS NOT NULL AND EXISTS (SELECT 1 FROM conversations_search \
              WHERE conversations_search MATCH $3 AND rowid = w.value)) \
          OR ($7 IS NOT NULL AND EXISTS (SELECT 1 FROM conversations c WHERE c.id = w.value \
              AND (replace(c.contact_phone, '+', '') LIKE $7 \
                OR ($6 IS NOT NULL AND c.contact_name LIKE $6 ESCAPE '\\')))) \
          OR ($4 IS NOT NULL AND EXISTS (SELECT 1 FROM conversations c \
              WHERE c.id = w.value AND c.contact_name LIKE $4 ESCAPE '\\')) \
          OR ($5 IS NOT NULL AND EXISTS (SELECT 1 FROM messages_search \
              WHERE messages_search MATCH \
                ('conversation_id : ' || w.value || ' AND (' || $5 || ')')))",
    below: concat!(
        conversation_select!("(SELECT up_to FROM seq_visible) AS visible_up_to, "),
        "WHERE c.id IN ( \
           SELECT rowid FROM conversations_search \
             WHERE $4 IS NOT NULL AND conversations_search MATCH $4 \
           UNION SELECT id FROM conversations \
             WHERE $5 IS NOT NULL AND contact_name LIKE $5 ESCAPE '\\' \
           UNION SELECT s.conversation_id FROM messages_search \
             JOIN messages s ON s.id = messages_search.rowid \
             WHERE $6 IS NOT NULL AND messages_search MATCH $6) \
         AND c.activity < $2 AND",
        visible_to!("1"),
        filtered!("c", "7", "8", "9"),
        "ORDER BY c.activity DESC, c.id DESC LIMIT $3"
    ),
};

/// The index words that start with `$1`, in order, at most `$2` (`MAX_PREFIX_WORDS` + 1 in `src/store/search.rs`). Each
/// step seeks the next word past every row of the one before: `term > $x` would walk them.
pub(super) const SQLITE_WORDS_STARTING: &str = "\
    WITH RECURSIVE t (term) AS ( \
      SELECT (SELECT term FROM messages_search_terms WHERE term >= $1 LIMIT 1) \
      UNION ALL SELECT (SELECT term FROM messages_search_terms \
                        WHERE term >= t.term || char(1) LIMIT 1) \
      FROM t WHERE substr(t.term, 1, length($1)) = $1 LIMIT $2) \
    SELECT term FROM t WHERE substr(term, 1, length($1)) = $1";

/// PostgreSQL: about how many messages hold all the words `$1` (folded; the last a prefix
/// when `$2`), from the statistics `ANALYZE` keeps of the most common words of
/// `messages.search` (what the planner reads, which it does not do for a prefix). A word
/// not among them is rare: rarer than any of them.
pub(super) const PG_WORD_ROWS: &str = "\
    SELECT (min(share) * (SELECT reltuples FROM pg_class WHERE oid = 'messages'::regclass))::float8 \
    FROM (SELECT w.n, COALESCE(sum(e.freq), 0) AS share \
      FROM unnest($1::text[]) WITH ORDINALITY AS w (word, n) \
      LEFT JOIN (SELECT e.elem, e.freq FROM pg_stats s, \
          unnest(s.most_common_elems::text::text[], s.most_common_elem_freqs) AS e (elem, freq) \
        WHERE s.schemaname = current_schema() AND s.tablename = 'messages' \
          AND s.attname = 'search') e \
      ON CASE WHEN $2 AND w.n = cardinality($1::text[]) \
              THEN starts_with(e.elem, smsdesk_fold(w.word)) \
              ELSE e.elem = smsdesk_fold(w.word) END \
      GROUP BY w.n) per_word";

/// PostgreSQL: the texts `$1` folded as the indexes were (case and accents), in order.
pub(super) const PG_FOLD: &str =
    "SELECT smsdesk_fold(t) FROM unnest($1::text[]) WITH ORDINALITY AS u (t, n) ORDER BY n";
