-- Planner statistics (SQLite's documented sqlite_stat1 technique). Without
-- them the planner cannot tell that a path names one entry while a run has
-- hundreds of views, and answers "the run's view of this path" by walking
-- every view of the run: each write then cost time in proportion to the
-- run's length. The figures describe the shape, not the size: a path is
-- in about two scopes, a run has many views, a turn few. A later ANALYZE
-- replaces them with measured ones.
ANALYZE sqlite_schema;
DELETE FROM sqlite_stat1 WHERE tbl IN ('entries', 'run_views', 'turn_context');
INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES
    ('entries', 'idx_entries_path', '100000 2'),
    ('entries', 'idx_entries_scope_path', '100000 1000 1'),
    ('entries', 'idx_entries_scope_scheme', '100000 1000 100'),
    ('run_views', 'idx_run_views_run_entry', '100000 500 1'),
    ('run_views', 'idx_run_views_run_turn', '100000 500 5'),
    ('run_views', 'idx_run_views_run_visibility', '100000 500 200'),
    ('turn_context', 'idx_turn_context_run_turn', '100000 1000 10'),
    ('turn_context', 'idx_turn_context_open', '100000 1000 300');
