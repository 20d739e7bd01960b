-- 0007 dynamic workflows: the skipped state, join rules, branches and signals.

-- A step that will not run because a branch was not taken is `skipped`.
ALTER TABLE tasker.steps DROP CONSTRAINT steps_status_check;
ALTER TABLE tasker.steps ADD CONSTRAINT steps_status_check CHECK (status IN
    ('pending', 'in_progress', 'complete', 'error', 'cancelled', 'resolved_manually', 'skipped'));

-- `all`: runs when every parent is complete/resolved, skipped when one is skipped; `any`:
-- runs once every parent is finished and one is not skipped, skipped when all are.
ALTER TABLE tasker.steps ADD COLUMN join_mode text NOT NULL DEFAULT 'all'
    CHECK (join_mode IN ('all', 'any'));
-- Parents that were skipped (counted into remaining_parents too, as finished).
ALTER TABLE tasker.steps ADD COLUMN skipped_parents integer NOT NULL DEFAULT 0;
-- Children this step chooses among with tasker.Branch; NULL: it does not choose.
ALTER TABLE tasker.steps ADD COLUMN branches jsonb;
-- The signal this step waits for once its parents are done; NULL: it waits for none.
ALTER TABLE tasker.steps ADD COLUMN wait_for text;
-- How long it waits for the signal (NULL: for ever), and the deadline once it waits.
ALTER TABLE tasker.steps ADD COLUMN wait_timeout_seconds double precision;
ALTER TABLE tasker.steps ADD COLUMN wait_expires_at timestamptz;

-- Map (fan-out decided at run time): a group step names a list in a parent's results
-- (map_path: PARENT.KEY[.KEY...], at most max_items long); once its parents are done, one
-- instance step per item is created with group_id, map_index and map_item. The group's own
-- state is derived from its instances'.
ALTER TABLE tasker.steps ADD COLUMN map_path text;
ALTER TABLE tasker.steps ADD COLUMN max_items integer;
ALTER TABLE tasker.steps ADD COLUMN group_id bigint;
ALTER TABLE tasker.steps ADD COLUMN map_index integer;
ALTER TABLE tasker.steps ADD COLUMN map_item jsonb;
-- The most steps the task may have, map instances included (TASKER_MAX_TASK_STEPS).
ALTER TABLE tasker.tasks ADD COLUMN max_steps integer;

-- A group's instances, in item order.
CREATE INDEX steps_group_idx ON tasker.steps (group_id, map_index) WHERE group_id IS NOT NULL;

-- Signals delivered to a task, by name; one per name (a second must carry the same payload).
CREATE TABLE tasker.task_signals (
    id          bigserial PRIMARY KEY,
    task_id     bigint NOT NULL REFERENCES tasker.tasks (id) ON DELETE CASCADE,
    name        text NOT NULL,
    payload     jsonb,
    actor       text,
    created_at  timestamptz NOT NULL,
    UNIQUE (task_id, name)
);

-- Waits that time out: the reaper finds them by deadline.
CREATE INDEX steps_wait_expires_idx ON tasker.steps (wait_expires_at)
    WHERE wait_expires_at IS NOT NULL;

-- Readiness learns the new rules (docs/sql-functions.md): `join`, skipped parents, the
-- skipped state, and steps waiting for a signal. Same signature and planner settings as 0002.
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
               coalesce(pc.n_parents, 0) AS n_parents,
               coalesce(pc.n_done, 0) AS n_done,
               coalesce(pc.n_skipped, 0) AS n_skipped,
               (s.wait_for IS NOT NULL AND NOT EXISTS (
                   SELECT 1 FROM tasker.task_signals g
                   WHERE g.task_id = s.task_id AND g.name = s.wait_for)) AS signal_missing
        FROM tasker.steps s
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
               f.deps_ok AND ((f.status = 'pending' AND NOT f.signal_missing) OR f.eligible)
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
               WHEN r.status = 'pending' AND r.deps_ok AND r.signal_missing
                   THEN 'waiting_for_signal'
               ELSE 'dependencies_not_satisfied'
           END,
           r.position
    FROM ready r;
END;
$fn$;

