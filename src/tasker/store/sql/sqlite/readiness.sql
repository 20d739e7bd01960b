-- Readiness, execution context, dependency levels, health and analytics: the same rules as
-- the PostgreSQL functions of migrations 0002, 0007, 0008, 0009 and 0011, as plain SQL (SQLite has no stored
-- functions).
-- Times are TEXT in one fixed format, so they compare as strings; durations use exact
-- integer microseconds: whole seconds from strftime('%s') on the first 19 characters plus
-- the 6 fractional digits (julianday() would round to milliseconds).
--
-- The rules are written once, in the fragments @readiness and @execution_context below;
-- each query names the tasks it is about in a first CTE, wanted(id), and includes the
-- fragments with {@name} (tasker.store.queries substitutes them when it loads the file).

-- @readiness --
-- Every step of the wanted tasks with its readiness columns (CTE readiness), by the rules of
-- docs/sql-functions.md.
task_steps AS (
    SELECT s.id, s.task_id, s.name, s.position, s.status, s.attempts, s.max_attempts,
           s.retryable, s.next_retry_at, s.last_attempted_at, s.join_mode, s.child_task_id,
           (s.flow_wait IS NOT NULL AND s.claimable_at > :now) AS flow_waiting, s.flow_wait,
           coalesce((SELECT t.run_at FROM tasks t WHERE t.id = s.task_id), '') > :now
               AS scheduled,
           (s.wait_for IS NOT NULL AND NOT EXISTS (
               SELECT 1 FROM task_signals g
               WHERE g.task_id = s.task_id AND g.name = s.wait_for)) AS signal_missing
    FROM steps s
    WHERE s.task_id IN (SELECT id FROM wanted)
),
parent_counts AS (
    SELECT e.to_step_id AS step_id,
           count(*) AS total_parents,
           sum(p.status IN ('complete', 'resolved_manually')) AS completed_parents,
           sum(p.status = 'skipped') AS skipped_parents
    -- CROSS JOIN pins the order: the task's edges by index, each parent by its rowid. Left
    -- free, the planner builds a Bloom filter over every edge in the table (history too).
    FROM step_edges e
    CROSS JOIN steps p ON p.id = e.from_step_id
    WHERE e.task_id IN (SELECT id FROM wanted)
    GROUP BY e.to_step_id
),
counted AS (
    SELECT s.*,
           coalesce(pc.total_parents, 0) AS n_parents,
           coalesce(pc.completed_parents, 0) AS n_done,
           coalesce(pc.skipped_parents, 0) AS n_skipped
    FROM task_steps s
    LEFT JOIN parent_counts pc ON pc.step_id = s.id
),
flags AS (
    SELECT c.*,
           CASE WHEN c.join_mode = 'any'
                THEN c.n_parents = 0 OR (c.n_done + c.n_skipped = c.n_parents AND c.n_done > 0)
                ELSE c.n_done = c.n_parents
           END AS deps_ok,
           (c.status = 'error' AND c.retryable AND c.attempts < c.max_attempts
            AND (c.next_retry_at IS NULL OR c.next_retry_at <= :now)) AS eligible
    FROM counted c
),
ready AS (
    SELECT f.*,
           (f.deps_ok AND NOT f.flow_waiting
            AND ((f.status = 'pending' AND NOT f.signal_missing AND NOT f.scheduled)
                 OR f.eligible))
               AS is_ready
    FROM flags f
),
readiness AS (
    SELECT r.id AS workflow_step_id, r.task_id, r.name, r.status AS current_state,
           r.deps_ok AS dependencies_satisfied, r.eligible AS retry_eligible,
           r.is_ready AS ready_for_execution, r.n_parents AS total_parents,
           r.n_done AS completed_parents, r.attempts, r.max_attempts, r.next_retry_at,
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
           END AS blocking_reason,
           r.position
    FROM ready r
)

-- @execution_context --
-- Step counts and the verdict of each wanted task, from the readiness rows: the final SELECT.
counts AS (
    SELECT r.task_id,
           count(*) AS n_total,
           sum(r.current_state = 'pending') AS n_pending,
           sum(r.current_state = 'in_progress') AS n_running,
           sum(r.current_state IN ('complete', 'resolved_manually', 'skipped')) AS n_done,
           sum(r.current_state = 'error') AS n_failed,
           sum(r.ready_for_execution) AS n_ready,
           sum(r.blocking_reason IN ('not_retryable', 'retries_exhausted')) AS n_blocked,
           sum(r.blocking_reason = 'waiting_for_backoff') AS n_backoff,
           sum(r.current_state = 'cancelled') AS n_cancelled
    FROM readiness r
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
    FROM tasks t
    LEFT JOIN counts c ON c.task_id = t.id
    WHERE t.id IN (SELECT id FROM wanted)
)
SELECT v.id AS task_id, v.status, v.n_total AS total_steps, v.n_pending AS pending_steps,
       v.n_running AS in_progress_steps, v.n_done AS completed_steps,
       v.n_failed AS failed_steps, v.n_ready AS ready_steps, v.execution_status,
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
       END AS recommended_action,
       CASE WHEN v.n_total = 0 THEN 0.0
            ELSE round(100.0 * v.n_done / v.n_total, 2) END AS completion_percentage,
       CASE
           WHEN v.execution_status = 'cancelled' THEN 'unknown'
           WHEN v.execution_status = 'blocked_by_failures' THEN 'blocked'
           WHEN v.n_failed > 0 THEN 'recovering'
           ELSE 'healthy'
       END AS health_status
