-- Finding the views of one entry (the run-view change log's trigger on
-- entry updates, and ON DELETE CASCADE from entries) walked every view of
-- every run; an index on entry_id makes it a lookup.
CREATE INDEX idx_run_views_entry ON run_views (entry_id);
-- A run's pending proposals, asked for after every dispatched command,
-- were found by reading every view of the run.
CREATE INDEX idx_run_views_run_state ON run_views (run_id, state);
DELETE FROM sqlite_stat1
    WHERE tbl = 'run_views' AND idx IN ('idx_run_views_entry', 'idx_run_views_run_state');
INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES
    ('run_views', 'idx_run_views_entry', '100000 2'),
    ('run_views', 'idx_run_views_run_state', '100000 500 100');
