-- expand_map --
-- Create a group's instances, one per item (rows: index, item), in one statement. Each is an
-- ordinary step with the group's handler, settings, priority and workflow, claimable at
-- once (or at the task's run_at, should an operator have resolved the parents before it).
INSERT INTO tasker.steps (task_id, namespace, name, position, handler, config, status,
    max_attempts, retryable, timeout_seconds, backoff_base_seconds, backoff_max_seconds,
    backoff_jitter, total_parents, remaining_parents, claimable_at, ready_at, transition_count,
    created_at, updated_at, group_id, map_index, map_item, priority, workflow, concurrency_key,
    concurrency_limit, task_key, task_key_limit, rate_key, rate_count, rate_period_seconds)
SELECT g.task_id, g.namespace, g.name || '[' || r.index || ']', g.position,
    g.handler, g.config, 'pending', g.max_attempts, g.retryable, g.timeout_seconds,
    g.backoff_base_seconds, g.backoff_max_seconds, g.backoff_jitter, g.total_parents, 0,
    GREATEST(%(now)s::timestamptz, t.run_at), GREATEST(%(now)s::timestamptz, t.run_at), 1,
    %(now)s, %(now)s, g.id, r.index, r.item, g.priority, g.workflow,
    g.concurrency_key, g.concurrency_limit, g.task_key, g.task_key_limit, g.rate_key, g.rate_count,
    g.rate_period_seconds
FROM tasker.steps g JOIN tasker.tasks t ON t.id = g.task_id CROSS JOIN jsonb_to_recordset(%(rows)s) AS r(index integer, item jsonb)
WHERE g.id = %(group_id)s
ORDER BY r.index
RETURNING id, task_id, name, handler, workflow, map_item;

-- copy_map_edges --
-- A group's instances get the group's parents (readiness derives from the edges).
INSERT INTO tasker.step_edges (task_id, from_step_id, to_step_id)
SELECT i.task_id, e.from_step_id, i.id
FROM tasker.step_edges e JOIN tasker.steps i ON i.group_id = %(group_id)s
WHERE e.to_step_id = %(group_id)s;

-- group_progress --
-- Groups with their instances counted: total, done (complete or resolved), failed for good,
-- and the first failed instance's index.
SELECT g.id, g.task_id, g.name, g.status, g.transition_count, g.attempts, g.max_attempts,
    g.retryable, g.created_at, t.namespace AS task_namespace, t.name AS task_name,
    t.version AS task_version, count(i.id)::integer AS total,
    (count(i.id) FILTER (WHERE i.status IN ('complete', 'resolved_manually')))::integer AS done,
    (count(i.id) FILTER (WHERE i.status = 'error' AND i.claimable_at IS NULL))::integer
        AS failed,
    min(i.map_index) FILTER (WHERE i.status = 'error' AND i.claimable_at IS NULL)
        AS first_failed
FROM tasker.steps g JOIN tasker.tasks t ON t.id = g.task_id
LEFT JOIN tasker.steps i ON i.group_id = g.id
WHERE g.id = ANY(%(group_ids)s::bigint[])
GROUP BY g.id, t.id
ORDER BY g.id;

-- group_instance_results --
-- The results of a group's instances, in item order (its results once all are done).
SELECT results FROM tasker.steps WHERE group_id = %(group_id)s ORDER BY map_index;

-- set_group_status --
-- A group's derived state (rows: id, status, results, error).
UPDATE tasker.steps s
SET status = r.status, results = r.results, error = r.error,
    retryable = CASE WHEN r.status = 'error' THEN false ELSE s.retryable END,
    claimable_at = NULL, started_at = coalesce(s.started_at, %(now)s),
    completed_at = CASE WHEN r.status = 'complete' THEN %(now)s::timestamptz END,
    updated_at = %(now)s, transition_count = s.transition_count + 1
FROM jsonb_to_recordset(%(rows)s) AS r(id bigint, status text, results jsonb, error jsonb)
WHERE s.id = r.id
RETURNING s.id, s.task_id, s.name, s.status, s.transition_count, s.attempts, s.max_attempts;

-- group_instances --
-- A group's instances in one state, in item order (to re-open the failed ones).
SELECT id, task_id, name, status, attempts, max_attempts, retryable, remaining_parents,
    skipped_parents, total_parents, join_mode, handler, branches, wait_for,
    wait_timeout_seconds, map_path, group_id, claim_token, transition_count, workflow,
    child_task_id, map_item
FROM tasker.steps
WHERE group_id = %(group_id)s AND status = %(status)s
ORDER BY map_index
FOR UPDATE;

-- add_total_steps --
-- A task gained steps (map instances).
UPDATE tasker.tasks SET total_steps = total_steps + %(n)s, updated_at = %(now)s
WHERE id = %(task_id)s;
