DROP INDEX IF EXISTS idx_run_views_entry;
DROP INDEX IF EXISTS idx_run_views_run_state;
DELETE FROM sqlite_stat1
    WHERE tbl = 'run_views' AND idx IN ('idx_run_views_entry', 'idx_run_views_run_state');
