-- Readiness, execution context, dependency levels, health and analytics: thin wrappers over
-- the tasker.* functions of migration 0002. Numerics are cast to float8 here so both
-- backends hand Python the same float values.

-- get_step_readiness_status --
-- Readiness of every step of one task (or only step_ids), with the reason a step is blocked.
SELECT * FROM tasker.get_step_readiness_status(
    %(task_id)s::bigint, %(step_ids)s::bigint[], %(now)s::timestamptz);

-- get_step_readiness_status_batch --
-- Readiness of every step of several tasks, ordered by task then position.
SELECT * FROM tasker.get_step_readiness_status_batch(%(task_ids)s::bigint[], %(now)s::timestamptz);

-- get_task_execution_context --
-- Step counts and the verdict (execution status, action, health) of one task.
SELECT task_id, status, total_steps, pending_steps, in_progress_steps, completed_steps,
       failed_steps, ready_steps, execution_status, recommended_action,
       completion_percentage::float8 AS completion_percentage, health_status
FROM tasker.get_task_execution_context(%(task_id)s::bigint, %(now)s::timestamptz);

-- get_task_execution_contexts_batch --
-- Execution contexts of several tasks, ordered by task id.
SELECT task_id, status, total_steps, pending_steps, in_progress_steps, completed_steps,
       failed_steps, ready_steps, execution_status, recommended_action,
       completion_percentage::float8 AS completion_percentage, health_status
FROM tasker.get_task_execution_contexts_batch(%(task_ids)s::bigint[], %(now)s::timestamptz);

-- calculate_dependency_levels --
-- Longest distance of each step of a task from a root (roots are level 0).
SELECT * FROM tasker.calculate_dependency_levels(%(task_id)s::bigint);

-- get_system_health_counts --
-- Tasks and steps by state, the live queue, expired leases and live workers.
SELECT * FROM tasker.get_system_health_counts(%(now)s::timestamptz);

-- get_analytics_metrics --
-- Throughput, completion and error rates and mean durations over [since, now].
SELECT analysis_period_start, calculated_at, active_tasks_count, total_namespaces_count,
       unique_task_types_count, tasks_created, tasks_completed, tasks_failed,
       steps_completed, steps_failed,
       completion_rate::float8 AS completion_rate,
       error_rate::float8 AS error_rate,
       avg_task_duration_seconds::float8 AS avg_task_duration_seconds,
       avg_step_duration_seconds::float8 AS avg_step_duration_seconds,
       task_throughput_per_minute::float8 AS task_throughput_per_minute,
       step_throughput_per_minute::float8 AS step_throughput_per_minute
FROM tasker.get_analytics_metrics(%(since)s::timestamptz, %(now)s::timestamptz);

-- get_slowest_steps --
-- The slowest steps finished since `since` (last attempt's start to completion).
SELECT workflow_step_id, task_id, namespace, task_name, version, step_name, status, attempts,
       duration_seconds::float8 AS duration_seconds, completed_at
FROM tasker.get_slowest_steps(%(since)s::timestamptz, %(lim)s::integer);

-- get_slowest_tasks --
-- The slowest tasks finished since `since` (creation to completion).
SELECT task_id, namespace, name, version, status, total_steps,
       duration_seconds::float8 AS duration_seconds, created_at, completed_at
FROM tasker.get_slowest_tasks(%(since)s::timestamptz, %(lim)s::integer);

-- get_step_timeline --
-- Steps finished in [since, now], per bucket of :bucket_seconds counted from `since`: how
-- many completed and failed, and the nearest-rank 50th/95th/99th percentiles of the
-- completed steps' durations (last attempt's start to completion). What finished at `now`
-- itself counts in bucket :last_bucket. Buckets in which nothing finished are left out.
WITH finished AS (
    SELECT s.status IN ('complete', 'resolved_manually') AS ok,
           least(floor(extract(epoch FROM coalesce(s.completed_at, s.updated_at)
                                          - %(since)s::timestamptz)
                       / %(bucket_seconds)s)::integer,
                 %(last_bucket)s::integer) AS bucket,
           CASE WHEN s.status IN ('complete', 'resolved_manually')
                THEN extract(epoch FROM s.completed_at
                                        - coalesce(s.last_attempted_at, s.started_at))::float8
           END AS seconds
    FROM tasker.steps s
    WHERE (s.status IN ('complete', 'resolved_manually')
           AND s.completed_at BETWEEN %(since)s::timestamptz AND %(now)s::timestamptz)
       OR (s.status = 'error'
           AND s.updated_at BETWEEN %(since)s::timestamptz AND %(now)s::timestamptz)
)
SELECT bucket,
       count(*) FILTER (WHERE ok) AS completed,
       count(*) FILTER (WHERE NOT ok) AS failed,
       percentile_disc(0.50) WITHIN GROUP (ORDER BY seconds) AS p50_seconds,
       percentile_disc(0.95) WITHIN GROUP (ORDER BY seconds) AS p95_seconds,
       percentile_disc(0.99) WITHIN GROUP (ORDER BY seconds) AS p99_seconds
FROM finished
GROUP BY bucket
ORDER BY bucket;