FROM verdict v
ORDER BY v.id

-- get_step_readiness_status --
-- Readiness of every step of one task (or only step_ids), with the reason a step is blocked.
WITH wanted AS (SELECT :task_id AS id),
{@readiness}
SELECT workflow_step_id, task_id, name, current_state, dependencies_satisfied, retry_eligible,
       ready_for_execution, total_parents, completed_parents, attempts, max_attempts,
       next_retry_at, last_attempted_at, blocking_reason
FROM readiness
WHERE :step_ids IS NULL OR workflow_step_id IN (SELECT value FROM json_each(:step_ids))
ORDER BY task_id, position, workflow_step_id;

-- get_step_readiness_status_batch --
-- Readiness of every step of several tasks, ordered by task then position.
WITH wanted AS (SELECT value AS id FROM json_each(:task_ids)),
{@readiness}
SELECT workflow_step_id, task_id, name, current_state, dependencies_satisfied, retry_eligible,
       ready_for_execution, total_parents, completed_parents, attempts, max_attempts,
       next_retry_at, last_attempted_at, blocking_reason
FROM readiness
ORDER BY task_id, position, workflow_step_id;

-- get_task_execution_context --
-- Step counts and the verdict (execution status, action, health) of one task.
WITH wanted AS (SELECT :task_id AS id),
{@readiness},
{@execution_context};

-- get_task_execution_contexts_batch --
-- Execution contexts of several tasks, ordered by task id.
WITH wanted AS (SELECT value AS id FROM json_each(:task_ids)),
{@readiness},
{@execution_context};

-- calculate_dependency_levels --
-- Longest distance of each step of a task from a root (roots are level 0). The walk keeps
-- distinct (step, level) pairs, not paths: at most steps x depth rows, however many paths
-- stacked diamonds make.
WITH RECURSIVE walk (step_id, level) AS (
    SELECT s.id, 0
    FROM steps s
    WHERE s.task_id = :task_id
      AND NOT EXISTS (SELECT 1 FROM step_edges e WHERE e.to_step_id = s.id)
    UNION
    SELECT e.to_step_id, w.level + 1
    FROM walk w
    JOIN step_edges e ON e.from_step_id = w.step_id
)
SELECT step_id AS workflow_step_id, max(level) AS dependency_level
FROM walk
GROUP BY step_id
ORDER BY dependency_level, workflow_step_id;

-- get_system_health_counts --
-- Tasks and steps by state, the live queue, expired leases and live workers.
WITH t AS (
    SELECT count(*) AS total,
           coalesce(sum(status = 'pending'), 0) AS pending,
           coalesce(sum(status = 'in_progress'), 0) AS in_progress,
           coalesce(sum(status = 'complete'), 0) AS complete,
           coalesce(sum(status = 'error'), 0) AS error,
           coalesce(sum(status = 'cancelled'), 0) AS cancelled,
           coalesce(sum(status = 'resolved_manually'), 0) AS resolved
    FROM tasks
),
s AS (
    SELECT count(*) AS total,
           coalesce(sum(status = 'pending'), 0) AS pending,
           coalesce(sum(status = 'in_progress'), 0) AS in_progress,
           coalesce(sum(status = 'complete'), 0) AS complete,
           coalesce(sum(status = 'error'), 0) AS error,
           coalesce(sum(status = 'error' AND retryable AND attempts < max_attempts), 0)
               AS retrying,
           coalesce(sum(status = 'error' AND NOT (retryable AND attempts < max_attempts)), 0)
               AS exhausted,
           coalesce(sum(status = 'in_progress' AND lease_expires_at < :now), 0) AS expired
    FROM steps
),
-- Heartbeats count as live within 90 seconds of now, in exact microseconds.
live AS (
    SELECT strftime('%s', substr(:now, 1, 19)) * 1000000 + substr(:now, 21, 6) - 90000000
        AS cutoff_us
)
SELECT t.total AS total_tasks, t.pending AS pending_tasks, t.in_progress AS in_progress_tasks,
       t.complete AS complete_tasks, t.error AS error_tasks, t.cancelled AS cancelled_tasks,
       t.resolved AS resolved_manually_tasks,
       s.total AS total_steps, s.pending AS pending_steps, s.in_progress AS in_progress_steps,
       s.complete AS complete_steps, s.error AS error_steps, s.retrying AS retrying_steps,
       s.exhausted AS exhausted_steps,
       (SELECT count(*) FROM steps c
        WHERE c.claimable_at IS NOT NULL AND c.claimable_at <= :now) AS claimable_steps,
       s.expired AS expired_leases,
       (SELECT count(*) FROM workers w, live
        WHERE w.stopped_at IS NULL
          AND strftime('%s', substr(w.last_heartbeat_at, 1, 19)) * 1000000
              + substr(w.last_heartbeat_at, 21, 6) >= live.cutoff_us) AS active_workers
