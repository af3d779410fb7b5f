DROP INDEX IF EXISTS idx_run_views_entry;
DELETE FROM sqlite_stat1 WHERE tbl = 'run_views' AND idx = 'idx_run_views_entry';
