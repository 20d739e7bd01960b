-- 0011 flow control: concurrency limits (per step, per task key) and rate limits.

-- A step with a concurrency limit holds one slot of its key while it is claimed (has a claim
-- token, so under a lease): "step:NS/TEMPLATE.STEP", at most concurrency_limit at once.
ALTER TABLE steps ADD COLUMN concurrency_key TEXT;
ALTER TABLE steps ADD COLUMN concurrency_limit INTEGER;
-- The task's key, "task:NS/TEMPLATE:FIELD=VALUE": at most task_key_limit tasks with the same
-- key have claimed steps at once.
ALTER TABLE steps ADD COLUMN task_key TEXT;
ALTER TABLE steps ADD COLUMN task_key_limit INTEGER;
-- A rate limit, "rate:NS/TEMPLATE.STEP": rate_count claims per rate_period_seconds.
ALTER TABLE steps ADD COLUMN rate_key TEXT;
ALTER TABLE steps ADD COLUMN rate_count INTEGER;
ALTER TABLE steps ADD COLUMN rate_period_seconds REAL;
-- Why a claimable step is held back: 'concurrency_limit' (claimable_at is the end of time
-- until a slot frees) or 'rate_limited' (claimable_at is its token's time).
ALTER TABLE steps ADD COLUMN flow_wait TEXT
    CHECK (flow_wait IN ('concurrency_limit', 'rate_limited'));
-- The step holds a token for its claimable_at (a rate-limited claim reserved it).
ALTER TABLE steps ADD COLUMN rate_reserved INTEGER NOT NULL DEFAULT 0;

-- Each rate key's theoretical arrival time (GCRA): the next token is due at arrival_at minus
-- the burst allowance.
CREATE TABLE rate_limits (
    key         TEXT PRIMARY KEY,
    arrival_at  TEXT NOT NULL
);

-- Slots in use, counted per key; and the steps waiting for one, best first.
CREATE INDEX steps_concurrency_running_idx ON steps (concurrency_key)
    WHERE claim_token IS NOT NULL AND concurrency_key IS NOT NULL;
CREATE INDEX steps_task_key_running_idx ON steps (task_key, task_id)
    WHERE claim_token IS NOT NULL AND task_key IS NOT NULL;
CREATE INDEX steps_concurrency_parked_idx ON steps (concurrency_key, priority DESC, id)
    WHERE flow_wait = 'concurrency_limit';
CREATE INDEX steps_task_key_parked_idx ON steps (task_key, priority DESC, task_id)
    WHERE flow_wait = 'concurrency_limit';
