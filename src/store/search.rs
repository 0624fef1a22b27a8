//! Finding an agent's conversations (docs/api.md, "Search"): by the contact's name, the contact's
//! phone, or the words of a message, newest activity first, with the list's cursor.
//!
//! The indexes are the database's own (`migrations/*/0006_search.sql`: trigram and full-text
//! indexes on PostgreSQL, FTS5 tables kept by triggers on SQLite), so no write has to keep
//! them in step. What an index costs to ask depends on how many rows it answers with, so a
//! search first asks how common each of its three parts (name, phone, words) is:
//!
//! 1. a part that at most [`RARE`] rows match is read whole from its index: the
//!    conversations it names are few;
//! 2. when every part is rare, those conversations are the answer: the page is cut from them,
//!    in the list's order;
//! 3. otherwise the agent's next conversations in the list's order (a window of a few pages)
//!    are checked one by one for the common parts, a handful at a time, until the page is
//!    full: a common word is found in most of them, each check stops at its first match;
//! 4. only when the window did not fill the page: every conversation that matches, from the
//!    indexes, below the window.
//!
//! SQLite's FTS5 answers with rows as it finds them, so a part is rare when a query for
//! `RARE + 1` of its rows returns fewer. PostgreSQL's GIN indexes build their whole answer
//! before the first row, so there the planner's estimate, from the statistics `ANALYZE`
//! keeps of every word and trigram, decides.

use std::collections::HashSet;

use super::db::{Pool, on_pool};
use super::rows::{ListedRow, conversation_page};
use super::search_sql::{
    PG_FOLD, PG_WORD_ROWS, POSTGRES, SQLITE, SQLITE_WORDS_STARTING, SearchSql,
};
use super::{ConversationList, ListFilter, Page, Store, StoreResult, View};
use crate::domain::{SearchText, like_literal};
use crate::model::{AgentId, ConversationId};

/// At most this many rows of an index make a part of a search rare.
const RARE: i64 = 2_000;

/// The same for the names and phones of a text written as a phone number on SQLite, which
/// the window checks by `LIKE` ([`Store::phone_check`]) for less than what the trigram index
/// costs to read past this many rows: the digits of an area code are in every phone, and
/// their 2,001 index rows took longer than a whole page found in the window.
const RARE_PHONE: i64 = 200;

/// Conversations in the window per conversation asked for (a page of 50 looks at the next
/// 200), and the window's bounds.
const WINDOW_PER_ROW: i64 = 4;
const WINDOW: (i64, i64) = (8, 800);

/// A message word typed so far is looked for as the words of the index that start with it,
/// when there are at most this many; FTS5 would otherwise gather every row of every such
/// word before it answers.
const MAX_PREFIX_WORDS: usize = 16;

/// The index of the message words among a search's parts.
const WORDS: usize = 2;

fn sql(pool: &Pool) -> &'static SearchSql {
    match pool {
        Pool::Postgres(_) => &POSTGRES,
        Pool::Sqlite(_) => &SQLITE,
    }
}

/// `text` as an FTS5 string: whatever it holds is matched, never read as query syntax.
fn fts_string(text: &str) -> String {
    format!("\"{}\"", text.replace('"', "\"\""))
}

/// Folded words as a `tsquery` that holds all of them, the last as a prefix; `None` for no
/// words. Each word is quoted, its quotes doubled and its backslashes escaped, so whatever
/// it holds is a word to look for, never query syntax.
fn tsquery(folded_words: &[String]) -> Option<String> {
    let (last, whole) = folded_words.split_last()?;
    let quoted = |w: &str| format!("'{}'", w.replace('\\', "\\\\").replace('\'', "''"));
    let mut query: Vec<String> = whole.iter().map(|w| quoted(w)).collect();
    query.push(format!("{}:*", quoted(last)));
    Some(query.join(" & "))
}

/// How common one part of a search is.
enum Part {
    Absent,
    /// Few rows match: the conversations they name.
    Rare(Vec<ConversationId>),
    Common,
}

fn json_ids<'a>(ids: impl IntoIterator<Item = &'a ConversationId>) -> String {
    serde_json::Value::from_iter(ids.into_iter().map(|id| id.get())).to_string()
}

