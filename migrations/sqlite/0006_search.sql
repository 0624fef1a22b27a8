-- Search (contract §11), kept in step by triggers: every write that stores a name, a phone or
-- a message updates these FTS5 tables in its own transaction, whichever code path wrote it.

-- Message words, case- and accent-folded (unicode61), over the messages table itself.
CREATE VIRTUAL TABLE messages_search USING fts5(
    body, content = 'messages', content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 2'
);
INSERT INTO messages_search (messages_search) VALUES ('rebuild');

CREATE TRIGGER messages_search_insert AFTER INSERT ON messages BEGIN
    INSERT INTO messages_search (rowid, body) VALUES (new.id, new.body);
END;
CREATE TRIGGER messages_search_delete AFTER DELETE ON messages BEGIN
    INSERT INTO messages_search (messages_search, rowid, body) VALUES ('delete', old.id, old.body);
END;
CREATE TRIGGER messages_search_update AFTER UPDATE OF body ON messages BEGIN
    INSERT INTO messages_search (messages_search, rowid, body) VALUES ('delete', old.id, old.body);
    INSERT INTO messages_search (rowid, body) VALUES (new.id, new.body);
END;

-- Contact names and phones (without the '+'), as trigrams, case- and accent-folded: a
-- substring of three characters or more is found through the index. The rowid is the
-- conversation's id.
CREATE VIRTUAL TABLE conversations_search USING fts5(
    name, phone, tokenize = 'trigram remove_diacritics 1'
);
INSERT INTO conversations_search (rowid, name, phone)
    SELECT id, contact_name, replace(contact_phone, '+', '') FROM conversations;

CREATE TRIGGER conversations_search_insert AFTER INSERT ON conversations BEGIN
    INSERT INTO conversations_search (rowid, name, phone)
        VALUES (new.id, new.contact_name, replace(new.contact_phone, '+', ''));
END;
CREATE TRIGGER conversations_search_update AFTER UPDATE OF contact_name, contact_phone
    ON conversations BEGIN
    UPDATE conversations_search
        SET name = new.contact_name, phone = replace(new.contact_phone, '+', '')
        WHERE rowid = new.id;
END;
CREATE TRIGGER conversations_search_delete AFTER DELETE ON conversations BEGIN
    DELETE FROM conversations_search WHERE rowid = old.id;
END;
