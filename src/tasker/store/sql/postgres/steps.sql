-- insert_steps --
-- Create all steps of a task in one statement; roots are claimable from start_at (now, or the
-- task's run_at), unless they wait for a signal. Every step carries the task's priority.
INSERT INTO tasker.steps (task_id, namespace, name, position, handler, config, status,
    max_attempts, retryable, timeout_seconds, backoff_base_seconds, backoff_max_seconds,
    backoff_jitter, total_parents, remaining_parents, claimable_at, ready_at, transition_count,
    created_at, updated_at, join_mode, branches, wait_for, wait_timeout_seconds, map_path,
    max_items, priority, workflow, concurrency_key, concurrency_limit, task_key, task_key_limit,
    rate_key, rate_count, rate_period_seconds)
SELECT %(task_id)s, %(namespace)s, r.name, r.position, r.handler, r.config, 'pending',
    r.max_attempts, r.retryable, r.timeout_seconds, r.backoff_base_seconds,
    r.backoff_max_seconds, r.backoff_jitter, r.total_parents, r.total_parents,
    CASE WHEN r.total_parents = 0 AND r.wait_for IS NULL AND r.map_path IS NULL
         THEN %(start_at)s::timestamptz END,
    CASE WHEN r.total_parents = 0 AND r.wait_for IS NULL AND r.map_path IS NULL
         THEN %(start_at)s::timestamptz END,
    1, %(now)s, %(now)s, r.join_mode, r.branches, r.wait_for, r.wait_timeout_seconds,
    r.map_path, r.max_items, %(priority)s, r.workflow, r.concurrency_key, r.concurrency_limit,
    %(task_key)s, %(task_key_limit)s, r.rate_key, r.rate_count, r.rate_period_seconds
FROM jsonb_to_recordset(%(rows)s) AS r(name text, position integer, handler text,
    config jsonb, max_attempts integer, retryable boolean, timeout_seconds double precision,
    backoff_base_seconds double precision, backoff_max_seconds double precision,
    backoff_jitter double precision, total_parents integer, join_mode text, branches jsonb,
    wait_for text, wait_timeout_seconds double precision, map_path text, max_items integer,
    workflow jsonb, concurrency_key text, concurrency_limit integer, rate_key text,
    rate_count integer, rate_period_seconds double precision)
ORDER BY r.position
RETURNING id, task_id, name, handler, claimable_at, total_parents, wait_for,
    wait_timeout_seconds, workflow, map_path, map_item;

-- insert_edges --
-- Create a task's dependency edges, by step name.
INSERT INTO tasker.step_edges (task_id, from_step_id, to_step_id)
SELECT %(task_id)s, p.id, c.id
FROM jsonb_to_recordset(%(rows)s) AS r(parent text, child text)
JOIN tasker.steps p ON p.task_id = %(task_id)s AND p.name = r.parent
JOIN tasker.steps c ON c.task_id = %(task_id)s AND c.name = r.child;

-- claim_steps --
-- Claim up to `limit` claimable steps (of `handlers`, when given), the highest priority first,
-- then the oldest (index steps_claim_priority_idx), skipping rows other workers hold.
-- A step under flow control (a concurrency or rate limit) is claimed tentatively: its start
-- times are set only once tasker.engine.flow admits it (admit_steps), or it is put back.
WITH picked AS (
    SELECT id, status FROM tasker.steps
    WHERE claimable_at <= %(now)s
      AND namespace = ANY(%(namespaces)s::text[])  -- when namespaces
      AND handler = ANY(%(handlers)s::text[])  -- when handlers
      AND task_id = %(task_id)s  -- when task_id
    ORDER BY priority DESC, claimable_at, id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
UPDATE tasker.steps s
SET status = 'in_progress', attempts = s.attempts + 1, claimable_at = NULL,
    claimed_by = %(worker_id)s, claim_token = md5(random()::text || s.id::text),
    lease_expires_at = %(lease_expires_at)s,
    last_attempted_at = CASE WHEN s.concurrency_key IS NULL AND s.task_key IS NULL
                                  AND s.rate_key IS NULL THEN %(now)s
                             ELSE s.last_attempted_at END,
    started_at = CASE WHEN s.concurrency_key IS NULL AND s.task_key IS NULL
                           AND s.rate_key IS NULL THEN COALESCE(s.started_at, %(now)s)
                      ELSE s.started_at END,
    updated_at = %(now)s, transition_count = s.transition_count + 1
FROM picked
WHERE s.id = picked.id
RETURNING s.id, s.task_id, s.namespace, s.name, s.handler, s.config, s.attempts,
    s.max_attempts, s.timeout_seconds, s.claim_token, s.transition_count, s.total_parents,
    s.wait_for, s.map_item, s.map_index, picked.status AS from_state, s.created_at, s.ready_at,
    s.priority, s.concurrency_key, s.concurrency_limit, s.task_key, s.task_key_limit,
    s.rate_key, s.rate_count, s.rate_period_seconds, s.rate_reserved;

-- parent_results --
-- Results of the parents of the given steps, by parent name.
SELECT e.to_step_id AS step_id, p.name, p.results
FROM tasker.step_edges e JOIN tasker.steps p ON p.id = e.from_step_id
WHERE e.to_step_id = ANY(%(step_ids)s::bigint[]);

-- task_contexts --
-- Context and identity of tasks, for handlers.
SELECT id, context, namespace, name, version, status, trace_context FROM tasker.tasks
WHERE id = ANY(%(task_ids)s::bigint[]);

-- lock_running_steps --
-- Lock steps about to get a result; only still-running ones under their claim token.
SELECT s.id, s.task_id, s.name, s.attempts, s.max_attempts, s.retryable,
    s.backoff_base_seconds, s.backoff_max_seconds, s.backoff_jitter, s.claim_token,
    s.claimed_by, s.last_attempted_at, s.created_at, s.branches, s.workflow, s.map_item,
    s.group_id, s.concurrency_key, s.task_key
FROM tasker.steps s
JOIN jsonb_to_recordset(%(rows)s) AS r(id bigint, claim_token text)
  ON s.id = r.id AND s.claim_token = r.claim_token
WHERE s.status = 'in_progress'
ORDER BY s.id
FOR UPDATE OF s;

-- finish_steps --
-- Record attempt outcomes: complete, error (with retry time) or cancelled; refund 1 gives back
-- the attempt of a step released unfinished by a stopping worker.
UPDATE tasker.steps s
SET status = r.status, results = r.results, error = r.error, retryable = r.retryable,
    next_retry_at = r.next_retry_at, claimable_at = r.next_retry_at,
    ready_at = COALESCE(r.next_retry_at, s.ready_at),
    completed_at = CASE WHEN r.status = 'complete' THEN %(now)s::timestamptz END,
    claimed_by = NULL, claim_token = NULL, lease_expires_at = NULL, wait_expires_at = NULL,
    updated_at = %(now)s, transition_count = s.transition_count + 1,
    attempts = s.attempts - COALESCE(r.refund, 0)
FROM jsonb_to_recordset(%(rows)s) AS r(id bigint, status text, results jsonb, error jsonb,
    retryable boolean, next_retry_at timestamptz, refund integer)
WHERE s.id = r.id
RETURNING s.id, s.task_id, s.name, s.status, s.transition_count, s.attempts, s.max_attempts,
    s.group_id;

-- release_children --
-- Children of steps that just finished (step_ids complete or resolved, skipped_ids skipped) lose
-- a remaining parent. At zero a pending child that waits for no signal becomes claimable,
-- unless its join rule makes it skipped (all: a parent skipped; any: every parent skipped),
-- at once or at its task's run_at.
UPDATE tasker.steps s
SET remaining_parents = s.remaining_parents - e.n,
    skipped_parents = s.skipped_parents + e.n_skipped,
    claimable_at = CASE WHEN s.remaining_parents - e.n = 0 AND s.status = 'pending'
                             AND s.wait_for IS NULL AND s.map_path IS NULL
                             AND CASE WHEN s.join_mode = 'any'
                                      THEN s.skipped_parents + e.n_skipped < s.total_parents
                                      ELSE s.skipped_parents + e.n_skipped = 0 END
                        THEN GREATEST(%(now)s::timestamptz, (SELECT t.run_at FROM tasker.tasks t
                                                             WHERE t.id = s.task_id))
                        ELSE s.claimable_at END,
    ready_at = CASE WHEN s.remaining_parents - e.n = 0 AND s.status = 'pending'
                    THEN GREATEST(%(now)s::timestamptz, (SELECT t.run_at FROM tasker.tasks t
                                                         WHERE t.id = s.task_id))
                    ELSE s.ready_at END,
    updated_at = %(now)s
FROM (SELECT to_step_id, count(*)::integer AS n,
             (count(*) FILTER (WHERE from_step_id = ANY(%(skipped_ids)s::bigint[])))::integer
                 AS n_skipped
      FROM tasker.step_edges
      WHERE from_step_id = ANY(%(step_ids)s::bigint[])
         OR from_step_id = ANY(%(skipped_ids)s::bigint[])
      GROUP BY to_step_id) e
WHERE s.id = e.to_step_id
RETURNING s.id, s.task_id, s.name, s.status, s.remaining_parents, s.skipped_parents,
    s.total_parents, s.join_mode, s.handler, s.retryable, s.wait_for, s.wait_timeout_seconds,
    s.claimable_at, s.map_path, s.max_items, s.workflow, s.map_item;

-- skip_steps --
-- Pending steps that will not run (a branch not taken, or their join rule) become skipped.
UPDATE tasker.steps
SET status = 'skipped', claimable_at = NULL, wait_expires_at = NULL, completed_at = %(now)s,
    updated_at = %(now)s, transition_count = transition_count + 1
WHERE id = ANY(%(step_ids)s::bigint[]) AND status = 'pending'
RETURNING id, task_id, name, transition_count;

-- start_waits --
-- Steps whose parents are done start waiting for their signal; a wait with a timeout gets
-- its deadline (rows: id, deadline).
UPDATE tasker.steps s
SET wait_expires_at = r.deadline, updated_at = %(now)s
FROM jsonb_to_recordset(%(rows)s) AS r(id bigint, deadline timestamptz)
WHERE s.id = r.id AND s.status = 'pending';

-- release_waits --
-- Waiting steps whose signal arrived and that have a handler become claimable (at once or at
-- their task's run_at).
UPDATE tasker.steps s
SET claimable_at = GREATEST(%(now)s::timestamptz,
                            (SELECT t.run_at FROM tasker.tasks t WHERE t.id = s.task_id)),
    ready_at = GREATEST(%(now)s::timestamptz,
                        (SELECT t.run_at FROM tasker.tasks t WHERE t.id = s.task_id)),
    wait_expires_at = NULL, updated_at = %(now)s
WHERE id = ANY(%(step_ids)s::bigint[]) AND status = 'pending';

-- step_signals --
-- The signals that arrived for the given steps (by the name each waits for).
SELECT s.id AS step_id, g.payload
FROM tasker.steps s
JOIN tasker.task_signals g ON g.task_id = s.task_id AND g.name = s.wait_for
WHERE s.id = ANY(%(step_ids)s::bigint[]);

-- expired_waits --
-- Pending steps whose wait for a signal ran past its deadline, oldest first.
SELECT id, task_id, name, wait_for, wait_timeout_seconds FROM tasker.steps
WHERE wait_expires_at < %(now)s AND status = 'pending'
ORDER BY wait_expires_at
LIMIT %(limit)s;

-- fail_expired_waits --
-- Waits that timed out fail for good (rows: id, error); a step signalled meanwhile is kept.
UPDATE tasker.steps s
SET status = 'error', retryable = false, error = r.error, claimable_at = NULL,
    wait_expires_at = NULL, updated_at = %(now)s, transition_count = s.transition_count + 1
FROM jsonb_to_recordset(%(rows)s) AS r(id bigint, error jsonb)
WHERE s.id = r.id AND s.status = 'pending' AND s.wait_expires_at < %(now)s
RETURNING s.id, s.task_id, s.name, s.transition_count, s.attempts, s.max_attempts;

-- lock_task_steps --
-- Lock a task's steps, by name (all of them when names is null), for a manual change.
SELECT id, task_id, name, status, attempts, max_attempts, retryable, remaining_parents,
    skipped_parents, total_parents, join_mode, handler, branches, wait_for,
    wait_timeout_seconds, map_path, group_id, claim_token, transition_count, workflow,
    child_task_id, map_item
FROM tasker.steps
WHERE task_id = %(task_id)s
  AND name = ANY(%(names)s::text[])  -- when names
ORDER BY id
FOR UPDATE;

-- set_steps_status --
-- Manual change of steps' status (cancel, retry, resolve); attempts reset on manual retry.
UPDATE tasker.steps s
SET status = r.to_state,
    attempts = CASE WHEN r.reset_attempts THEN 0 ELSE s.attempts END,
    retryable = CASE WHEN r.reset_attempts THEN true ELSE s.retryable END,
    results = COALESCE(r.results, s.results),
    error = CASE WHEN r.reset_attempts THEN NULL ELSE s.error END,
    next_retry_at = CASE WHEN r.reset_attempts THEN NULL ELSE s.next_retry_at END,
    claimable_at = CASE WHEN r.to_state = 'pending' AND s.remaining_parents = 0
                             AND s.wait_for IS NULL AND s.map_path IS NULL
                        THEN %(now)s::timestamptz END,
    ready_at = CASE WHEN r.to_state = 'pending' AND s.remaining_parents = 0
                    THEN %(now)s::timestamptz ELSE s.ready_at END,
    wait_expires_at = NULL,
    completed_at = CASE WHEN r.to_state = 'resolved_manually' THEN %(now)s::timestamptz
                        ELSE s.completed_at END,
    claimed_by = NULL, claim_token = NULL, lease_expires_at = NULL, updated_at = %(now)s,
    transition_count = s.transition_count + 1
FROM jsonb_to_recordset(%(rows)s) AS r(id bigint, from_state text, to_state text,
    reset_attempts boolean, results jsonb)
WHERE s.id = r.id AND s.status = r.from_state
RETURNING s.id, s.task_id, s.name, s.status, s.transition_count, s.attempts, s.max_attempts;

-- expired_leases --
-- Running steps whose lease ran out (their worker died or hung), oldest first.
SELECT id, task_id, claim_token, claimed_by, lease_expires_at FROM tasker.steps
WHERE status = 'in_progress' AND lease_expires_at < %(now)s
ORDER BY lease_expires_at
LIMIT %(limit)s
FOR UPDATE SKIP LOCKED;

-- try_reaper_lock --
-- Only one worker at a time reaps expired leases.
SELECT pg_try_advisory_xact_lock(7346292) AS acquired;

-- extend_leases --
-- Heartbeat: push back the lease of every step this worker holds.
UPDATE tasker.steps SET lease_expires_at = %(lease_expires_at)s
WHERE claimed_by = %(worker_id)s AND status = 'in_progress'
RETURNING id;

-- next_claimable_at --
-- When the next step (of `handlers`, when given) becomes claimable (to sleep until then); a
-- step waiting for a concurrency slot has no time: a recorder unparks it.
SELECT min(claimable_at) AS claimable_at FROM tasker.steps
WHERE claimable_at IS NOT NULL AND flow_wait IS DISTINCT FROM 'concurrency_limit'
  AND namespace = ANY(%(namespaces)s::text[])  -- when namespaces
  AND handler = ANY(%(handlers)s::text[])  -- when handlers
  AND task_id = %(task_id)s  -- when task_id
;

-- live_work --
-- Whether any step could still run without outside action (for --burst workers): running
-- (it may release children; not a step waiting for its child task, whose own steps count),
-- or claimable with one of `handlers` (when given).
SELECT count(*) AS n FROM tasker.steps
WHERE ((status = 'in_progress' AND child_task_id IS NULL)
       OR (claimable_at IS NOT NULL
           AND handler = ANY(%(handlers)s::text[])  -- when handlers
       ))
  AND namespace = ANY(%(namespaces)s::text[])  -- when namespaces
  AND task_id = %(task_id)s  -- when task_id
;

-- notify_steps_ready --
-- Wake idle workers once this transaction commits.
SELECT pg_notify('tasker_steps', '');

-- held_steps --
-- Steps a worker still holds (to release them when it stops).
SELECT id, task_id, claim_token FROM tasker.steps
WHERE claimed_by = %(worker_id)s AND status = 'in_progress';

-- ancestor_results --
-- The results of the step called `name` upstream of a step (any number of edges up).
WITH RECURSIVE up (id) AS (
    SELECT from_step_id FROM tasker.step_edges WHERE to_step_id = %(step_id)s
    UNION
    SELECT e.from_step_id FROM tasker.step_edges e JOIN up ON e.to_step_id = up.id
)
SELECT s.name, s.status, s.results FROM up JOIN tasker.steps s ON s.id = up.id
WHERE s.name = %(name)s;

-- all_ancestor_results --
-- Every step upstream of a step, with its results.
WITH RECURSIVE up (id) AS (
    SELECT from_step_id FROM tasker.step_edges WHERE to_step_id = %(step_id)s
    UNION
    SELECT e.from_step_id FROM tasker.step_edges e JOIN up ON e.to_step_id = up.id
)
SELECT s.name, s.status, s.results FROM up JOIN tasker.steps s ON s.id = up.id
ORDER BY s.position;
