//! Finding an agent's conversations (contract §11): by the contact's name, the contact's
//! phone, or the words of a message, newest activity first, with the list's cursor.
//!
//! The indexes are the database's own (`migrations/*/0006_search.sql`: trigram and full-text
//! indexes on PostgreSQL, FTS5 tables kept by triggers on SQLite), so no write has to keep
//! them in step. A search reads in two steps, so that neither a common word nor a rare one
//! costs a scan of everything:
//!
//! 1. the agent's next conversations in the list's order (a window of a few pages), each
//!    checked on its own: a word found in most messages fills a page here;
//! 2. only when the window did not fill the page: every conversation that matches, from the
//!    indexes, below the window, sorted by activity: a rare word has few of them.

use super::db::{Pool, on_pool};
use super::rows::{ListedRow, conversation_select, visible_to};
use super::{ConversationList, Page, Store, StoreResult};
use crate::domain::{SearchText, like_literal};
use crate::model::Id;

/// Conversations in the window per conversation asked for (a page of 50 looks at the next
/// 200), and the window's bounds.
const WINDOW_PER_ROW: i64 = 4;
const WINDOW: (i64, i64) = (8, 800);

/// The statements of one backend. Both take the agent as `$1` and the cursor as `$2`; the
/// window step then the window's size `$3` and the page size `$4`, the index step the page
/// size `$3`; the search terms ([`terms`]) follow.
struct SearchSql {
    in_window: &'static str,
    below: &'static str,
}

/// The agent's next `$3` conversations below `$2`, as the list reads them.
macro_rules! pg_window {
    () => {
        "WITH win AS MATERIALIZED (SELECT page.* FROM agent_numbers an CROSS JOIN LATERAL \
           (SELECT * FROM conversations c WHERE c.our_number = an.number AND c.activity < $2 \
            ORDER BY c.activity DESC, c.id DESC LIMIT $3) page \
         WHERE an.agent_id = $1 ORDER BY page.activity DESC, page.id DESC LIMIT $3) "
    };
}

macro_rules! sqlite_window {
    () => {
        "WITH win AS MATERIALIZED (SELECT c.* FROM agent_numbers an CROSS JOIN conversations c \
         WHERE an.agent_id = $1 AND c.id IN (SELECT page.id FROM conversations page \
           WHERE page.our_number = an.number AND page.activity < $2 \
           ORDER BY page.activity DESC, page.id DESC LIMIT $3) \
         ORDER BY c.activity DESC, c.id DESC LIMIT $3) "
    };
}

/// A window row: a conversation, and how far `sync` could see and what the window held.
macro_rules! window_select {
    () => {
        conversation_select!(
            "(SELECT up_to FROM seq_visible) AS visible_up_to, \
             (SELECT count(*) FROM win) AS window_rows, \
             (SELECT min(activity) FROM win) AS window_floor, ",
            "win c"
        )
    };
}

/// PostgreSQL: the name (folded) contains the text, the phone the digits, or a message all
/// the words (a `tsquery`), terms `$5`–`$7`; `to_tsquery` only reads what Rust built from
/// words of letters and digits, each quoted.
const POSTGRES: SearchSql = SearchSql {
    in_window: concat!(
        pg_window!(),
        window_select!(),
        "WHERE smsdesk_fold(c.contact_name) LIKE ('%' || smsdesk_fold($5::text) || '%') \
            OR replace(c.contact_phone, '+', '') LIKE ('%' || $6::text || '%') \
            OR ($7::text IS NOT NULL AND EXISTS (SELECT 1 FROM messages s \
                WHERE s.conversation_id = c.id \
                AND s.search @@ to_tsquery('simple', smsdesk_fold($7::text)))) \
         ORDER BY c.activity DESC, c.id DESC LIMIT $4"
    ),
    below: concat!(
        conversation_select!("(SELECT up_to FROM seq_visible) AS visible_up_to, "),
        "WHERE c.id IN ( \
           SELECT id FROM conversations \
             WHERE smsdesk_fold(contact_name) LIKE ('%' || smsdesk_fold($4::text) || '%') \
           UNION SELECT id FROM conversations \
             WHERE replace(contact_phone, '+', '') LIKE ('%' || $5::text || '%') \
           UNION SELECT conversation_id FROM messages \
             WHERE search @@ to_tsquery('simple', smsdesk_fold($6::text))) \
         AND c.activity < $2 AND",
        visible_to!("1"),
        "ORDER BY c.activity DESC, c.id DESC LIMIT $3"
    ),
};

