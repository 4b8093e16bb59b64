-- A video indexed from its thumbnail only keeps the thumbnail's file id, so a background
-- re-embedding (model change) can fetch it again.
ALTER TABLE media ADD COLUMN thumbnail_file_id TEXT;
