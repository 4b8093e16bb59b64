-- Inference workers on several machines share the job queue (PostgreSQL); a claim is a lease.
-- A running job is held by `worker` until `lease_until` (unix s), which the holder renews while
-- it works; a job whose lease ran out is claimable again (a worker died), and only its holder
-- may finish it. `outcome` is what a front end needs to answer the sender and the columns do not
-- say (status, reason code, near-duplicate, units, thumbnail), as one JSON object.
ALTER TABLE jobs ADD COLUMN lease_until INTEGER;
ALTER TABLE jobs ADD COLUMN worker TEXT;
ALTER TABLE jobs ADD COLUMN outcome TEXT CHECK (outcome IS NULL OR json_valid(outcome));
-- The OCR work list leases its items the same way.
ALTER TABLE media ADD COLUMN ocr_lease_until INTEGER;
ALTER TABLE media ADD COLUMN ocr_worker TEXT;
-- Claimable = pending (jobs_pending, media_ocr_open) or running with a lease that ran out.
CREATE INDEX jobs_leased ON jobs (lease_until) WHERE state = 'running';
CREATE INDEX media_ocr_leased ON media (ocr_lease_until) WHERE ocr_state = 'running';
