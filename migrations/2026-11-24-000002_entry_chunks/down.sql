DROP INDEX idx_entries_path;
DROP INDEX idx_entry_chunks_entry;
DROP TABLE entry_chunks;