impl Store {
    /// The search's three parts as this backend's statements take them, in order; a part
    /// that cannot match anything is `None`.
    async fn search_terms(&self, search: &SearchText) -> StoreResult<[Option<String>; 3]> {
        let words = search.words();
        Ok(match &self.reader {
            Pool::Postgres(db) => {
                // Folded before they are escaped: folding makes `'`, `\`, `%` and `_` of
                // other letters (modifier apostrophes, fullwidth signs), which must stay text
                // in the pattern and the query too.
                let texts: Vec<&str> = std::iter::once(search.text())
                    .chain(words.iter().map(String::as_str))
                    .collect();
                let folded: Vec<String> = sqlx::query_scalar(PG_FOLD)
                    .bind(texts)
                    .fetch_all(db)
                    .await?;
                let (text, words) = folded.split_first().ok_or(sqlx::Error::RowNotFound)?;
                [
                    Some(like_literal(text)),
                    search.digits().map(str::to_owned),
                    tsquery(words),
                ]
            }
            Pool::Sqlite(db) => {
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
                let words = match words.split_last() {
                    None => None,
                    Some((last, whole)) => {
                        let mut parts: Vec<String> = whole
                            .iter()
                            .map(|w| format!("body : {}", fts_string(w)))
                            .collect();
                        // The index holds words lowercased and without accents; a word typed
                        // in ASCII is that already once lowercased, any other is left to FTS5.
                        let prefix = if last.is_ascii() {
                            let folded = last.to_ascii_lowercase();
                            let found: Vec<String> = sqlx::query_scalar(SQLITE_WORDS_STARTING)
                                .bind(&folded)
                                .bind(MAX_PREFIX_WORDS as i64 + 1)
                                .fetch_all(db)
                                .await?;
                            match found.len() {
                                0 => None,
                                n if n <= MAX_PREFIX_WORDS => {
                                    let any: Vec<String> =
                                        found.iter().map(|w| fts_string(w)).collect();
                                    Some(format!("body : ({})", any.join(" OR ")))
                                }
                                _ => Some(format!("body : {}*", fts_string(last))),
                            }
                        } else {
                            Some(format!("body : {}*", fts_string(last)))
                        };
                        // No word of the index starts with the last: no message matches.
                        prefix.map(|p| {
                            parts.push(p);
                            parts.join(" AND ")
                        })
                    }
                };
                [
                    (!people.is_empty()).then(|| people.join(" OR ")),
                    short.then(|| format!("%{}%", like_literal(search.text()))),
                    words,
                ]
            }
        })
    }

    /// How common `term`, part `index` of `search`, is.
    async fn search_part(
        &self,
        index: usize,
        term: Option<&str>,
        search: &SearchText,
    ) -> StoreResult<Part> {
        let Some(term) = term else {
            return Ok(Part::Absent);
        };
        let Pool::Postgres(db) = &self.reader else {
            let rare = if index == 0 && self.phone_check(search, Some(term)).is_some() {
                RARE_PHONE
            } else {
                RARE
            };
            let ids = self.part_ids(index, term, rare).await?;
            return Ok(if ids.len() as i64 > rare {
                Part::Common
            } else {
                Part::Rare(ids)
            });
        };
        let estimate = if index == WORDS {
            let words = search.words();
            // A prefix of one or two characters starts too many rare words for the
            // statistics to count: it does not make the words rare.
            let (words, prefix) = match words.split_last() {
                Some((last, whole)) if last.chars().count() < 3 => (whole, false),
                _ => (words, true),
            };
            if words.is_empty() {
                return Ok(Part::Common);
            }
            sqlx::query_scalar::<_, Option<f64>>(PG_WORD_ROWS)
                .bind(words)
                .bind(prefix)
                .fetch_one(db)
                .await?
                .unwrap_or(f64::MAX)
        } else {
            let explain = format!("EXPLAIN (FORMAT JSON) {}", POSTGRES.parts[index]);
            let plan: sqlx::types::Json<serde_json::Value> =
                sqlx::query_scalar(sqlx::AssertSqlSafe(explain))
                    .bind(term)
                    .fetch_one(db)
                    .await?;
            plan.0[0]["Plan"]["Plan Rows"].as_f64().unwrap_or(f64::MAX)
        };
        Ok(if estimate > RARE as f64 {
            Part::Common
        } else {
            Part::Rare(self.part_ids(index, term, RARE).await?)
        })
    }

