-- Near-duplicates found at ingest, for /duplicates: the new item (media_id) looked like one the
-- owner already had (duplicate_of) with cosine similarity `score`. Both items stay until the
-- owner deletes one; `dismissed` = the owner kept both and does not want to see the pair again.
-- A pair goes with either of its items (both foreign keys cascade), so it never names an item
-- that is gone.
CREATE TABLE near_duplicates (
    owner_id     INTEGER NOT NULL,
    media_id     INTEGER NOT NULL,
    duplicate_of INTEGER NOT NULL,
    score        REAL    NOT NULL CHECK (score >= -1 AND score <= 1),
    created_at   INTEGER NOT NULL,
    dismissed    INTEGER NOT NULL DEFAULT 0 CHECK (dismissed IN (0, 1)),
    PRIMARY KEY (owner_id, media_id, duplicate_of),
    CHECK (media_id != duplicate_of),
    FOREIGN KEY (owner_id, media_id) REFERENCES media (owner_id, id) ON DELETE CASCADE,
    FOREIGN KEY (owner_id, duplicate_of) REFERENCES media (owner_id, id) ON DELETE CASCADE
) WITHOUT ROWID;
-- The cascade from the older item of a pair looks pairs up by duplicate_of.
CREATE INDEX near_duplicates_of ON near_duplicates (owner_id, duplicate_of);
