-- As ../0003_result_messages.sql.

CREATE TABLE result_messages (
    owner_id   BIGINT NOT NULL,
    chat_id    BIGINT NOT NULL,
    message_id BIGINT NOT NULL,
    media_id   BIGINT NOT NULL,
    unit_id    BIGINT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (owner_id, chat_id, message_id),
    FOREIGN KEY (owner_id, media_id) REFERENCES media (owner_id, id) ON DELETE CASCADE
);
CREATE INDEX result_messages_owner_media ON result_messages (owner_id, media_id);
CREATE INDEX result_messages_created ON result_messages (owner_id, created_at);

CREATE INDEX media_owner_message ON media (owner_id, message_id) WHERE message_id IS NOT NULL;

CREATE TABLE search_sessions (
    id         BIGINT PRIMARY KEY,
    owner_id   BIGINT NOT NULL REFERENCES owners (id) ON DELETE CASCADE,
    kind       TEXT   NOT NULL CHECK (kind IN ('text', 'photo', 'item')),
    text       TEXT,
    file_id    TEXT,
    media_id   BIGINT,
    unit_id    BIGINT,
    created_at BIGINT NOT NULL,
    CHECK (kind != 'photo' OR file_id IS NOT NULL),
    CHECK (kind != 'item' OR media_id IS NOT NULL),
    CHECK (kind != 'text' OR text IS NOT NULL)
);
CREATE INDEX search_sessions_owner ON search_sessions (owner_id, created_at);
