-- As ../0009_album_answers.sql.
CREATE TABLE album_answers (
    owner_id     BIGINT NOT NULL REFERENCES owners (id) ON DELETE CASCADE,
    chat_id      BIGINT NOT NULL,
    album_id     TEXT   NOT NULL,
    holder       TEXT   NOT NULL,
    lease_until  BIGINT NOT NULL,
    message_id   BIGINT,
    last_item_ms BIGINT NOT NULL,
    lang         TEXT   NOT NULL,
    quiet        BIGINT NOT NULL DEFAULT 0 CHECK (quiet IN (0, 1)),
    refused      TEXT   NOT NULL DEFAULT '{}' CHECK (CAST(refused AS jsonb) IS NOT NULL),
    done         BIGINT NOT NULL DEFAULT 0 CHECK (done IN (0, 1)),
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (owner_id, chat_id, album_id)
);
CREATE INDEX album_answers_open ON album_answers (lease_until) WHERE done = 0;
