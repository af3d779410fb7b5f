-- The log paths RECORD allocated for a turn's commands, in dispatch order
-- (JSON array). A turn interrupted while waiting on a proposal resumes
-- from it after a restart.
ALTER TABLE turns ADD COLUMN dispatch_plan TEXT;