    /// The conversations that part `index` of a search, `term`, names: on SQLite, from at
    /// most `rare + 1` index rows.
    async fn part_ids(
        &self,
        index: usize,
        term: &str,
        rare: i64,
    ) -> StoreResult<Vec<ConversationId>> {
        let statement = sql(&self.reader).parts[index];
        Ok(match &self.reader {
            Pool::Postgres(db) => sqlx::query_scalar(statement).bind(term).fetch_all(db).await,
            Pool::Sqlite(db) => {
                sqlx::query_scalar(statement)
                    .bind(term)
                    .bind(rare + 1)
                    .fetch_all(db)
                    .await
            }
        }?)
    }

    /// A page of `agent`'s conversations in the view `filter` that match `search`, newest
    /// activity first, and the next cursor (the same as the list's).
    #[tracing::instrument(skip_all, err)]
    pub async fn search_conversations(
        &self,
        agent: AgentId,
        search: &SearchText,
        filter: ListFilter,
        page: Page,
    ) -> StoreResult<ConversationList> {
        let sql = sql(&self.reader);
        let view = filter.view();
        let terms = self.search_terms(search).await?;
        let cursor = page.cursor.unwrap_or(i64::MAX);
        // Read before anything else: every change up to it has committed before any part
        // of the search was looked for, so `sync` from it misses nothing the page could not
        // show.
        let sync_from: i64 = on_pool!(&self.reader, |db| {
            sqlx::query_scalar("SELECT up_to FROM seq_visible")
                .fetch_one(db)
                .await
        })?;

        let mut parts = Vec::with_capacity(terms.len());
        for (index, term) in terms.iter().enumerate() {
            parts.push(self.search_part(index, term.as_deref(), search).await?);
        }
        let mut common: [Option<&str>; 3] = [None; 3];
        for (index, part) in parts.iter().enumerate() {
            if let Part::Common = part {
                common[index] = terms[index].as_deref();
            }
        }

        let mut known: HashSet<ConversationId> = HashSet::new();
        for part in parts {
            if let Part::Rare(ids) = part {
                known.extend(ids);
            }
        }
        let known = json_ids(&known);

        let mut rows: Vec<ListedRow>;
        let full;
        if common.iter().all(Option::is_none) {
            rows = self
                .page_of(agent, &known, cursor, page.limit, view)
                .await?;
            full = rows.len() as i64 == page.limit;
        } else {
            let window = (page.limit * WINDOW_PER_ROW).clamp(WINDOW.0, WINDOW.1);
            let window_rows: Vec<(ConversationId, i64)> = on_pool!(&self.reader, |db| {
                sqlx::query_as(sql.window)
                    .bind(agent)
                    .bind(cursor)
                    .bind(window)
                    .bind(view.0)
                    .bind(view.1)
                    .bind(view.2)
                    .fetch_all(db)
                    .await
            })?;
            let ids: Vec<ConversationId> = window_rows.iter().map(|(id, _)| *id).collect();
            let phone_check = self.phone_check(search, common[0]);
            if phone_check.is_some() {
                common[0] = None;
            }
            let (name_like, phone_like) = phone_check.unzip();
            let mut found: Vec<ConversationId> = Vec::new();
            for chunk in ids.chunks(page.limit.max(1) as usize) {
                let wanted = page.limit as usize - found.len();
                let ids = json_ids(chunk);
                macro_rules! check {
                    () => {
                        sqlx::query_scalar(sql.check)
                            .bind(&ids)
                            .bind(&known)
                            .bind(common[0])
                            .bind(common[1])
                            .bind(common[2])
                    };
                }
                let matched: HashSet<ConversationId> = match &self.reader {
                    Pool::Postgres(db) => check!().fetch_all(db).await?,
                    Pool::Sqlite(db) => {
                        check!()
                            .bind(name_like.as_ref().and_then(Option::as_deref))
                            .bind(phone_like.as_deref())
                            .fetch_all(db)
                            .await?
                    }
                }
                .into_iter()
                .collect();
                found.extend(chunk.iter().filter(|id| matched.contains(id)).take(wanted));
                if found.len() as i64 == page.limit {
                    break;
                }
            }
            rows = self
                .page_of(agent, &json_ids(&found), cursor, page.limit, view)
                .await?;
            let wanted = page.limit - rows.len() as i64;
            // A window that was not full held every conversation left: nothing below it.
            let floor = window_rows
                .last()
                .filter(|_| window_rows.len() as i64 == window && wanted > 0)
                .map(|(_, activity)| *activity);
            let mut more_full = wanted == 0;
            if let Some(floor) = floor {
                let more = self.below(agent, floor, wanted, &terms, view).await?;
                more_full = more.len() as i64 == wanted;
                rows.extend(more);
            }
            full = more_full;
        }

        Ok(conversation_page(rows, full, sync_from))
    }

