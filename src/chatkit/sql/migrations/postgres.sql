-- ChatKit store, version 1 (PostgreSQL). The same tables as sqlite.sql: only the column types differ.
-- Times are microseconds since the unix epoch; every other column but the keys holds JSON text,
-- exactly as the protocol types serialize (TEXT, not jsonb, which reorders keys).

CREATE TABLE chatkit_threads (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    owner TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    title TEXT,
    status TEXT NOT NULL,
    allowed_image_domains TEXT,
    metadata TEXT NOT NULL
);
-- A user's threads, paged by (created_at, seq) in either order: one index range scan.
CREATE INDEX chatkit_threads_page ON chatkit_threads (owner, created_at, seq);

CREATE TABLE chatkit_items (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    thread_id TEXT NOT NULL REFERENCES chatkit_threads (id) ON DELETE CASCADE,
    owner TEXT NOT NULL,
    id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    type TEXT NOT NULL,
    body TEXT NOT NULL,
    UNIQUE (thread_id, id)
);
-- A thread's items, paged by (created_at, seq) in either order: one index range scan.
CREATE INDEX chatkit_items_page ON chatkit_items (thread_id, created_at, seq);

CREATE TABLE chatkit_attachments (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    body TEXT NOT NULL
);
