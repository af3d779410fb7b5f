DROP TRIGGER IF EXISTS trg_entries_path_rename;
DROP TRIGGER IF EXISTS trg_run_views_path_repoint;
DROP TRIGGER IF EXISTS trg_run_views_path_insert;
DROP INDEX IF EXISTS idx_run_views_run_path;
DELETE FROM sqlite_stat1 WHERE tbl = 'run_views' AND idx = 'idx_run_views_run_path';
ALTER TABLE run_views DROP COLUMN path;
