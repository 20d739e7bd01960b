-- Flow control (tasker.engine.flow): concurrency slots are claimed steps (with a claim token,
-- so under a lease) counted per key; rate limits are a GCRA per key in rate_limits.

-- lock_flow_keys --
-- Serialise the claimers and unparkers of the same keys until commit, in one order (keys
-- sorted), so no two of them deadlock.
SELECT count(pg_advisory_xact_lock(hashtextextended(k.key, 7346293))) AS locked
FROM (SELECT key FROM jsonb_array_elements_text(%(keys)s) AS key ORDER BY key) k;

-- flow_running --
-- Slots in use: claimed steps per step key, and per task key and task.
SELECT 'step' AS kind, concurrency_key AS key, NULL::bigint AS task_id, count(*) AS n
FROM tasker.steps
WHERE concurrency_key = ANY(%(step_keys)s::text[]) AND claim_token IS NOT NULL
GROUP BY concurrency_key
UNION ALL
SELECT 'task', task_key, task_id, count(*)
FROM tasker.steps
WHERE task_key = ANY(%(task_keys)s::text[]) AND claim_token IS NOT NULL
GROUP BY task_key, task_id;

-- rate_state --
-- The arrival time of each rate key (none yet: its bucket is full).
SELECT key, arrival_at FROM tasker.rate_limits WHERE key = ANY(%(keys)s::text[]);

-- save_rate_state --
-- Store the arrival times of rate keys whose tokens a claim took.
INSERT INTO tasker.rate_limits (key, arrival_at)
SELECT r.key, r.arrival_at FROM jsonb_to_recordset(%(rows)s) AS r(key text, arrival_at timestamptz)
ON CONFLICT (key) DO UPDATE SET arrival_at = EXCLUDED.arrival_at;

-- admit_steps --
-- Tentatively claimed steps that got their slot and token start now.
UPDATE tasker.steps
SET last_attempted_at = %(now)s, started_at = COALESCE(started_at, %(now)s), flow_wait = NULL,
    rate_reserved = false
WHERE id = ANY(%(ids)s::bigint[]);

-- park_steps --
-- Tentatively claimed steps that must wait go back to the state they came from, unclaimed:
-- claimable at the end of time until a slot frees (concurrency_limit), or at their token's
-- time (rate_limited). The claim never happened: no history, and its counters are undone.
UPDATE tasker.steps s
SET status = r.from_state, attempts = s.attempts - 1, transition_count = s.transition_count - 1,
    claimable_at = r.claimable_at, flow_wait = r.flow_wait, rate_reserved = r.rate_reserved,
    claimed_by = NULL, claim_token = NULL, lease_expires_at = NULL, updated_at = %(now)s
FROM jsonb_to_recordset(%(rows)s) AS r(id bigint, from_state text, claimable_at timestamptz,
    flow_wait text, rate_reserved boolean)
WHERE s.id = r.id;

-- unpark_task_steps --
-- Steps of tasks that now run (so hold their task key's slot) need no other slot of it.
UPDATE tasker.steps
SET claimable_at = %(now)s, flow_wait = NULL, updated_at = %(now)s
WHERE task_id = ANY(%(task_ids)s::bigint[]) AND flow_wait = 'concurrency_limit'
  AND task_key IS NOT NULL;

-- parked_keys --
-- The keys (of step_keys and task_keys; every key when both are null) that steps wait on,
-- with their limit, at most `limit` of them.
(SELECT DISTINCT 'step' AS kind, concurrency_key AS key, concurrency_limit AS lim
 FROM tasker.steps
 WHERE flow_wait = 'concurrency_limit' AND concurrency_key IS NOT NULL
   AND concurrency_key = ANY(%(step_keys)s::text[])  -- when step_keys
 LIMIT %(limit)s)
UNION ALL
(SELECT DISTINCT 'task', task_key, task_key_limit
 FROM tasker.steps
 WHERE flow_wait = 'concurrency_limit' AND task_key IS NOT NULL
   AND task_key = ANY(%(task_keys)s::text[])  -- when task_keys
 LIMIT %(limit)s);

-- unpark_step_key --
-- As many waiting steps of a step key as it has free slots become claimable, best first.
UPDATE tasker.steps
SET claimable_at = %(now)s, flow_wait = NULL, updated_at = %(now)s
WHERE id IN (
    SELECT p.id FROM tasker.steps p
    WHERE p.flow_wait = 'concurrency_limit' AND p.concurrency_key = %(key)s
    ORDER BY p.priority DESC, p.id
    LIMIT GREATEST(0, %(lim)s - (SELECT count(*) FROM tasker.steps r
                                 WHERE r.concurrency_key = %(key)s
                                   AND r.claim_token IS NOT NULL)))
RETURNING id;

-- unpark_task_key --
-- The waiting steps of as many tasks of a task key as it has free slots become claimable.
UPDATE tasker.steps
SET claimable_at = %(now)s, flow_wait = NULL, updated_at = %(now)s
WHERE flow_wait = 'concurrency_limit' AND task_key = %(key)s AND task_id IN (
    SELECT p.task_id FROM tasker.steps p
    WHERE p.flow_wait = 'concurrency_limit' AND p.task_key = %(key)s
    GROUP BY p.task_id
    ORDER BY max(p.priority) DESC, p.task_id
    LIMIT GREATEST(0, %(lim)s - (SELECT count(DISTINCT r.task_id) FROM tasker.steps r
                                 WHERE r.task_key = %(key)s AND r.claim_token IS NOT NULL)))
RETURNING id;

-- flow_waits --
-- A task's steps held back by flow control, with their keys and limits.
SELECT name, flow_wait, claimable_at, concurrency_key, concurrency_limit, task_key,
    task_key_limit, rate_count, rate_period_seconds
FROM tasker.steps
WHERE task_id = %(task_id)s AND flow_wait IS NOT NULL
ORDER BY position, id;
