-- As ../0008_job_leases.sql.
ALTER TABLE jobs ADD COLUMN lease_until BIGINT;
ALTER TABLE jobs ADD COLUMN worker TEXT;
ALTER TABLE jobs ADD COLUMN outcome TEXT
    CHECK (outcome IS NULL OR CAST(outcome AS jsonb) IS NOT NULL);
ALTER TABLE media ADD COLUMN ocr_lease_until BIGINT;
ALTER TABLE media ADD COLUMN ocr_worker TEXT;
CREATE INDEX jobs_leased ON jobs (lease_until) WHERE state = 'running';
CREATE INDEX media_ocr_leased ON media (ocr_lease_until) WHERE ocr_state = 'running';
