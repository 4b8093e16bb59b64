-- The text index, for PostgreSQL: as ../0005_text_index.sql, with a tsvector in place of FTS5.
-- The stems are the same (computed in Python, storage/text_terms.py) and stored as text, one
-- column per source; ``words`` holds them all under the 'simple' configuration (no second
-- stemming), each source with its own weight letter (A caption, B file_name, C origin, D ocr:
-- a phrase is matched at one letter, so it never spans two sources), behind a GIN index. The
-- owner is a real column, matched by equality in every lookup, and the row goes with its item
-- through the foreign key (SQLite needs a trigger for its FTS5 table).

ALTER TABLE media ADD COLUMN file_name TEXT;
ALTER TABLE media ADD COLUMN taken_at BIGINT;

CREATE TABLE media_texts (
    owner_id BIGINT NOT NULL,
    media_id BIGINT NOT NULL,
    source   TEXT   NOT NULL CHECK (source IN ('caption', 'file_name', 'origin', 'ocr')),
    text     TEXT   NOT NULL,
    PRIMARY KEY (owner_id, media_id, source),
    FOREIGN KEY (owner_id, media_id) REFERENCES media (owner_id, id) ON DELETE CASCADE
);

CREATE TABLE media_text_index (
    owner_id  BIGINT NOT NULL,
    media_id  BIGINT NOT NULL,
    caption   TEXT   NOT NULL DEFAULT '',
    file_name TEXT   NOT NULL DEFAULT '',
    origin    TEXT   NOT NULL DEFAULT '',
    ocr       TEXT   NOT NULL DEFAULT '',
    words     tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('simple', caption), 'A')
        || setweight(to_tsvector('simple', file_name), 'B')
        || setweight(to_tsvector('simple', origin), 'C')
        || setweight(to_tsvector('simple', ocr), 'D')
    ) STORED,
    PRIMARY KEY (owner_id, media_id),
    FOREIGN KEY (owner_id, media_id) REFERENCES media (owner_id, id) ON DELETE CASCADE
);
CREATE INDEX media_text_index_words ON media_text_index USING gin (words);

CREATE TABLE media_text_backlog (
    owner_id BIGINT NOT NULL,
    media_id BIGINT NOT NULL,
    PRIMARY KEY (owner_id, media_id),
    FOREIGN KEY (owner_id, media_id) REFERENCES media (owner_id, id) ON DELETE CASCADE
);

INSERT INTO media_texts (owner_id, media_id, source, text)
SELECT owner_id, id, 'caption', caption FROM media
WHERE caption IS NOT NULL AND btrim(caption, E'\t\n\r ') <> '';

INSERT INTO media_texts (owner_id, media_id, source, text)
SELECT owner_id, id, 'origin', forward_origin FROM media
WHERE forward_origin IS NOT NULL AND btrim(forward_origin, E'\t\n\r ') <> '';

INSERT INTO media_text_backlog (owner_id, media_id)
SELECT DISTINCT owner_id, media_id FROM media_texts;

-- SQLite's connections register casefold() (its lower() is ASCII-only); PostgreSQL's lower()
-- already folds every script under a UTF-8 locale.
CREATE FUNCTION casefold(value TEXT) RETURNS TEXT
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN lower(value);
