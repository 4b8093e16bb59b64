-- As ../0010_owed_answers.sql.
ALTER TABLE jobs ADD COLUMN front TEXT;
ALTER TABLE jobs ADD COLUMN front_embeds INTEGER NOT NULL DEFAULT 0
    CHECK (front_embeds IN (0, 1));
CREATE INDEX jobs_owed ON jobs (front) WHERE front IS NOT NULL;
