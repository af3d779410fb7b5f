DROP INDEX idx_turn_context_open;
ALTER TABLE turn_context DROP COLUMN digest;
ALTER TABLE turn_context DROP COLUMN tokens;
ALTER TABLE turn_context DROP COLUMN sort_key;
ALTER TABLE turn_context DROP COLUMN until_turn;
