-- Reverts the initial schema: views and the trigger first, then tables,
-- children before parents so no foreign key is left dangling mid-way.
DROP VIEW v_run_log;
DROP VIEW v_model_context;
DROP VIEW v_unresolved;
DROP VIEW known_entries;
DROP TRIGGER trg_run_state_transition;
DROP TABLE rpc_log;
DROP TABLE turn_context;
DROP TABLE run_views;
DROP TABLE entries;
DROP TABLE file_constraints;
DROP TABLE turns;
DROP TABLE loops;
DROP TABLE runs;
DROP TABLE models;
DROP TABLE projects;
DROP TABLE schemes;
