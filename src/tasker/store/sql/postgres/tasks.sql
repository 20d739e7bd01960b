-- insert_task --
-- Create a task row; steps and edges follow in the same transaction.
INSERT INTO tasker.tasks (template_id, namespace, name, version, status, context,
    idempotency_key, request_hash, initiator, source_system, reason, tags, trace_context,
    total_steps, max_steps, run_at, priority, parent_task_id, parent_step_id,
    transition_count, created_at, updated_at)
VALUES (%(template_id)s, %(namespace)s, %(name)s, %(version)s, 'pending', %(context)s,
    %(idempotency_key)s, %(request_hash)s, %(initiator)s, %(source_system)s, %(reason)s,
    %(tags)s, %(trace_context)s, %(total_steps)s, %(max_steps)s, %(run_at)s, %(priority)s,
    %(parent_task_id)s, %(parent_step_id)s, 1, %(now)s, %(now)s)
RETURNING id;

-- get_task --
-- One task by id.
SELECT * FROM tasker.tasks WHERE id = %(task_id)s;

-- get_tasks --
-- Several tasks by id.
SELECT * FROM tasker.tasks WHERE id = ANY(%(task_ids)s::bigint[]) ORDER BY id;

-- get_task_by_idempotency_key --
-- The task created with this idempotency key, if any.
SELECT * FROM tasker.tasks WHERE idempotency_key = %(key)s;

-- list_tasks --
-- Tasks, newest first, filtered; keyset pagination on id (before_id).
-- plan: each call
SELECT * FROM tasker.tasks
WHERE TRUE
  AND status = %(status)s  -- when status
  AND namespace = %(namespace)s  -- when namespace
  AND name = %(name)s  -- when name
  AND id < %(before_id)s  -- when before_id
ORDER BY id DESC
LIMIT %(limit)s;

-- lock_tasks --
-- Lock tasks (in id order, so concurrent writers never deadlock) before changing their steps.
SELECT * FROM tasker.tasks WHERE id = ANY(%(task_ids)s::bigint[]) ORDER BY id FOR UPDATE;

-- start_tasks --
-- Move pending tasks to in_progress when their first step is claimed.
UPDATE tasker.tasks
SET status = 'in_progress', started_at = COALESCE(started_at, %(now)s), updated_at = %(now)s,
    transition_count = transition_count + 1
WHERE id = ANY(%(task_ids)s::bigint[]) AND status = 'pending'
RETURNING id, namespace, name, version, transition_count, created_at;

-- set_task_status --
-- Change tasks' status (the caller has checked each transition); returns their sort keys.
UPDATE tasker.tasks t
SET status = r.to_state, updated_at = %(now)s, transition_count = t.transition_count + 1,
    completed_at = CASE WHEN r.to_state IN ('complete', 'error', 'cancelled', 'resolved_manually')
                        THEN %(now)s::timestamptz END
FROM jsonb_to_recordset(%(rows)s) AS r(task_id bigint, from_state text, to_state text)
WHERE t.id = r.task_id AND t.status = r.from_state
RETURNING t.id, t.status, t.transition_count;

-- add_done_steps --
-- Count steps that reached complete or resolved_manually (the completion counter).
UPDATE tasker.tasks t SET done_steps = t.done_steps + r.n, updated_at = %(now)s
FROM jsonb_to_recordset(%(rows)s) AS r(task_id bigint, n integer)
WHERE t.id = r.task_id
RETURNING t.id, t.done_steps, t.total_steps, t.status;

-- task_blockers --
-- For finalization: per task, whether a step can still run and whether one failed for
-- good (EXISTS stops at the first such step; a count would read every step of the task).
SELECT t.id AS task_id,
       EXISTS (SELECT 1 FROM tasker.steps s WHERE s.task_id = t.id
          AND (s.status = 'in_progress' OR s.claimable_at IS NOT NULL)) AS any_live,
       EXISTS (SELECT 1 FROM tasker.steps s WHERE s.task_id = t.id
          AND s.status = 'error' AND s.claimable_at IS NULL) AS any_failed
FROM tasker.tasks t WHERE t.id = ANY(%(task_ids)s::bigint[]);

-- task_step_views --
-- The steps of tasks with their parents' names, for the task JSON.
SELECT s.id, s.task_id, s.name, s.status, s.attempts, s.max_attempts, s.retryable, s.results,
       s.error, s.next_retry_at, s.started_at, s.completed_at, s.position, s.handler,
       s.timeout_seconds, s.claimed_by, s.lease_expires_at, s.last_attempted_at, s.claimable_at,
       s.join_mode, s.branches, s.wait_for, s.map_path, s.group_id, s.map_index,
       s.workflow, s.child_task_id,
       COALESCE((SELECT jsonb_agg(p.name ORDER BY p.position) FROM tasker.step_edges e
                 JOIN tasker.steps p ON p.id = e.from_step_id WHERE e.to_step_id = s.id),
                '[]'::jsonb) AS depends_on
FROM tasker.steps s WHERE s.task_id = ANY(%(task_ids)s::bigint[])
ORDER BY s.task_id, s.position, s.map_index NULLS FIRST;

-- count_tasks_by_status --
-- How many tasks are in each status, of one namespace and template name when given.
SELECT status, count(*) AS n FROM tasker.tasks
WHERE TRUE
  AND namespace = %(namespace)s  -- when namespace
  AND name = %(name)s  -- when name
GROUP BY status;
