-- A front end whose jobs inference workers run owes the sender an answer for each job it
-- queued: `front` names it (its `Database.worker` id) until the answer is out, then it is NULL.
-- When a front end dies, another one takes its owed jobs over and answers them, so a saved item
-- is always reported. NULL for jobs of the one-process shape, whose pipeline answers itself.
-- `front_embeds` = 1: that front end embeds the job itself (INGEST_REMOTE=false), so workers
-- leave it alone; its own pipeline would otherwise wait for it forever.
ALTER TABLE jobs ADD COLUMN front TEXT;
ALTER TABLE jobs ADD COLUMN front_embeds INTEGER NOT NULL DEFAULT 0
    CHECK (front_embeds IN (0, 1));
CREATE INDEX jobs_owed ON jobs (front) WHERE front IS NOT NULL;
