-- Back to integer ids: string ids have no integer form and become NULL.
CREATE TABLE rpc_log_old (
	id INTEGER PRIMARY KEY AUTOINCREMENT
	, project_id INTEGER REFERENCES projects (id) ON DELETE CASCADE
	, method TEXT NOT NULL
	, rpc_id INTEGER
	, params JSON
	, result JSON
	, error TEXT
	, created_at DATETIME DEFAULT CURRENT_TIMESTAMP
);
INSERT INTO rpc_log_old (id, project_id, method, rpc_id, params, result, error, created_at)
SELECT id, project_id, method
	, CASE WHEN CAST(CAST(rpc_id AS INTEGER) AS TEXT) = rpc_id THEN CAST(rpc_id AS INTEGER) END
	, params, result, error, created_at
FROM rpc_log;
DROP TABLE rpc_log;
ALTER TABLE rpc_log_old RENAME TO rpc_log;
CREATE INDEX idx_rpc_log_project ON rpc_log (project_id);
CREATE INDEX idx_rpc_log_method ON rpc_log (method);
