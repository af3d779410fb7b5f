-- Streamed output is appended here, one row per chunk, and folded into
-- entries.body before the next read, so appending N bytes costs O(N)
-- instead of rewriting the growing body on every chunk.
CREATE TABLE entry_chunks (
	id INTEGER PRIMARY KEY AUTOINCREMENT
	, entry_id INTEGER NOT NULL REFERENCES entries (id) ON DELETE CASCADE
	, chunk TEXT NOT NULL
);
CREATE INDEX idx_entry_chunks_entry ON entry_chunks (entry_id, id);

-- Runs find entries by path through their views; without this index each
-- lookup walks every view of the run.
CREATE INDEX idx_entries_path ON entries (path);
