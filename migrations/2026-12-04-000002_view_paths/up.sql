-- A run's view of a path was found through every entry with that path in
-- any scope. Paths like `system://1` or `known://note_1` exist once per run,
-- so every write's lookup grew with the number of runs in the database.
-- A view now carries its entry's path, kept by triggers whichever statement
-- inserts or repoints the view or renames the entry, and (run_id, path) is
-- indexed: the run's view of a path is one index probe.
ALTER TABLE run_views ADD COLUMN path TEXT;
UPDATE run_views SET path = (SELECT path FROM entries WHERE entries.id = run_views.entry_id);
CREATE INDEX idx_run_views_run_path ON run_views (run_id, path);

-- Statements that know the path insert it; the trigger fills in the rest.
CREATE TRIGGER trg_run_views_path_insert AFTER INSERT ON run_views
WHEN NEW.path IS NOT (SELECT path FROM entries WHERE id = NEW.entry_id)
BEGIN
    UPDATE run_views SET path = (SELECT path FROM entries WHERE id = NEW.entry_id)
    WHERE id = NEW.id;
END;

CREATE TRIGGER trg_run_views_path_repoint AFTER UPDATE OF entry_id ON run_views
WHEN NEW.entry_id IS NOT OLD.entry_id
BEGIN
    UPDATE run_views SET path = (SELECT path FROM entries WHERE id = NEW.entry_id)
    WHERE id = NEW.id;
END;

CREATE TRIGGER trg_entries_path_rename AFTER UPDATE OF path ON entries
WHEN NEW.path IS NOT OLD.path
BEGIN
    UPDATE run_views SET path = NEW.path WHERE entry_id = NEW.id;
END;

DELETE FROM sqlite_stat1 WHERE tbl = 'run_views' AND idx = 'idx_run_views_run_path';
INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES
    ('run_views', 'idx_run_views_run_path', '100000 500 1');
