-- As ../0007_near_duplicates.sql.
CREATE TABLE near_duplicates (
    owner_id     BIGINT NOT NULL,
    media_id     BIGINT NOT NULL,
    duplicate_of BIGINT NOT NULL,
    score        DOUBLE PRECISION NOT NULL CHECK (score >= -1 AND score <= 1),
    created_at   BIGINT NOT NULL,
    dismissed    BIGINT NOT NULL DEFAULT 0 CHECK (dismissed IN (0, 1)),
    PRIMARY KEY (owner_id, media_id, duplicate_of),
    CHECK (media_id != duplicate_of),
    FOREIGN KEY (owner_id, media_id) REFERENCES media (owner_id, id) ON DELETE CASCADE,
    FOREIGN KEY (owner_id, duplicate_of) REFERENCES media (owner_id, id) ON DELETE CASCADE
);
CREATE INDEX near_duplicates_of ON near_duplicates (owner_id, duplicate_of);
