-- 0004 event delivery: commit-ordered event ids, per-consumer positions, claim latency.

-- Event ids in commit order. A bigserial id is taken before commit, so a consumer reading
-- "id > cursor" could skip an event whose transaction commits after a later one. Instead,
-- the transaction that writes events takes the next ids from this one-row counter as its
-- last statement; the row stays locked until it commits, so ids become visible in order
-- and a cursor never passes a gap that could still fill. Writers queue only for the
-- instant between their last insert and their commit.
CREATE TABLE tasker.event_log_position (
    id    integer PRIMARY KEY CHECK (id = 1),
    last  bigint NOT NULL
);
INSERT INTO tasker.event_log_position (id, last)
SELECT 1, COALESCE((SELECT max(id) FROM tasker.events), 0);
ALTER TABLE tasker.events ALTER COLUMN id DROP DEFAULT;
DROP SEQUENCE tasker.events_id_seq;

-- Where each named consumer has got to (an event id).
CREATE TABLE tasker.event_consumers (
    name              text PRIMARY KEY,
    position          bigint NOT NULL DEFAULT 0,
    -- The process delivering for this consumer now, and until when (a lease, so a
    -- crashed deliverer is replaced).
    owner             text,
    lease_expires_at  timestamptz,
    updated_at        timestamptz NOT NULL
);

-- When a step last became claimable; kept after the claim (unlike claimable_at) so the
-- claim latency (ready -> claimed) can be measured.
ALTER TABLE tasker.steps ADD COLUMN ready_at timestamptz;
