-- What the bot's search answers were, so their buttons and replies to them keep working after a
-- restart.

-- Each message the bot sent as a search result and the item (and the photo or video frame) it
-- shows: "/delete" or "/similar" sent as a reply to a result finds the item here. A row goes
-- with its item (deleting the item, or everything, deletes the row).
CREATE TABLE result_messages (
    owner_id   INTEGER NOT NULL,
    chat_id    INTEGER NOT NULL,                    -- Telegram chat the message is in
    message_id INTEGER NOT NULL,
    media_id   INTEGER NOT NULL,
    unit_id    INTEGER,                             -- the matching photo or frame, if known
    created_at INTEGER NOT NULL,
    PRIMARY KEY (owner_id, chat_id, message_id),
    FOREIGN KEY (owner_id, media_id) REFERENCES media (owner_id, id) ON DELETE CASCADE
) WITHOUT ROWID;
CREATE INDEX result_messages_owner_media ON result_messages (owner_id, media_id);
CREATE INDEX result_messages_created ON result_messages (owner_id, created_at);

-- "/delete" as a reply to the user's own message finds the item saved from it.
CREATE INDEX media_owner_message ON media (owner_id, message_id) WHERE message_id IS NOT NULL;

-- A search whose answer carries buttons ("More", strict, loose). Callback data holds only the
-- id, an offset and a strictness (64 bytes); the query itself stays here. A photo query keeps
-- the Telegram file id of the user's photo (the photo is not in the collection) and fetches it
-- again when a button is pressed.
CREATE TABLE search_sessions (
    id         INTEGER PRIMARY KEY,                 -- random, so ids say nothing about others
    owner_id   INTEGER NOT NULL REFERENCES owners (id) ON DELETE CASCADE,
    kind       TEXT    NOT NULL CHECK (kind IN ('text', 'photo', 'item')),
    text       TEXT,                                -- what the user typed, exclusions included
    file_id    TEXT,                                -- kind 'photo': the query photo
    media_id   INTEGER,                             -- kind 'item': the item searched from
    unit_id    INTEGER,                             -- kind 'item': its photo or frame, if known
    created_at INTEGER NOT NULL,
    CHECK (kind != 'photo' OR file_id IS NOT NULL),
    CHECK (kind != 'item' OR media_id IS NOT NULL),
    CHECK (kind != 'text' OR text IS NOT NULL)
);
CREATE INDEX search_sessions_owner ON search_sessions (owner_id, created_at);
