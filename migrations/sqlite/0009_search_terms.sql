-- The words of the message index, in order, one row per place a word occurs: a search looks
-- up the few words that start with the word being typed and asks the index for those, since
-- FTS5 answers a prefix query only after it has gathered every row of every such word.
CREATE VIRTUAL TABLE messages_search_terms USING fts5vocab(messages_search, 'instance');
