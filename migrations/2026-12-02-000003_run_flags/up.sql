-- The run's stored loop flags (noRepo, noInteraction, noWeb, noProposals,
-- yolo) as JSON: a later loop that omits a flag inherits it from here.
ALTER TABLE runs ADD COLUMN flags TEXT;
