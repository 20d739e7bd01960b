-- expand_map --
-- Create a group's instances, one per item (rows: index, item), in one statement. Each is an
-- ordinary step with the group's handler, settings, priority and workflow, claimable at
-- once (or at the task's run_at, should an operator have resolved the parents before it).
INSERT INTO steps (task_id, namespace, name, position, handler, config, status,
    max_attempts, retryable, timeout_seconds, backoff_base_seconds, backoff_max_seconds,
    backoff_jitter, total_parents, remaining_parents, claimable_at, ready_at, transition_count,
    created_at, updated_at, group_id, map_index, map_item, priority, workflow, concurrency_key,
    concurrency_limit, task_key, task_key_limit, rate_key, rate_count, rate_period_seconds)
SELECT g.task_id, g.namespace, g.name || '[' || (r.value ->> '$.index') || ']', g.position,
    g.handler, g.config, 'pending', g.max_attempts, g.retryable, g.timeout_seconds,
    g.backoff_base_seconds, g.backoff_max_seconds, g.backoff_jitter, g.total_parents, 0,
    max(:now, coalesce(t.run_at, :now)), max(:now, coalesce(t.run_at, :now)), 1, :now, :now,
    g.id, r.value ->> '$.index', r.value -> '$.item', g.priority, g.workflow,
    g.concurrency_key, g.concurrency_limit, g.task_key, g.task_key_limit, g.rate_key, g.rate_count,
    g.rate_period_seconds
FROM steps g JOIN tasks t ON t.id = g.task_id CROSS JOIN json_each(:rows) AS r
WHERE g.id = :group_id
ORDER BY r.key
RETURNING id, task_id, name, handler, workflow, map_item;

-- copy_map_edges --
-- A group's instances get the group's parents (readiness derives from the edges).
INSERT INTO step_edges (task_id, from_step_id, to_step_id)
SELECT i.task_id, e.from_step_id, i.id
FROM step_edges e CROSS JOIN steps i
WHERE e.to_step_id = :group_id AND i.group_id = :group_id;

-- group_progress --
-- Groups with their instances counted: total, done (complete or resolved), failed for good,
-- and the first failed instance's index.
SELECT g.id, g.task_id, g.name, g.status, g.transition_count, g.attempts, g.max_attempts,
    g.retryable, g.created_at, t.namespace AS task_namespace, t.name AS task_name,
    t.version AS task_version, count(i.id) AS total,
    coalesce(sum(i.status IN ('complete', 'resolved_manually')), 0) AS done,
    coalesce(sum(i.status = 'error' AND i.claimable_at IS NULL), 0) AS failed,
    min(CASE WHEN i.status = 'error' AND i.claimable_at IS NULL THEN i.map_index END)
        AS first_failed
FROM steps g JOIN tasks t ON t.id = g.task_id LEFT JOIN steps i ON i.group_id = g.id
WHERE g.id IN (SELECT value FROM json_each(:group_ids))
GROUP BY g.id
ORDER BY g.id;

-- group_instance_results --
-- The results of a group's instances, in item order (its results once all are done).
SELECT results FROM steps WHERE group_id = :group_id ORDER BY map_index;

-- set_group_status --
-- A group's derived state (rows: id, status, results, error).
UPDATE steps
SET status = r.value ->> '$.status', results = nullif(r.value -> '$.results', 'null'),
    error = nullif(r.value -> '$.error', 'null'),
    retryable = CASE WHEN r.value ->> '$.status' = 'error' THEN 0 ELSE retryable END,
    claimable_at = NULL, started_at = coalesce(started_at, :now),
    completed_at = CASE WHEN r.value ->> '$.status' = 'complete' THEN :now END,
    updated_at = :now, transition_count = transition_count + 1
FROM json_each(:rows) AS r
WHERE steps.id = r.value ->> '$.id'
RETURNING id, task_id, name, status, transition_count, attempts, max_attempts;

-- group_instances --
-- A group's instances in one state, in item order (to re-open the failed ones).
SELECT id, task_id, name, status, attempts, max_attempts, retryable, remaining_parents,
    skipped_parents, total_parents, join_mode, handler, branches, wait_for,
    wait_timeout_seconds, map_path, group_id, claim_token, transition_count, workflow,
    child_task_id, map_item
FROM steps
WHERE group_id = :group_id AND status = :status
ORDER BY map_index;

-- add_total_steps --
-- A task gained steps (map instances).
UPDATE tasks SET total_steps = total_steps + :n, updated_at = :now WHERE id = :task_id;
