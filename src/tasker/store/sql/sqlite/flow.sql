-- Flow control (tasker.engine.flow): concurrency slots are claimed steps (with a claim token,
-- so under a lease) counted per key; rate limits are a GCRA per key in rate_limits.

-- lock_flow_keys --
-- Nothing to take: writers already hold the database lock (BEGIN IMMEDIATE) until commit.
SELECT json_array_length(:keys) AS locked;

-- flow_running --
-- Slots in use: claimed steps per step key, and per task key and task.
SELECT 'step' AS kind, concurrency_key AS key, NULL AS task_id, count(*) AS n
FROM steps
WHERE concurrency_key IN (SELECT value FROM json_each(:step_keys)) AND claim_token IS NOT NULL
GROUP BY concurrency_key
UNION ALL
SELECT 'task', task_key, task_id, count(*)
FROM steps
WHERE task_key IN (SELECT value FROM json_each(:task_keys)) AND claim_token IS NOT NULL
GROUP BY task_key, task_id;

-- rate_state --
-- The arrival time of each rate key (none yet: its bucket is full).
SELECT key, arrival_at FROM rate_limits WHERE key IN (SELECT value FROM json_each(:keys));

-- save_rate_state --
-- Store the arrival times of rate keys whose tokens a claim took.
INSERT INTO rate_limits (key, arrival_at)
SELECT value ->> '$.key', value ->> '$.arrival_at' FROM json_each(:rows) WHERE true
ON CONFLICT (key) DO UPDATE SET arrival_at = excluded.arrival_at;

-- admit_steps --
-- Tentatively claimed steps that got their slot and token start now.
UPDATE steps
SET last_attempted_at = :now, started_at = COALESCE(started_at, :now), flow_wait = NULL,
    rate_reserved = 0
WHERE id IN (SELECT value FROM json_each(:ids));

-- park_steps --
-- Tentatively claimed steps that must wait go back to the state they came from, unclaimed:
-- claimable at the end of time until a slot frees (concurrency_limit), or at their token's
-- time (rate_limited). The claim never happened: no history, and its counters are undone.
UPDATE steps
SET status = r.value ->> '$.from_state', attempts = attempts - 1,
    transition_count = transition_count - 1, claimable_at = r.value ->> '$.claimable_at',
    flow_wait = r.value ->> '$.flow_wait', rate_reserved = r.value ->> '$.rate_reserved',
    claimed_by = NULL, claim_token = NULL, lease_expires_at = NULL, updated_at = :now
FROM json_each(:rows) AS r
WHERE steps.id = r.value ->> '$.id';

-- unpark_task_steps --
-- Steps of tasks that now run (so hold their task key's slot) need no other slot of it.
UPDATE steps
SET claimable_at = :now, flow_wait = NULL, updated_at = :now
WHERE task_id IN (SELECT value FROM json_each(:task_ids)) AND flow_wait = 'concurrency_limit'
  AND task_key IS NOT NULL;

-- parked_keys --
-- The keys (of step_keys and task_keys; every key when both are null) that steps wait on,
-- with their limit, at most `limit` of them.
SELECT * FROM (
    SELECT DISTINCT 'step' AS kind, concurrency_key AS key, concurrency_limit AS lim
    FROM steps
    WHERE flow_wait = 'concurrency_limit' AND concurrency_key IS NOT NULL
      AND concurrency_key IN (SELECT value FROM json_each(:step_keys))  -- when step_keys
    LIMIT :limit)
UNION ALL
SELECT * FROM (
    SELECT DISTINCT 'task', task_key, task_key_limit
    FROM steps
    WHERE flow_wait = 'concurrency_limit' AND task_key IS NOT NULL
      AND task_key IN (SELECT value FROM json_each(:task_keys))  -- when task_keys
    LIMIT :limit);

-- unpark_step_key --
-- As many waiting steps of a step key as it has free slots become claimable, best first.
UPDATE steps
SET claimable_at = :now, flow_wait = NULL, updated_at = :now
WHERE id IN (
    SELECT p.id FROM steps p
    WHERE p.flow_wait = 'concurrency_limit' AND p.concurrency_key = :key
    ORDER BY p.priority DESC, p.id
    LIMIT max(0, :lim - (SELECT count(*) FROM steps r
                         WHERE r.concurrency_key = :key AND r.claim_token IS NOT NULL)))
RETURNING id;

-- unpark_task_key --
-- The waiting steps of as many tasks of a task key as it has free slots become claimable.
UPDATE steps
SET claimable_at = :now, flow_wait = NULL, updated_at = :now
WHERE flow_wait = 'concurrency_limit' AND task_key = :key AND task_id IN (
    SELECT p.task_id FROM steps p
    WHERE p.flow_wait = 'concurrency_limit' AND p.task_key = :key
    GROUP BY p.task_id
    ORDER BY max(p.priority) DESC, p.task_id
    LIMIT max(0, :lim - (SELECT count(DISTINCT r.task_id) FROM steps r
                         WHERE r.task_key = :key AND r.claim_token IS NOT NULL)))
RETURNING id;

-- flow_waits --
-- A task's steps held back by flow control, with their keys and limits.
SELECT name, flow_wait, claimable_at, concurrency_key, concurrency_limit, task_key,
    task_key_limit, rate_count, rate_period_seconds
FROM steps
WHERE task_id = :task_id AND flow_wait IS NOT NULL
ORDER BY position, id;