FROM t, s;

-- get_analytics_metrics --
-- Throughput, completion and error rates and mean durations over [since, now].
WITH task_times AS (
    SELECT status,
           created_at BETWEEN :since AND :now AS created_in_window,
           status IN ('complete', 'resolved_manually')
               AND completed_at BETWEEN :since AND :now AS completed_in_window,
           status = 'error'
               AND coalesce(completed_at, updated_at) BETWEEN :since AND :now AS failed_in_window,
           strftime('%s', substr(created_at, 1, 19)) * 1000000 + substr(created_at, 21, 6)
               AS created_us,
           strftime('%s', substr(completed_at, 1, 19)) * 1000000 + substr(completed_at, 21, 6)
               AS completed_us
    FROM tasks
),
task_window AS (
    SELECT coalesce(sum(created_in_window), 0) AS created,
           coalesce(sum(completed_in_window), 0) AS completed,
           coalesce(sum(failed_in_window), 0) AS failed,
           avg(CASE WHEN completed_in_window THEN completed_us - created_us END) AS avg_us
    FROM task_times
),
step_times AS (
    SELECT status IN ('complete', 'resolved_manually')
               AND completed_at BETWEEN :since AND :now AS completed_in_window,
           status = 'error' AND updated_at BETWEEN :since AND :now AS failed_in_window,
           coalesce(last_attempted_at, started_at) AS attempt_at,
           strftime('%s', substr(coalesce(last_attempted_at, started_at), 1, 19)) * 1000000
               + substr(coalesce(last_attempted_at, started_at), 21, 6) AS attempt_us,
           strftime('%s', substr(completed_at, 1, 19)) * 1000000 + substr(completed_at, 21, 6)
               AS completed_us
    FROM steps
    WHERE (completed_at BETWEEN :since AND :now)
       OR (status = 'error' AND updated_at BETWEEN :since AND :now)
),
step_window AS (
    SELECT coalesce(sum(completed_in_window), 0) AS completed,
           coalesce(sum(failed_in_window), 0) AS failed,
           avg(CASE WHEN completed_in_window AND attempt_at IS NOT NULL
                    THEN completed_us - attempt_us END) AS avg_us
    FROM step_times
),
span AS (
    SELECT (strftime('%s', substr(:now, 1, 19)) * 1000000 + substr(:now, 21, 6)
            - strftime('%s', substr(:since, 1, 19)) * 1000000 - substr(:since, 21, 6))
           / 60000000.0 AS minutes
)
SELECT :since AS analysis_period_start, :now AS calculated_at,
       (SELECT count(*) FROM tasks WHERE status IN ('pending', 'in_progress'))
           AS active_tasks_count,
       (SELECT count(*) FROM namespaces) AS total_namespaces_count,
       (SELECT count(*) FROM (SELECT DISTINCT namespace_id, name FROM templates))
           AS unique_task_types_count,
       tw.created AS tasks_created, tw.completed AS tasks_completed, tw.failed AS tasks_failed,
       sw.completed AS steps_completed, sw.failed AS steps_failed,
       CASE WHEN tw.completed + tw.failed = 0 THEN 0.0
            ELSE round(1.0 * tw.completed / (tw.completed + tw.failed), 6) END
           AS completion_rate,
       CASE WHEN tw.completed + tw.failed = 0 THEN 0.0
            ELSE round(1.0 * tw.failed / (tw.completed + tw.failed), 6) END AS error_rate,
       round(coalesce(tw.avg_us, 0) / 1000000.0, 6) AS avg_task_duration_seconds,
       round(coalesce(sw.avg_us, 0) / 1000000.0, 6) AS avg_step_duration_seconds,
       CASE WHEN sp.minutes <= 0 THEN 0.0 ELSE round(tw.completed / sp.minutes, 6) END
           AS task_throughput_per_minute,
       CASE WHEN sp.minutes <= 0 THEN 0.0 ELSE round(sw.completed / sp.minutes, 6) END
           AS step_throughput_per_minute
