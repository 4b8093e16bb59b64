-- The text index: words of captions, file names, forward origins and recognised text, searchable
-- per owner. Raw texts live in media_texts; the full-text index holds their Snowball stems
-- (computed in Python, storage/text_terms.py), one row per item with a column per source.

-- An image document's or local file's name, and when the picture was taken (unix seconds: EXIF
-- capture time, or a forward's original post date), when known.
ALTER TABLE media ADD COLUMN file_name TEXT;
ALTER TABLE media ADD COLUMN taken_at INTEGER;

CREATE TABLE media_texts (
    owner_id INTEGER NOT NULL,
    media_id INTEGER NOT NULL,
    source   TEXT    NOT NULL CHECK (source IN ('caption', 'file_name', 'origin', 'ocr')),
    text     TEXT    NOT NULL,
    PRIMARY KEY (owner_id, media_id, source),
    FOREIGN KEY (owner_id, media_id) REFERENCES media (owner_id, id) ON DELETE CASCADE
) WITHOUT ROWID;

-- rowid = media.id (ids are unique across owners). ``owner`` holds the owner id as its only
-- token: every lookup matches it and checks it again by equality, and the other columns are
-- matched only under a column filter, so a query word can never hit the owner column.
CREATE VIRTUAL TABLE media_text_index USING fts5 (
    owner, caption, file_name, origin, ocr,
    tokenize = 'unicode61'
);

-- The index row goes with its item, whichever way the item goes (one, many, all, the owner).
CREATE TRIGGER media_text_index_gone AFTER DELETE ON media BEGIN
    DELETE FROM media_text_index WHERE rowid = old.id;
END;

-- Items stored before this migration: their raw texts are copied here; their stems are written
-- by storage/text_backfill.py at the next open (stemming is Python), which empties this list in
-- batches, so an interrupted backfill resumes and a finished one costs one empty read.
CREATE TABLE media_text_backlog (
    owner_id INTEGER NOT NULL,
    media_id INTEGER NOT NULL,
    PRIMARY KEY (owner_id, media_id),
    FOREIGN KEY (owner_id, media_id) REFERENCES media (owner_id, id) ON DELETE CASCADE
) WITHOUT ROWID;

INSERT INTO media_texts (owner_id, media_id, source, text)
SELECT owner_id, id, 'caption', caption FROM media
WHERE caption IS NOT NULL AND trim(caption, char(9, 10, 13, 32)) <> '';

INSERT INTO media_texts (owner_id, media_id, source, text)
SELECT owner_id, id, 'origin', forward_origin FROM media
WHERE forward_origin IS NOT NULL AND trim(forward_origin, char(9, 10, 13, 32)) <> '';

INSERT INTO media_text_backlog (owner_id, media_id)
SELECT DISTINCT owner_id, media_id FROM media_texts;
