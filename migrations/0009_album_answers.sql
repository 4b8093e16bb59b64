-- Front ends behind a load balancer (webhook mode) get the items of one Telegram album on
-- different replicas; one of them answers it. A row per album says which: `holder` (a replica's
-- id) answers while `lease_until` (unix ms) lies ahead and renews it; once it ran out another
-- replica takes over and edits `message_id` (the answer already sent, if any). `last_item_ms`
-- is when the newest item arrived (the album's quiet time starts there); `lang` and `quiet`
-- say how to answer; `refused` holds items refused before they became jobs (JSON object:
-- message id -> [reason code, kind]); `done` is 1 once the final summary is shown.
-- Milliseconds, not the usual seconds: an album's quiet time is a second or two.
CREATE TABLE album_answers (
    owner_id     INTEGER NOT NULL REFERENCES owners (id) ON DELETE CASCADE,
    chat_id      INTEGER NOT NULL,
    album_id     TEXT    NOT NULL,
    holder       TEXT    NOT NULL,
    lease_until  INTEGER NOT NULL,
    message_id   INTEGER,
    last_item_ms INTEGER NOT NULL,
    lang         TEXT    NOT NULL,
    quiet        INTEGER NOT NULL DEFAULT 0 CHECK (quiet IN (0, 1)),
    refused      TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(refused)),
    done         INTEGER NOT NULL DEFAULT 0 CHECK (done IN (0, 1)),
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (owner_id, chat_id, album_id)
);
-- The sweep looks for unfinished albums whose holder stopped renewing.
CREATE INDEX album_answers_open ON album_answers (lease_until) WHERE done = 0;