FROM task_window tw, step_window sw, span sp;

-- get_slowest_steps --
-- The slowest steps finished since `since` (last attempt's start to completion).
WITH finished AS (
    SELECT s.id, s.task_id, s.name, s.status, s.attempts, s.completed_at,
           strftime('%s', substr(s.completed_at, 1, 19)) * 1000000
               + substr(s.completed_at, 21, 6) AS completed_us,
           strftime('%s', substr(coalesce(s.last_attempted_at, s.started_at), 1, 19)) * 1000000
               + substr(coalesce(s.last_attempted_at, s.started_at), 21, 6) AS attempt_us
    FROM steps s
    WHERE s.completed_at IS NOT NULL AND s.completed_at >= :since
      AND coalesce(s.last_attempted_at, s.started_at) IS NOT NULL
)
SELECT f.id AS workflow_step_id, f.task_id, t.namespace, t.name AS task_name, t.version,
       f.name AS step_name, f.status, f.attempts,
       round((f.completed_us - f.attempt_us) / 1000000.0, 6) AS duration_seconds,
       f.completed_at
FROM finished f
JOIN tasks t ON t.id = f.task_id
ORDER BY duration_seconds DESC, f.id
LIMIT :lim;

-- get_slowest_tasks --
-- The slowest tasks finished since `since` (creation to completion).
WITH finished AS (
    SELECT t.*,
           strftime('%s', substr(t.completed_at, 1, 19)) * 1000000
               + substr(t.completed_at, 21, 6) AS completed_us,
           strftime('%s', substr(t.created_at, 1, 19)) * 1000000
               + substr(t.created_at, 21, 6) AS created_us
    FROM tasks t
    WHERE t.completed_at IS NOT NULL AND t.completed_at >= :since
)
SELECT f.id AS task_id, f.namespace, f.name, f.version, f.status, f.total_steps,
       round((f.completed_us - f.created_us) / 1000000.0, 6) AS duration_seconds,
       f.created_at, f.completed_at
FROM finished f
ORDER BY duration_seconds DESC, f.id
LIMIT :lim;

-- get_step_timeline --
-- Steps finished in [since, now], per bucket of :bucket_seconds counted from `since`: how
-- many completed and failed, and the nearest-rank 50th/95th/99th percentiles of the
-- completed steps' durations (last attempt's start to completion), as on PostgreSQL's
-- percentile_disc. What finished at `now` itself counts in bucket :last_bucket. Buckets
-- in which nothing finished are left out.
WITH finished AS (
    SELECT status IN ('complete', 'resolved_manually') AS ok,
           strftime('%s', substr(coalesce(completed_at, updated_at), 1, 19)) * 1000000
               + substr(coalesce(completed_at, updated_at), 21, 6) AS finished_us,
           CASE WHEN status IN ('complete', 'resolved_manually')
                     AND coalesce(last_attempted_at, started_at) IS NOT NULL
                THEN (strftime('%s', substr(completed_at, 1, 19)) * 1000000
                          + substr(completed_at, 21, 6)
                      - strftime('%s', substr(coalesce(last_attempted_at, started_at), 1, 19))
                          * 1000000
                      - substr(coalesce(last_attempted_at, started_at), 21, 6)) / 1000000.0
           END AS seconds
    FROM steps
    WHERE (status IN ('complete', 'resolved_manually') AND completed_at BETWEEN :since AND :now)
       OR (status = 'error' AND updated_at BETWEEN :since AND :now)
),
bucketed AS (
    SELECT ok, seconds,
           min((finished_us - strftime('%s', substr(:since, 1, 19)) * 1000000
                            - substr(:since, 21, 6)) / (:bucket_seconds * 1000000),
               :last_bucket) AS bucket
    FROM finished
),
ranked AS (
    SELECT bucket, ok, seconds,
           row_number() OVER (PARTITION BY bucket, seconds IS NULL ORDER BY seconds) AS rank,
           count(seconds) OVER (PARTITION BY bucket) AS timed
    FROM bucketed
)
SELECT bucket,
       sum(ok) AS completed,
       sum(NOT ok) AS failed,
       min(CASE WHEN seconds IS NOT NULL AND rank >= 0.50 * timed THEN seconds END) AS p50_seconds,
       min(CASE WHEN seconds IS NOT NULL AND rank >= 0.95 * timed THEN seconds END) AS p95_seconds,
       min(CASE WHEN seconds IS NOT NULL AND rank >= 0.99 * timed THEN seconds END) AS p99_seconds
FROM ranked
GROUP BY bucket
ORDER BY bucket;
