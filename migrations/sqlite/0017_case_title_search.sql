-- A title search on a run page reads an index, not every case of the project: the
-- cases' titles in an FTS5 table with the trigram tokenizer, which answers
-- case-insensitive `LIKE '%…%'` of three characters or more from its index. Its rows
-- are keyed by `case_title_rows` (stable integers: the cases table has no INTEGER
-- PRIMARY KEY, and VACUUM may renumber an implicit rowid), kept by the triggers below
-- on every insert, rename and delete of a case (a project's deletion cascades to them).
CREATE TABLE case_title_rows (
    row_id  INTEGER PRIMARY KEY,
    case_id TEXT NOT NULL UNIQUE
);
-- detail=column: LIKE needs no token positions; fewer merges while an import adds cases.
CREATE VIRTUAL TABLE case_titles USING fts5(title, tokenize = 'trigram', detail = column);
INSERT INTO case_titles (case_titles, rank) VALUES ('automerge', 16);

INSERT INTO case_title_rows (case_id) SELECT id FROM cases ORDER BY id;
INSERT INTO case_titles (rowid, title)
    SELECT m.row_id, c.title FROM case_title_rows m JOIN cases c ON c.id = m.case_id;

CREATE TRIGGER case_titles_insert AFTER INSERT ON cases BEGIN
    INSERT INTO case_title_rows (case_id) VALUES (new.id);
    INSERT INTO case_titles (rowid, title) VALUES (last_insert_rowid(), new.title);
END;
CREATE TRIGGER case_titles_rename AFTER UPDATE OF title ON cases WHEN new.title <> old.title BEGIN
    UPDATE case_titles SET title = new.title
        WHERE rowid = (SELECT row_id FROM case_title_rows WHERE case_id = new.id);
END;
CREATE TRIGGER case_titles_delete AFTER DELETE ON cases BEGIN
    DELETE FROM case_titles WHERE rowid = (SELECT row_id FROM case_title_rows WHERE case_id = old.id);
    DELETE FROM case_title_rows WHERE case_id = old.id;
END;