-- The execution context counts skipped steps as finished: a task whose steps are all
-- complete, resolved or skipped is complete. Otherwise as in 0002.
CREATE OR REPLACE FUNCTION tasker.get_task_execution_contexts_batch(
    task_ids bigint[], now timestamptz DEFAULT now()
)
RETURNS TABLE (
    task_id                bigint,
    status                 text,
    total_steps            integer,
    pending_steps          integer,
    in_progress_steps      integer,
    completed_steps        integer,
    failed_steps           integer,
    ready_steps            integer,
    execution_status       text,
    recommended_action     text,
    completion_percentage  numeric,
    health_status          text
)
LANGUAGE sql STABLE AS $$
    WITH counts AS (
        SELECT r.task_id,
               count(*)::integer AS n_total,
               (count(*) FILTER (WHERE r.current_state = 'pending'))::integer AS n_pending,
               (count(*) FILTER (WHERE r.current_state = 'in_progress'))::integer AS n_running,
               (count(*) FILTER (WHERE r.current_state IN ('complete', 'resolved_manually', 'skipped')))
                   ::integer AS n_done,
               (count(*) FILTER (WHERE r.current_state = 'error'))::integer AS n_failed,
               (count(*) FILTER (WHERE r.ready_for_execution))::integer AS n_ready,
               (count(*) FILTER (WHERE r.blocking_reason IN ('not_retryable', 'retries_exhausted')))
                   ::integer AS n_blocked,
               (count(*) FILTER (WHERE r.blocking_reason = 'waiting_for_backoff'))::integer
                   AS n_backoff,
               (count(*) FILTER (WHERE r.current_state = 'cancelled'))::integer AS n_cancelled
        FROM tasker.step_readiness_of($1, NULL, $2) r
        GROUP BY r.task_id
    ),
    verdict AS (
        SELECT t.id, t.status,
               coalesce(c.n_total, 0) AS n_total, coalesce(c.n_pending, 0) AS n_pending,
               coalesce(c.n_running, 0) AS n_running, coalesce(c.n_done, 0) AS n_done,
               coalesce(c.n_failed, 0) AS n_failed, coalesce(c.n_ready, 0) AS n_ready,
               CASE
                   WHEN t.status = 'cancelled' THEN 'cancelled'
                   WHEN coalesce(c.n_ready, 0) > 0 THEN 'has_ready_steps'
                   WHEN coalesce(c.n_running, 0) > 0 THEN 'processing'
                   WHEN coalesce(c.n_done, 0) = coalesce(c.n_total, 0) THEN 'all_complete'
                   WHEN c.n_blocked > 0 THEN 'blocked_by_failures'
                   WHEN c.n_backoff > 0 THEN 'waiting_for_retry'
                   WHEN c.n_cancelled > 0 THEN 'cancelled'
                   ELSE 'waiting_for_dependencies'
               END AS execution_status
        FROM tasker.tasks t
        LEFT JOIN counts c ON c.task_id = t.id
        WHERE t.id = ANY ($1)
    )
    SELECT v.id, v.status, v.n_total, v.n_pending, v.n_running, v.n_done, v.n_failed, v.n_ready,
           v.execution_status,
           CASE v.execution_status
               WHEN 'has_ready_steps' THEN 'execute_ready_steps'
               WHEN 'processing' THEN 'wait_for_completion'
               WHEN 'all_complete' THEN
                   CASE WHEN v.status IN ('complete', 'resolved_manually') THEN 'none'
                        ELSE 'finalize_task' END
               WHEN 'blocked_by_failures' THEN 'handle_failures'
               WHEN 'waiting_for_retry' THEN 'wait_for_completion'
               WHEN 'waiting_for_dependencies' THEN 'wait_for_dependencies'
               ELSE 'none'
           END,
           CASE WHEN v.n_total = 0 THEN 0.00
                ELSE round(100.0 * v.n_done / v.n_total, 2) END,
           CASE
               WHEN v.execution_status = 'cancelled' THEN 'unknown'
               WHEN v.execution_status = 'blocked_by_failures' THEN 'blocked'
               WHEN v.n_failed > 0 THEN 'recovering'
               ELSE 'healthy'
           END
    FROM verdict v
    ORDER BY v.id
$$;
