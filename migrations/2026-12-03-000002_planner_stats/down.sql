DELETE FROM sqlite_stat1 WHERE tbl IN ('entries', 'run_views', 'turn_context');
