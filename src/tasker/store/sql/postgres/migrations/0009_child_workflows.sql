-- 0009 child workflows: a step that runs another template as a child task.

-- The template a step runs as a child task ({namespace, name, version}; the version is pinned
-- when the task is created); NULL: the step runs no child.
ALTER TABLE tasker.steps ADD COLUMN workflow jsonb;
-- The child task the step started (it waits for it while in_progress).
ALTER TABLE tasker.steps ADD COLUMN child_task_id bigint;
-- A child task's parent task and the step that started it. No foreign key: retention
-- prunes finished tasks one by one, parents and children alike.
ALTER TABLE tasker.tasks ADD COLUMN parent_task_id bigint;
ALTER TABLE tasker.tasks ADD COLUMN parent_step_id bigint;

-- At most one child per step, whatever retries or races happen: a second insert fails.
CREATE UNIQUE INDEX tasks_parent_step_idx ON tasker.tasks (parent_step_id)
    WHERE parent_step_id IS NOT NULL;
-- A task's children (to cancel them with it).
CREATE INDEX tasks_parent_task_idx ON tasker.tasks (parent_task_id)
    WHERE parent_task_id IS NOT NULL;

-- Readiness learns that a running step with a child task waits for it: blocking_reason
-- `waiting_for_child` (docs/sql-functions.md). Otherwise as in 0008.
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
               s.child_task_id,
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
               WHEN r.status = 'in_progress' AND r.child_task_id IS NOT NULL
                   THEN 'waiting_for_child'
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
