-- insert_steps --
-- Create all steps of a task in one statement; roots are claimable from start_at (now, or the
-- task's run_at), unless they wait for a signal. Every step carries the task's priority.
INSERT INTO steps (task_id, namespace, name, position, handler, config, status,
    max_attempts, retryable, timeout_seconds, backoff_base_seconds, backoff_max_seconds,
    backoff_jitter, total_parents, remaining_parents, claimable_at, ready_at, transition_count,
    created_at, updated_at, join_mode, branches, wait_for, wait_timeout_seconds, map_path,
    max_items, priority, workflow, concurrency_key, concurrency_limit, task_key, task_key_limit,
    rate_key, rate_count, rate_period_seconds)
SELECT :task_id, :namespace, value ->> '$.name', value ->> '$.position',
    value ->> '$.handler', value -> '$.config', 'pending', value ->> '$.max_attempts',
    value ->> '$.retryable', value ->> '$.timeout_seconds', value ->> '$.backoff_base_seconds',
    value ->> '$.backoff_max_seconds', value ->> '$.backoff_jitter',
    value ->> '$.total_parents', value ->> '$.total_parents',
    CASE WHEN value ->> '$.total_parents' = 0 AND value ->> '$.wait_for' IS NULL
         AND value ->> '$.map_path' IS NULL THEN :start_at END,
    CASE WHEN value ->> '$.total_parents' = 0 AND value ->> '$.wait_for' IS NULL
         AND value ->> '$.map_path' IS NULL THEN :start_at END,
    1, :now, :now, value ->> '$.join_mode', nullif(value -> '$.branches', 'null'),
    value ->> '$.wait_for', value ->> '$.wait_timeout_seconds', value ->> '$.map_path',
    value ->> '$.max_items', :priority, nullif(value -> '$.workflow', 'null'),
    value ->> '$.concurrency_key', value ->> '$.concurrency_limit', :task_key, :task_key_limit,
    value ->> '$.rate_key', value ->> '$.rate_count', value ->> '$.rate_period_seconds'
FROM json_each(:rows)
ORDER BY value ->> '$.position'
RETURNING id, task_id, name, handler, claimable_at, total_parents, wait_for,
    wait_timeout_seconds, workflow, map_path, map_item;

-- insert_edges --
-- Create a task's dependency edges, by step name. CROSS JOIN fixes the join order: each
-- edge looks both steps up through the (task_id, name) index (left to the planner,
-- SQLite scanned steps x steps per edge, cubic in a fan-out's width).
INSERT INTO step_edges (task_id, from_step_id, to_step_id)
SELECT :task_id, p.id, c.id
FROM json_each(:rows) AS r
CROSS JOIN steps AS p
CROSS JOIN steps AS c
WHERE p.task_id = :task_id AND p.name = r.value ->> '$.parent'
  AND c.task_id = :task_id AND c.name = r.value ->> '$.child';

-- claim_steps --
-- Claim up to `limit` claimable steps (of `handlers`, when given), the highest priority first,
-- then the oldest (index steps_claim_priority_idx). A pending
-- step always has 0 attempts and a failed one at least 1, so the state it came from follows
-- from the new count. A step under flow control (a concurrency or rate limit) is claimed
-- tentatively: its start times are set only once tasker.engine.flow admits it (admit_steps),
-- or it is put back.
UPDATE steps
SET status = 'in_progress', attempts = attempts + 1, claimable_at = NULL,
    claimed_by = :worker_id, claim_token = lower(hex(randomblob(16))),
    lease_expires_at = :lease_expires_at,
    last_attempted_at = CASE WHEN concurrency_key IS NULL AND task_key IS NULL
                                  AND rate_key IS NULL THEN :now
                             ELSE last_attempted_at END,
    started_at = CASE WHEN concurrency_key IS NULL AND task_key IS NULL AND rate_key IS NULL
                      THEN COALESCE(started_at, :now) ELSE started_at END,
    updated_at = :now, transition_count = transition_count + 1
WHERE id IN (
    SELECT id FROM steps
    WHERE claimable_at <= :now
      AND namespace IN (SELECT value FROM json_each(:namespaces))  -- when namespaces
      AND handler IN (SELECT value FROM json_each(:handlers))  -- when handlers
      AND task_id = :task_id  -- when task_id
    ORDER BY priority DESC, claimable_at, id
    LIMIT :limit
)
RETURNING id, task_id, namespace, name, handler, config, attempts, max_attempts,
    timeout_seconds, claim_token, transition_count, total_parents, wait_for, map_item, map_index,
    CASE WHEN attempts = 1 THEN 'pending' ELSE 'error' END AS from_state, created_at, ready_at,
    priority, concurrency_key, concurrency_limit, task_key, task_key_limit, rate_key, rate_count,
    rate_period_seconds, rate_reserved;

-- parent_results --
-- Results of the parents of the given steps, by parent name.
SELECT e.to_step_id AS step_id, p.name, p.results
FROM step_edges e JOIN steps p ON p.id = e.from_step_id
WHERE e.to_step_id IN (SELECT value FROM json_each(:step_ids));

-- task_contexts --
-- Context and identity of tasks, for handlers.
SELECT id, context, namespace, name, version, status, trace_context FROM tasks
WHERE id IN (SELECT value FROM json_each(:task_ids));

-- lock_running_steps --
-- Steps about to get a result; only still-running ones under their claim token.
SELECT s.id, s.task_id, s.name, s.attempts, s.max_attempts, s.retryable,
    s.backoff_base_seconds, s.backoff_max_seconds, s.backoff_jitter, s.claim_token,
    s.claimed_by, s.last_attempted_at, s.created_at, s.branches, s.workflow, s.map_item,
    s.group_id, s.concurrency_key, s.task_key
FROM steps s
JOIN json_each(:rows) AS r
  ON s.id = r.value ->> '$.id' AND s.claim_token = r.value ->> '$.claim_token'
WHERE s.status = 'in_progress'
ORDER BY s.id;

-- finish_steps --
-- Record attempt outcomes: complete, error (with retry time) or cancelled; refund 1 gives back
-- the attempt of a step released unfinished by a stopping worker.
UPDATE steps
SET status = r.status, results = r.results, error = r.error, retryable = r.retryable,
    next_retry_at = r.next_retry_at, claimable_at = r.next_retry_at,
    ready_at = COALESCE(r.next_retry_at, steps.ready_at),
    completed_at = CASE WHEN r.status = 'complete' THEN :now END,
    claimed_by = NULL, claim_token = NULL, lease_expires_at = NULL, wait_expires_at = NULL,
    updated_at = :now, transition_count = transition_count + 1,
    attempts = attempts - coalesce(r.refund, 0)
FROM (SELECT value ->> '$.id' AS id, value ->> '$.status' AS status,
             nullif(value -> '$.results', 'null') AS results,
             nullif(value -> '$.error', 'null') AS error,
             value ->> '$.retryable' AS retryable,
             value ->> '$.next_retry_at' AS next_retry_at,
             value ->> '$.refund' AS refund
      FROM json_each(:rows)) AS r
WHERE steps.id = r.id
RETURNING id, task_id, name, status, transition_count, attempts, max_attempts, group_id;

-- release_children --
-- Children of steps that just finished (step_ids complete or resolved, skipped_ids skipped) lose
-- a remaining parent. At zero a pending child that waits for no signal becomes claimable,
-- unless its join rule makes it skipped (all: a parent skipped; any: every parent skipped),
-- at once or at its task's run_at.
UPDATE steps
SET remaining_parents = remaining_parents - e.n,
    skipped_parents = skipped_parents + e.n_skipped,
    claimable_at = CASE WHEN remaining_parents - e.n = 0 AND status = 'pending'
                             AND wait_for IS NULL AND map_path IS NULL
                             AND CASE WHEN join_mode = 'any'
                                      THEN skipped_parents + e.n_skipped < total_parents
                                      ELSE skipped_parents + e.n_skipped = 0 END
                        THEN max(:now, coalesce((SELECT t.run_at FROM tasks t
                                                 WHERE t.id = steps.task_id), :now))
                        ELSE claimable_at END,
    ready_at = CASE WHEN remaining_parents - e.n = 0 AND status = 'pending'
                    THEN max(:now, coalesce((SELECT t.run_at FROM tasks t
                                             WHERE t.id = steps.task_id), :now))
                    ELSE ready_at END,
    updated_at = :now
FROM (SELECT to_step_id, count(*) AS n,
             sum(from_step_id IN (SELECT value FROM json_each(:skipped_ids))) AS n_skipped
      FROM step_edges
      WHERE from_step_id IN (SELECT value FROM json_each(:step_ids))
         OR from_step_id IN (SELECT value FROM json_each(:skipped_ids))
      GROUP BY to_step_id) AS e
WHERE steps.id = e.to_step_id
RETURNING id, task_id, name, status, remaining_parents, skipped_parents, total_parents,
    join_mode, handler, retryable, wait_for, wait_timeout_seconds, claimable_at, map_path,
    max_items, workflow, map_item;

-- skip_steps --
-- Pending steps that will not run (a branch not taken, or their join rule) become skipped.
UPDATE steps
SET status = 'skipped', claimable_at = NULL, wait_expires_at = NULL, completed_at = :now,
    updated_at = :now, transition_count = transition_count + 1
WHERE id IN (SELECT value FROM json_each(:step_ids)) AND status = 'pending'
RETURNING id, task_id, name, transition_count;

-- start_waits --
-- Steps whose parents are done start waiting for their signal; a wait with a timeout gets
-- its deadline (rows: id, deadline).
UPDATE steps
SET wait_expires_at = r.value ->> '$.deadline', updated_at = :now
FROM json_each(:rows) AS r
WHERE steps.id = r.value ->> '$.id' AND steps.status = 'pending';

-- release_waits --
-- Waiting steps whose signal arrived and that have a handler become claimable (at once or at
-- their task's run_at).
UPDATE steps
SET claimable_at = max(:now, coalesce((SELECT t.run_at FROM tasks t WHERE t.id = steps.task_id),
                                      :now)),
    ready_at = max(:now, coalesce((SELECT t.run_at FROM tasks t WHERE t.id = steps.task_id), :now)),
    wait_expires_at = NULL, updated_at = :now
WHERE id IN (SELECT value FROM json_each(:step_ids)) AND status = 'pending';

-- step_signals --
-- The signals that arrived for the given steps (by the name each waits for).
SELECT s.id AS step_id, g.payload
FROM steps s
JOIN task_signals g ON g.task_id = s.task_id AND g.name = s.wait_for
WHERE s.id IN (SELECT value FROM json_each(:step_ids));

-- expired_waits --
-- Pending steps whose wait for a signal ran past its deadline, oldest first.
SELECT id, task_id, name, wait_for, wait_timeout_seconds FROM steps
WHERE wait_expires_at < :now AND status = 'pending'
ORDER BY wait_expires_at
LIMIT :limit;

-- fail_expired_waits --
-- Waits that timed out fail for good (rows: id, error); a step signalled meanwhile is kept.
UPDATE steps
SET status = 'error', retryable = 0, error = r.value -> '$.error', claimable_at = NULL,
    wait_expires_at = NULL, updated_at = :now, transition_count = transition_count + 1
FROM json_each(:rows) AS r
WHERE steps.id = r.value ->> '$.id' AND steps.status = 'pending' AND steps.wait_expires_at < :now
RETURNING id, task_id, name, transition_count, attempts, max_attempts;

-- lock_task_steps --
-- A task's steps, by name (all of them when names is null), for a manual change.
SELECT id, task_id, name, status, attempts, max_attempts, retryable, remaining_parents,
    skipped_parents, total_parents, join_mode, handler, branches, wait_for,
    wait_timeout_seconds, map_path, group_id, claim_token, transition_count, workflow,
    child_task_id, map_item
FROM steps
WHERE task_id = :task_id
  AND name IN (SELECT value FROM json_each(:names))  -- when names
ORDER BY id;

-- set_steps_status --
-- Manual change of steps' status (cancel, retry, resolve); attempts reset on manual retry.
UPDATE steps
SET status = r.to_state,
    attempts = CASE WHEN r.reset_attempts THEN 0 ELSE attempts END,
    retryable = CASE WHEN r.reset_attempts THEN 1 ELSE retryable END,
    results = COALESCE(r.results, steps.results),
    error = CASE WHEN r.reset_attempts THEN NULL ELSE error END,
    next_retry_at = CASE WHEN r.reset_attempts THEN NULL ELSE next_retry_at END,
    claimable_at = CASE WHEN r.to_state = 'pending' AND remaining_parents = 0
                             AND wait_for IS NULL AND map_path IS NULL THEN :now END,
    ready_at = CASE WHEN r.to_state = 'pending' AND remaining_parents = 0 THEN :now
                    ELSE ready_at END,
    wait_expires_at = NULL,
    completed_at = CASE WHEN r.to_state = 'resolved_manually' THEN :now ELSE completed_at END,
    claimed_by = NULL, claim_token = NULL, lease_expires_at = NULL, updated_at = :now,
    transition_count = transition_count + 1
FROM (SELECT value ->> '$.id' AS id, value ->> '$.from_state' AS from_state,
             value ->> '$.to_state' AS to_state, value ->> '$.reset_attempts' AS reset_attempts,
             nullif(value -> '$.results', 'null') AS results
      FROM json_each(:rows)) AS r
WHERE steps.id = r.id AND steps.status = r.from_state
RETURNING id, task_id, name, status, transition_count, attempts, max_attempts;

-- expired_leases --
-- Running steps whose lease ran out (their worker died or hung), oldest first.
SELECT id, task_id, claim_token, claimed_by, lease_expires_at FROM steps
WHERE status = 'in_progress' AND lease_expires_at < :now
ORDER BY lease_expires_at
LIMIT :limit;

-- try_reaper_lock --
-- The write transaction already excludes other writers, so this process may reap.
SELECT 1 AS acquired;

-- extend_leases --
-- Heartbeat: push back the lease of every step this worker holds.
UPDATE steps SET lease_expires_at = :lease_expires_at
WHERE claimed_by = :worker_id AND status = 'in_progress'
RETURNING id;

-- next_claimable_at --
-- When the next step (of `handlers`, when given) becomes claimable (to sleep until then); a
-- step waiting for a concurrency slot has no time: a recorder unparks it.
SELECT min(claimable_at) AS claimable_at FROM steps
WHERE claimable_at IS NOT NULL AND flow_wait IS NOT 'concurrency_limit'
  AND namespace IN (SELECT value FROM json_each(:namespaces))  -- when namespaces
  AND handler IN (SELECT value FROM json_each(:handlers))  -- when handlers
  AND task_id = :task_id  -- when task_id
;

-- live_work --
-- Whether any step could still run without outside action (for --burst workers): running
-- (it may release children; not a step waiting for its child task, whose own steps count),
-- or claimable with one of `handlers` (when given).
SELECT count(*) AS n FROM steps
WHERE ((status = 'in_progress' AND child_task_id IS NULL)
       OR (claimable_at IS NOT NULL
           AND handler IN (SELECT value FROM json_each(:handlers))  -- when handlers
       ))
  AND namespace IN (SELECT value FROM json_each(:namespaces))  -- when namespaces
  AND task_id = :task_id  -- when task_id
;

-- notify_steps_ready --
-- SQLite has no notifications; workers poll.
SELECT 1;

-- held_steps --
-- Steps a worker still holds (to release them when it stops).
SELECT id, task_id, claim_token FROM steps
WHERE claimed_by = :worker_id AND status = 'in_progress';

-- ancestor_results --
-- The results of the step called `name` upstream of a step (any number of edges up).
WITH RECURSIVE up (id) AS (
    SELECT from_step_id FROM step_edges WHERE to_step_id = :step_id
    UNION
    SELECT e.from_step_id FROM step_edges e JOIN up ON e.to_step_id = up.id
)
SELECT s.name, s.status, s.results FROM up JOIN steps s ON s.id = up.id
WHERE s.name = :name;

-- all_ancestor_results --
-- Every step upstream of a step, with its results.
WITH RECURSIVE up (id) AS (
    SELECT from_step_id FROM step_edges WHERE to_step_id = :step_id
    UNION
    SELECT e.from_step_id FROM step_edges e JOIN up ON e.to_step_id = up.id
)
SELECT s.name, s.status, s.results FROM up JOIN steps s ON s.id = up.id
ORDER BY s.position;
