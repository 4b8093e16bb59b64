-- As ../0006_ocr.sql.
ALTER TABLE media ADD COLUMN ocr_state TEXT NOT NULL DEFAULT 'pending'
    CHECK (ocr_state IN ('pending', 'running', 'done', 'failed', 'skipped'));
ALTER TABLE media ADD COLUMN ocr_attempts BIGINT NOT NULL DEFAULT 0;
ALTER TABLE media ADD COLUMN ocr_error TEXT;
CREATE INDEX media_ocr_open ON media (owner_id, id) WHERE ocr_state IN ('pending', 'running');
