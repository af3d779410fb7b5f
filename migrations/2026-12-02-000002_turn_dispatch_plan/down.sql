ALTER TABLE turns DROP COLUMN dispatch_plan;