    /// SQLite: for a text written as a phone number whose first part (names and phones) is
    /// common, the `LIKE` patterns the window's conversations are checked with instead of
    /// the trigram index: the name's (`None` for a text shorter than a trigram, which the
    /// second part looks for) and the phone's. The text holds no letter, so the index's
    /// folding of case and accents changes nothing a `LIKE` would see.
    fn phone_check(
        &self,
        search: &SearchText,
        common_people: Option<&str>,
    ) -> Option<(Option<String>, String)> {
        let Pool::Sqlite(_) = self.reader else {
            return None;
        };
        let digits = search.digits()?;
        common_people?;
        let name = (search.text().chars().count() >= 3)
            .then(|| format!("%{}%", like_literal(search.text())));
        Some((name, format!("%{digits}%")))
    }

    /// `agent`'s conversations below `cursor` that match any of `terms`, at most `limit`, in
    /// the list's order, from the indexes.
    async fn below(
        &self,
        agent: AgentId,
        cursor: i64,
        limit: i64,
        terms: &[Option<String>; 3],
        view: View,
    ) -> StoreResult<Vec<ListedRow>> {
        let sql = sql(&self.reader);
        Ok(on_pool!(&self.reader, |db| {
            sqlx::query_as(sql.below)
                .bind(agent)
                .bind(cursor)
                .bind(limit)
                .bind(&terms[0])
                .bind(&terms[1])
                .bind(&terms[2])
                .bind(view.0)
                .bind(view.1)
                .bind(view.2)
                .fetch_all(db)
                .await
        })?)
    }

    /// The conversations `ids` (a JSON array) that `agent` sees, below `cursor`, at most
    /// `limit`, in the list's order.
    async fn page_of(
        &self,
        agent: AgentId,
        ids: &str,
        cursor: i64,
        limit: i64,
        view: View,
    ) -> StoreResult<Vec<ListedRow>> {
        let sql = sql(&self.reader);
        Ok(on_pool!(&self.reader, |db| {
            sqlx::query_as(sql.page_of)
                .bind(agent)
                .bind(ids)
                .bind(cursor)
                .bind(limit)
                .bind(view.0)
                .bind(view.1)
                .bind(view.2)
                .fetch_all(db)
                .await
        })?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fts_strings_hold_any_text_as_data() {
        assert_eq!(fts_string(r#"a "NEAR(b* OR"#), r#""a ""NEAR(b* OR""#);
    }

    #[test]
    fn tsquery_words_are_quoted_whatever_they_hold() {
        let words = |ws: &[&str]| ws.iter().map(|w| w.to_string()).collect::<Vec<_>>();
        assert_eq!(tsquery(&[]), None);
        assert_eq!(tsquery(&words(&["tues"])).unwrap(), "'tues':*");
        assert_eq!(
            tsquery(&words(&["don't", r"a\", "x:*&|!()<->"])).unwrap(),
            r"'don''t' & 'a\\' & 'x:*&|!()<->':*"
        );
    }

    #[test]
    fn ids_travel_as_a_json_array() {
        let ids: Vec<ConversationId> = ["3", "42"].iter().map(|i| i.parse().unwrap()).collect();
        assert_eq!(json_ids(&[]), "[]");
        assert_eq!(json_ids(&ids), "[3,42]");
    }
}
