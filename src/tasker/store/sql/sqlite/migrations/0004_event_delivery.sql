-- 0004 event delivery: per-consumer positions, claim latency.
-- SQLite has one writer at a time, so AUTOINCREMENT event ids already follow commit
-- order and a cursor on the id is safe (PostgreSQL needs a counter for that).

-- Where each named consumer has got to (an event id).
CREATE TABLE event_consumers (
    name              TEXT PRIMARY KEY,
    position          INTEGER NOT NULL DEFAULT 0,
    -- The process delivering for this consumer now, and until when (a lease, so a
    -- crashed deliverer is replaced).
    owner             TEXT,
    lease_expires_at  TEXT,
    updated_at        TEXT NOT NULL
);

-- When a step last became claimable; kept after the claim so the claim latency
-- (ready -> claimed) can be measured.
ALTER TABLE steps ADD COLUMN ready_at TEXT;
