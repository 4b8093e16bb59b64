-- The first schema of Image Finder.
--
-- Conventions: times are unix seconds (INTEGER). Every table that holds an owner's data carries
-- owner_id, and every composite index starts with it, so "everything an owner has" is one index
-- range and a query that forgets the owner has no index to use. Child tables reference their
-- parent through (owner_id, id) pairs, so a unit can never hang under another owner's item.

-- A Telegram user or chat (or the local folder CLI) and its settings.
CREATE TABLE owners (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: index files are named by it
    kind        TEXT    NOT NULL CHECK (kind IN ('user', 'chat', 'local')),
    external_id TEXT    NOT NULL,                   -- Telegram id as text, or a local name
    settings    TEXT    NOT NULL DEFAULT '{}'
                CHECK (json_valid(settings) AND json_type(settings) = 'object'),
    created_at  INTEGER NOT NULL,
    UNIQUE (kind, external_id)
);

-- Embedding models by name and version; vectors refer to a row here (smaller than the text).
CREATE TABLE models (
    id         INTEGER PRIMARY KEY,
    name       TEXT    NOT NULL,
    version    TEXT    NOT NULL,
    dim        INTEGER NOT NULL CHECK (dim > 0),
    created_at INTEGER NOT NULL,
    UNIQUE (name, version)
);

-- One photo, video, animation, video note or image document the owner sent.
CREATE TABLE media (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    owner_id       INTEGER NOT NULL REFERENCES owners (id) ON DELETE CASCADE,
    kind           TEXT    NOT NULL
                   CHECK (kind IN ('photo', 'video', 'animation', 'video_note', 'document')),
    -- 'thumbnail': the file was too large to fetch, so only its thumbnail is indexed.
    status         TEXT    NOT NULL DEFAULT 'ready' CHECK (status IN ('ready', 'thumbnail')),
    file_unique_id TEXT    NOT NULL,                -- idempotency key within an owner
    file_id        TEXT,                            -- what the bot sends back; NULL for local files
    size           INTEGER CHECK (size >= 0),
    width          INTEGER CHECK (width > 0),
    height         INTEGER CHECK (height > 0),
    duration       REAL    CHECK (duration >= 0),   -- seconds
    caption        TEXT,
    forward_origin TEXT,
    message_id     INTEGER,
    message_date   INTEGER,
    album_id       TEXT,                            -- Telegram media_group_id
    created_at     INTEGER NOT NULL,
    UNIQUE (owner_id, file_unique_id),
    UNIQUE (owner_id, id)
);
CREATE INDEX media_owner_kind ON media (owner_id, kind);

-- What gets embedded: the photo itself, one video frame at ts seconds, or a video's thumbnail.
CREATE TABLE units (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,     -- the id inside the FAISS indexes; never reused
    owner_id INTEGER NOT NULL,
    media_id INTEGER NOT NULL,
    kind     TEXT    NOT NULL CHECK (kind IN ('image', 'frame', 'thumbnail')),
    ts       REAL    CHECK ((kind = 'frame') = (ts IS NOT NULL) AND (ts IS NULL OR ts >= 0)),
    UNIQUE (owner_id, id),
    FOREIGN KEY (owner_id, media_id) REFERENCES media (owner_id, id) ON DELETE CASCADE
);
CREATE INDEX units_owner_media ON units (owner_id, media_id);

-- One vector per (unit, model): float16 little-endian, models.dim values (2 * dim bytes).
CREATE TABLE vectors (
    id       INTEGER PRIMARY KEY,
    owner_id INTEGER NOT NULL,
    unit_id  INTEGER NOT NULL,
    model    INTEGER NOT NULL REFERENCES models (id),
    data     BLOB    NOT NULL,
    UNIQUE (owner_id, unit_id, model),
    FOREIGN KEY (owner_id, unit_id) REFERENCES units (owner_id, id) ON DELETE CASCADE
);
CREATE INDEX vectors_owner_model ON vectors (owner_id, model, unit_id);

-- Bumped in the same transaction as any vector insert or delete for the pair; an index file
-- that records another version is stale.
CREATE TABLE index_versions (
    owner_id INTEGER NOT NULL REFERENCES owners (id) ON DELETE CASCADE,
    model    INTEGER NOT NULL REFERENCES models (id),
    version  INTEGER NOT NULL CHECK (version >= 0),
    PRIMARY KEY (owner_id, model)
) WITHOUT ROWID;

-- Which model answers for an owner in each slot (e.g. a query language); switched atomically
-- once a new model's vectors are complete.
CREATE TABLE active_models (
    owner_id   INTEGER NOT NULL REFERENCES owners (id) ON DELETE CASCADE,
    slot       TEXT    NOT NULL,
    model_id   TEXT    NOT NULL,                    -- "name@version"
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (owner_id, slot)
) WITHOUT ROWID;

-- Files of a local folder (CLI). Several paths may hold the same content, hence a table.
CREATE TABLE local_files (
    owner_id INTEGER NOT NULL,
    path     TEXT    NOT NULL,
    media_id INTEGER NOT NULL,
    size     INTEGER NOT NULL CHECK (size >= 0),
    mtime_ns INTEGER NOT NULL,
    sha256   TEXT    NOT NULL CHECK (length(sha256) = 64),
    PRIMARY KEY (owner_id, path),
    FOREIGN KEY (owner_id, media_id) REFERENCES media (owner_id, id) ON DELETE CASCADE
) WITHOUT ROWID;
CREATE INDEX local_files_owner_media ON local_files (owner_id, media_id);

-- Durable ingest work. A job is 'done' only in the transaction that stores its item.
CREATE TABLE jobs (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    owner_id   INTEGER NOT NULL REFERENCES owners (id) ON DELETE CASCADE,
    state      TEXT    NOT NULL DEFAULT 'pending'
               CHECK (state IN ('pending', 'running', 'done', 'failed')),
    payload    TEXT    NOT NULL CHECK (json_valid(payload)),
    attempts   INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_error TEXT,
    media_id   INTEGER,                             -- result; not a foreign key, jobs outlive items
    duplicate  INTEGER CHECK (duplicate IN (0, 1)),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX jobs_owner_state ON jobs (owner_id, state, id);
-- Claiming takes pending jobs across owners, round-robin; this keeps that scan to pending rows.
CREATE INDEX jobs_pending ON jobs (owner_id, id) WHERE state = 'pending';
