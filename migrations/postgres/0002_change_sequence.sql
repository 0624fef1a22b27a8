-- seq from a sequence instead of the counter row: taking the row locked it until commit and
-- serialised every write. Writes may now commit out of seq order; the server's watermark
-- keeps sync from showing a change while a lower seq can still appear.
CREATE SEQUENCE change_seq;
SELECT setval('change_seq', (SELECT seq + 1 FROM change_counter WHERE id = 1), false);
DROP TABLE change_counter;
