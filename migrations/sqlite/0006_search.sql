-- Search (contract §11), kept in step by triggers: every write that stores a name, a phone or
-- a message updates these FTS5 tables in its own transaction, whichever code path wrote it.

-- Message words, case- and accent-folded (unicode61), over the messages table itself. The
-- conversation's id is indexed too, so that one conversation's messages are checked by one
-- query of the index (`conversation_id : "7" AND body : …`), however many messages it has.
CREATE VIRTUAL TABLE messages_search USING fts5(
    body, conversation_id, content = 'messages', content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 2'
);
INSERT INTO messages_search (messages_search) VALUES ('rebuild');

CREATE TRIGGER messages_search_insert AFTER INSERT ON messages BEGIN
    INSERT INTO messages_search (rowid, body, conversation_id)
        VALUES (new.id, new.body, new.conversation_id);
END;
CREATE TRIGGER messages_search_delete AFTER DELETE ON messages BEGIN
    INSERT INTO messages_search (messages_search, rowid, body, conversation_id)
        VALUES ('delete', old.id, old.body, old.conversation_id);
END;
CREATE TRIGGER messages_search_update AFTER UPDATE OF body, conversation_id ON messages BEGIN
    INSERT INTO messages_search (messages_search, rowid, body, conversation_id)
        VALUES ('delete', old.id, old.body, old.conversation_id);
    INSERT INTO messages_search (rowid, body, conversation_id)
        VALUES (new.id, new.body, new.conversation_id);
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
