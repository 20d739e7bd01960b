-- 0008 time and priority: delayed start (run_at) and claim priority.

-- When the task may start (NULL: at once); no step is claimable before it.
ALTER TABLE tasker.tasks ADD COLUMN run_at timestamptz;
-- Higher first; the template's priority unless the request gave one.
ALTER TABLE tasker.tasks ADD COLUMN priority integer NOT NULL DEFAULT 0;
-- The task's priority, copied onto each step so that the claim reads one index.
ALTER TABLE tasker.steps ADD COLUMN priority integer NOT NULL DEFAULT 0;

-- The claim query: the highest priority first, then the oldest claimable. Partial like
-- steps_claimable_idx, which stays for next_claimable_at (the earliest claimable time).
CREATE INDEX steps_claim_priority_idx ON tasker.steps (priority DESC, claimable_at, id)
    WHERE claimable_at IS NOT NULL;

-- Readiness learns `scheduled`: a pending step whose parents are done waits for its task's
-- run_at. Otherwise as in 0007 (same signature and planner settings).
CREATE OR REPLACE FUNCTION tasker.step_readiness_of(
    task_ids bigint[], step_ids bigint[], now timestamptz
)
RETURNS TABLE (
    workflow_step_id        bigint,
    task_id                 bigint,
    name                    text,
    current_state           text,
    dependencies_satisfied  boolean,
    retry_eligible          boolean,
    ready_for_execution     boolean,
    total_parents           integer,
    completed_parents       integer,
    attempts                integer,
    max_attempts            integer,
    next_retry_at           timestamptz,
    last_attempted_at       timestamptz,
    blocking_reason         text,
    "position"              integer
)
LANGUAGE plpgsql STABLE
SET plan_cache_mode = force_custom_plan
SET enable_seqscan = off
SET jit = off
AS $fn$
BEGIN
    RETURN QUERY
    WITH parent_counts AS (
        SELECT e.to_step_id AS step_id,
               count(*)::integer AS n_parents,
               (count(*) FILTER (WHERE p.status IN ('complete', 'resolved_manually')))::integer
                   AS n_done,
               (count(*) FILTER (WHERE p.status = 'skipped'))::integer AS n_skipped
        FROM tasker.step_edges e
        JOIN tasker.steps p ON p.id = e.from_step_id
        WHERE e.task_id = ANY ($1) AND p.task_id = ANY ($1)
        GROUP BY e.to_step_id
    ),
    counted AS (
        SELECT s.id, s.task_id, s.name, s.position, s.status, s.attempts, s.max_attempts,
               s.retryable, s.next_retry_at, s.last_attempted_at, s.join_mode,
               coalesce(t.run_at > $3, false) AS scheduled,
               coalesce(pc.n_parents, 0) AS n_parents,
               coalesce(pc.n_done, 0) AS n_done,
               coalesce(pc.n_skipped, 0) AS n_skipped,
               (s.wait_for IS NOT NULL AND NOT EXISTS (
                   SELECT 1 FROM tasker.task_signals g
                   WHERE g.task_id = s.task_id AND g.name = s.wait_for)) AS signal_missing
        FROM tasker.steps s
        JOIN tasker.tasks t ON t.id = s.task_id
        LEFT JOIN parent_counts pc ON pc.step_id = s.id
        WHERE s.task_id = ANY ($1) AND ($2 IS NULL OR s.id = ANY ($2))
    ),
    flags AS (
        SELECT c.*,
               CASE WHEN c.join_mode = 'any'
                    THEN c.n_parents = 0
                         OR (c.n_done + c.n_skipped = c.n_parents AND c.n_done > 0)
                    ELSE c.n_done = c.n_parents
               END AS deps_ok,
               (c.status = 'error' AND c.retryable AND c.attempts < c.max_attempts
                AND (c.next_retry_at IS NULL OR c.next_retry_at <= $3)) AS eligible
        FROM counted c
    ),
    ready AS (
        SELECT f.*,
               f.deps_ok AND ((f.status = 'pending' AND NOT f.signal_missing AND NOT f.scheduled)
                              OR f.eligible)
                   AS is_ready
        FROM flags f
    )
    SELECT r.id, r.task_id, r.name, r.status, r.deps_ok, r.eligible, r.is_ready,
           r.n_parents, r.n_done, r.attempts, r.max_attempts, r.next_retry_at,
           r.last_attempted_at,
           CASE
               WHEN r.is_ready THEN NULL
               WHEN r.status IN ('complete', 'resolved_manually') THEN 'finished'
               WHEN r.status = 'skipped' THEN 'skipped'
               WHEN r.status = 'cancelled' THEN 'cancelled'
               WHEN r.status = 'in_progress' THEN 'in_progress'
               WHEN r.status = 'error' AND NOT r.retryable THEN 'not_retryable'
               WHEN r.status = 'error' AND r.attempts >= r.max_attempts THEN 'retries_exhausted'
               WHEN r.status = 'error' AND NOT r.eligible THEN 'waiting_for_backoff'
               WHEN r.status = 'pending' AND r.deps_ok AND r.scheduled THEN 'scheduled'
               WHEN r.status = 'pending' AND r.deps_ok AND r.signal_missing
                   THEN 'waiting_for_signal'
               ELSE 'dependencies_not_satisfied'
           END,
           r.position
    FROM ready r;
END;
$fn$;
