-- 0011 flow control: concurrency limits (per step, per task key) and rate limits.

-- A step with a concurrency limit holds one slot of its key while it is claimed (has a claim
-- token, so under a lease): "step:NS/TEMPLATE.STEP", at most concurrency_limit at once.
ALTER TABLE tasker.steps ADD COLUMN concurrency_key text;
ALTER TABLE tasker.steps ADD COLUMN concurrency_limit integer;
-- The task's key, "task:NS/TEMPLATE:FIELD=VALUE": at most task_key_limit tasks with the same
-- key have claimed steps at once.
ALTER TABLE tasker.steps ADD COLUMN task_key text;
ALTER TABLE tasker.steps ADD COLUMN task_key_limit integer;
-- A rate limit, "rate:NS/TEMPLATE.STEP": rate_count claims per rate_period_seconds.
ALTER TABLE tasker.steps ADD COLUMN rate_key text;
ALTER TABLE tasker.steps ADD COLUMN rate_count integer;
ALTER TABLE tasker.steps ADD COLUMN rate_period_seconds double precision;
-- Why a claimable step is held back: 'concurrency_limit' (claimable_at is the end of time
-- until a slot frees) or 'rate_limited' (claimable_at is its token's time).
ALTER TABLE tasker.steps ADD COLUMN flow_wait text
    CHECK (flow_wait IN ('concurrency_limit', 'rate_limited'));
-- The step holds a token for its claimable_at (a rate-limited claim reserved it).
ALTER TABLE tasker.steps ADD COLUMN rate_reserved boolean NOT NULL DEFAULT false;

-- Each rate key's theoretical arrival time (GCRA): the next token is due at arrival_at minus
-- the burst allowance.
CREATE TABLE tasker.rate_limits (
    key         text PRIMARY KEY,
    arrival_at  timestamptz NOT NULL
);

-- Slots in use, counted per key; and the steps waiting for one, best first.
CREATE INDEX steps_concurrency_running_idx ON tasker.steps (concurrency_key)
    WHERE claim_token IS NOT NULL AND concurrency_key IS NOT NULL;
CREATE INDEX steps_task_key_running_idx ON tasker.steps (task_key, task_id)
    WHERE claim_token IS NOT NULL AND task_key IS NOT NULL;
CREATE INDEX steps_concurrency_parked_idx ON tasker.steps (concurrency_key, priority DESC, id)
    WHERE flow_wait = 'concurrency_limit';
CREATE INDEX steps_task_key_parked_idx ON tasker.steps (task_key, priority DESC, task_id)
    WHERE flow_wait = 'concurrency_limit';

-- Readiness learns `concurrency_limit` and `rate_limited`: a step held back by flow control
-- is not ready until its claimable_at. Otherwise as in 0009 (same signature and settings).
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
               (s.flow_wait IS NOT NULL AND s.claimable_at > $3) AS flow_waiting, s.flow_wait,
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
               f.deps_ok AND NOT f.flow_waiting
                   AND ((f.status = 'pending' AND NOT f.signal_missing AND NOT f.scheduled)
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
               WHEN r.flow_waiting THEN r.flow_wait
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
