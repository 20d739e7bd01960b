-- stored_template_versions --
-- Every stored version of one template (to start a child task of it).
SELECT t.id, t.version, t.definition
FROM tasker.templates t JOIN tasker.namespaces n ON n.id = t.namespace_id
WHERE n.name = %(namespace)s AND t.name = %(name)s
ORDER BY t.id;

-- start_child_steps --
-- Steps wait for the child task each started (rows: id, child_task_id): in_progress, with no
-- claim or lease; a pending one starts its first attempt now.
UPDATE tasker.steps s
SET child_task_id = r.child_task_id,
    attempts = CASE WHEN s.status = 'pending' THEN s.attempts + 1 ELSE s.attempts END,
    transition_count = CASE WHEN s.status = 'pending' THEN s.transition_count + 1
                            ELSE s.transition_count END,
    status = 'in_progress', claimable_at = NULL, claimed_by = NULL, claim_token = NULL,
    lease_expires_at = NULL, last_attempted_at = coalesce(s.last_attempted_at, %(now)s),
    started_at = coalesce(s.started_at, %(now)s), updated_at = %(now)s
FROM jsonb_to_recordset(%(rows)s) AS r(id bigint, child_task_id bigint)
WHERE s.id = r.id
RETURNING s.id, s.task_id, s.name, s.status, s.transition_count, s.attempts, s.max_attempts,
    s.child_task_id;

-- parent_links --
-- Of the given tasks, the child tasks: with the parent task and step that started each.
SELECT id, parent_task_id, parent_step_id FROM tasker.tasks
WHERE id = ANY(%(task_ids)s::bigint[]) AND parent_step_id IS NOT NULL
ORDER BY id;

-- parent_steps_of --
-- The steps still waiting for the given child tasks, with the group of a map instance.
SELECT s.id, s.task_id, s.name, s.status, s.group_id, s.child_task_id, s.attempts,
    s.max_attempts, s.retryable
FROM tasker.tasks t JOIN tasker.steps s ON s.id = t.parent_step_id
WHERE t.id = ANY(%(task_ids)s::bigint[])
  AND s.status = 'in_progress' AND s.child_task_id = t.id
ORDER BY s.id
FOR UPDATE OF s;

-- child_sink_results --
-- The results of the sinks of tasks (steps no other depends on; map instances excluded): what
-- a child task hands to the step that started it.
SELECT s.task_id, s.name, s.results FROM tasker.steps s
WHERE s.task_id = ANY(%(task_ids)s::bigint[]) AND s.group_id IS NULL
  AND NOT EXISTS (SELECT 1 FROM tasker.step_edges e WHERE e.from_step_id = s.id)
ORDER BY s.task_id, s.position;

-- children_of --
-- The child tasks a task started, oldest first.
SELECT id, status, parent_step_id FROM tasker.tasks WHERE parent_task_id = %(task_id)s
ORDER BY id;

-- open_descendants --
-- Every task below a task (children, their children...) not yet in a final state.
WITH RECURSIVE down (id) AS (
    SELECT id FROM tasker.tasks WHERE parent_task_id = %(task_id)s
    UNION
    SELECT t.id FROM tasker.tasks t JOIN down ON t.parent_task_id = down.id
)
SELECT t.id FROM down JOIN tasker.tasks t ON t.id = down.id
WHERE t.status IN ('pending', 'in_progress')
ORDER BY t.id;
