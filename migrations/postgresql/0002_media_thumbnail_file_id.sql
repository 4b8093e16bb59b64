ALTER TABLE media ADD COLUMN thumbnail_file_id TEXT;
