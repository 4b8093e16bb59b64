-- Text read off the pictures (OCR) is a durable background stage after embedding. Its state
-- lives on the item itself: every item, new ones and those stored before this migration, starts
-- 'pending' without any code in the commit path, and the OCR stage finds it through the partial
-- index below. 'running' rows left by a stopped process go back to 'pending' at start-up.
-- A failure is recorded here (attempts, error) and never touches the saved item.
ALTER TABLE media ADD COLUMN ocr_state TEXT NOT NULL DEFAULT 'pending'
    CHECK (ocr_state IN ('pending', 'running', 'done', 'failed', 'skipped'));
ALTER TABLE media ADD COLUMN ocr_attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE media ADD COLUMN ocr_error TEXT;
-- Spans owners on purpose, like the job queue: only the cross-owner claim reads it, and
-- owner_id leads so the round-robin window partitions along the index.
CREATE INDEX media_ocr_open ON media (owner_id, id) WHERE ocr_state IN ('pending', 'running');