/// SQLite: an FTS5 expression over the name and phone trigrams, a `LIKE` pattern for a
/// name shorter than a trigram, and an FTS5 expression over message words, terms `$5`–`$7`.
/// A term left out is `NULL`, tested before the FTS5 table is asked. A conversation of the
/// window is checked by one query of the words index with its id (a check per message
/// would cost a query per message: ten thousand for a long thread).
const SQLITE: SearchSql = SearchSql {
    in_window: concat!(
        sqlite_window!(),
        window_select!(),
        "WHERE ($5 IS NOT NULL AND EXISTS (SELECT 1 FROM conversations_search \
                WHERE conversations_search MATCH $5 AND rowid = c.id)) \
            OR c.contact_name LIKE $6 ESCAPE '\\' \
            OR ($7 IS NOT NULL AND EXISTS (SELECT 1 FROM messages_search \
                WHERE messages_search MATCH \
                  ('conversation_id : ' || c.id || ' AND (' || $7 || ')'))) \
         ORDER BY c.activity DESC, c.id DESC LIMIT $4"
    ),
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
        "ORDER BY c.activity DESC, c.id DESC LIMIT $3"
    ),
};

/// A row of the window step: a match, and what the window held.
#[derive(sqlx::FromRow)]
struct WindowRow {
    #[sqlx(flatten)]
    listed: ListedRow,
    window_rows: i64,
    window_floor: Option<i64>,
}

fn sql(pool: &Pool) -> &'static SearchSql {
    match pool {
        Pool::Postgres(_) => &POSTGRES,
        Pool::Sqlite(_) => &SQLITE,
    }
}

/// The search terms as `pool`'s statements take them, in order.
fn terms(pool: &Pool, search: &SearchText) -> [Option<String>; 3] {
    let words = search.words();
    match pool {
        Pool::Postgres(_) => [
            Some(like_literal(search.text())),
            search.digits().map(str::to_owned),
            (!words.is_empty()).then(|| {
                let mut query: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
                if let Some(last) = query.last_mut() {
                    last.push_str(":*");
                }
                query.join(" & ")
            }),
        ],
        Pool::Sqlite(_) => {
            // Trigrams find substrings of three characters or more; a shorter name is
            // compared as it is (SQLite's LIKE folds ASCII letters only).
            let short = search.text().chars().count() < 3;
            let mut people = Vec::new();
            if !short {
                people.push(format!("name : {}", fts_string(search.text())));
            }
            if let Some(digits) = search.digits() {
                people.push(format!("phone : {}", fts_string(digits)));
            }
            [
                (!people.is_empty()).then(|| people.join(" OR ")),
                short.then(|| format!("%{}%", like_literal(search.text()))),
                (!words.is_empty()).then(|| {
                    let phrases: Vec<String> = words
                        .iter()
                        .map(|w| format!("body : {}", fts_string(w)))
                        .collect();
                    format!("{}*", phrases.join(" AND "))
                }),
            ]
        }
    }
}

/// `text` as an FTS5 string: whatever it holds is matched, never read as query syntax.
fn fts_string(text: &str) -> String {
    format!("\"{}\"", text.replace('"', "\"\""))
}

impl Store {
    /// A page of `agent`'s conversations that match `search`, newest activity first, and the
    /// next cursor (the same as the list's).
    pub async fn search_conversations(
        &self,
        agent: Id,
        search: &SearchText,
        page: Page,
    ) -> StoreResult<ConversationList> {
        let sql = sql(&self.reader);
        let [t1, t2, t3] = terms(&self.reader, search);
        let cursor = page.cursor.unwrap_or(i64::MAX);
        let window = (page.limit * WINDOW_PER_ROW).clamp(WINDOW.0, WINDOW.1);
        let found: Vec<WindowRow> = on_pool!(&self.reader, |db| {
            sqlx::query_as(sql.in_window)
                .bind(agent.0)
                .bind(cursor)
                .bind(window)
                .bind(page.limit)
                .bind(&t1)
                .bind(&t2)
                .bind(&t3)
                .fetch_all(db)
                .await
        })?;
        let below_window = match found.first() {
            // The window held every conversation left: nothing below it.
            Some(first) if first.window_rows < window => None,
            Some(first) => first.window_floor,
            None => Some(cursor),
        };
        let mut rows: Vec<ListedRow> = found.into_iter().map(|r| r.listed).collect();
        let wanted = page.limit - rows.len() as i64;
        let mut full = wanted == 0;
        if let Some(floor) = below_window.filter(|_| wanted > 0) {
            let more: Vec<ListedRow> = on_pool!(&self.reader, |db| {
                sqlx::query_as(sql.below)
                    .bind(agent.0)
                    .bind(floor)
                    .bind(wanted)
                    .bind(&t1)
                    .bind(&t2)
                    .bind(&t3)
                    .fetch_all(db)
                    .await
            })?;
            full = more.len() as i64 == wanted;
            rows.extend(more);
        }
        let sync_from = rows.first().map_or(0, |r| r.visible_up_to);
        let mut next = None;
        let conversations = rows
            .into_iter()
            .map(|r| {
                let (c, activity) = r.row.into_conversation();
                next = Some(activity);
                c
            })
            .collect();
        Ok(ConversationList {
            conversations,
            next: next.filter(|_| full),
            sync_from,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fts_strings_hold_any_text_as_data() {
        assert_eq!(fts_string(r#"a "NEAR(b* OR"#), r#""a ""NEAR(b* OR""#);
    }
}
