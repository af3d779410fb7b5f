-- JSON-RPC ids may be strings; rpc_id now holds the id as JSON text
-- (7 -> '7', "a" -> '"a"'), so numbers and strings stay apart. SQLite
-- cannot change a column's type in place: the table is rebuilt and the
-- existing (integer) ids are carried over as their JSON text.
CREATE TABLE rpc_log_new (
	id INTEGER PRIMARY KEY AUTOINCREMENT
	, project_id INTEGER REFERENCES projects (id) ON DELETE CASCADE
	, method TEXT NOT NULL
	, rpc_id TEXT
	, params JSON
	, result JSON
	, error TEXT
	, created_at DATETIME DEFAULT CURRENT_TIMESTAMP
);
INSERT INTO rpc_log_new (id, project_id, method, rpc_id, params, result, error, created_at)
SELECT id, project_id, method, CAST(rpc_id AS TEXT), params, result, error, created_at
FROM rpc_log;
DROP TABLE rpc_log;
ALTER TABLE rpc_log_new RENAME TO rpc_log;
CREATE INDEX idx_rpc_log_project ON rpc_log (project_id);
CREATE INDEX idx_rpc_log_method ON rpc_log (method);
