-- A turn_context row now stands for every turn from `turn` to `until_turn`
-- (NULL: still in the run's latest materialization), so a turn writes only
-- the rows that changed instead of its whole context again.
--   sort_key: the row's place in the packet (category rank, skill, visibility,
--             view turn, view updated_at, view id), stable while the row is
--             unchanged; a turn's rows are read in sort_key order.
--   tokens:   count_tokens of the body, for the context distribution.
--   digest:   hash of the row's content, to tell unchanged rows.
ALTER TABLE turn_context ADD COLUMN until_turn INTEGER;
ALTER TABLE turn_context ADD COLUMN sort_key TEXT NOT NULL DEFAULT '';
ALTER TABLE turn_context ADD COLUMN tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE turn_context ADD COLUMN digest INTEGER NOT NULL DEFAULT 0;
-- Rows written before this migration belong to their own turn only.
UPDATE turn_context SET until_turn = turn, sort_key = printf('%012d', ordinal);
CREATE INDEX idx_turn_context_open ON turn_context (run_id, until_turn);
