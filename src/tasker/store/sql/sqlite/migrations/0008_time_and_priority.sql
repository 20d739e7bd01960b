-- 0008 time and priority: delayed start (run_at) and claim priority.

-- When the task may start (NULL: at once); no step is claimable before it.
ALTER TABLE tasks ADD COLUMN run_at TEXT;
-- Higher first; the template's priority unless the request gave one.
ALTER TABLE tasks ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;
-- The task's priority, copied onto each step so that the claim reads one index.
ALTER TABLE steps ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;

-- The claim query: the highest priority first, then the oldest claimable. Partial like
-- steps_claimable_idx, which stays for next_claimable_at (the earliest claimable time).
CREATE INDEX steps_claim_priority_idx ON steps (priority DESC, claimable_at, id)
    WHERE claimable_at IS NOT NULL;
