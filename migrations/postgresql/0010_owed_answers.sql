-- As ../0010_owed_answers.sql.
ALTER TABLE jobs ADD COLUMN front TEXT;
CREATE INDEX jobs_owed ON jobs (front) WHERE front IS NOT NULL;
