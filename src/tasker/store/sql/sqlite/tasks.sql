-- insert_task --
-- Create a task row; steps and edges follow in the same transaction.
INSERT INTO tasks (template_id, namespace, name, version, status, context,
    idempotency_key, request_hash, initiator, source_system, reason, tags, trace_context,
    total_steps, max_steps, run_at, priority, parent_task_id, parent_step_id,
    transition_count, created_at, updated_at)
VALUES (:template_id, :namespace, :name, :version, 'pending', :context,
    :idempotency_key, :request_hash, :initiator, :source_system, :reason,
    :tags, :trace_context, :total_steps, :max_steps, :run_at, :priority, :parent_task_id,
    :parent_step_id, 1, :now, :now)
RETURNING id;

-- get_task --
-- One task by id.
SELECT * FROM tasks WHERE id = :task_id;

-- get_tasks --
-- Several tasks by id.
SELECT * FROM tasks WHERE id IN (SELECT value FROM json_each(:task_ids)) ORDER BY id;

-- get_task_by_idempotency_key --
-- The task created with this idempotency key, if any.
SELECT * FROM tasks WHERE idempotency_key = :key;

-- list_tasks --
-- Tasks, newest first, filtered; keyset pagination on id (before_id).
-- plan: each call
SELECT * FROM tasks
WHERE TRUE
  AND status = :status  -- when status
  AND namespace = :namespace  -- when namespace
  AND name = :name  -- when name
  AND id < :before_id  -- when before_id
ORDER BY id DESC
LIMIT :limit;

-- lock_tasks --
-- The write transaction (BEGIN IMMEDIATE) already serialises writers; just read the rows.
SELECT * FROM tasks WHERE id IN (SELECT value FROM json_each(:task_ids)) ORDER BY id;

-- start_tasks --
-- Move pending tasks to in_progress when their first step is claimed.
UPDATE tasks
SET status = 'in_progress', started_at = COALESCE(started_at, :now), updated_at = :now,
    transition_count = transition_count + 1
WHERE id IN (SELECT value FROM json_each(:task_ids)) AND status = 'pending'
RETURNING id, namespace, name, version, transition_count, created_at;

-- set_task_status --
-- Change tasks' status (the caller has checked each transition); returns their sort keys.
UPDATE tasks
SET status = r.to_state, updated_at = :now, transition_count = transition_count + 1,
    completed_at = CASE WHEN r.to_state IN ('complete', 'error', 'cancelled', 'resolved_manually')
                        THEN :now END
FROM (SELECT value ->> '$.task_id' AS task_id, value ->> '$.from_state' AS from_state,
             value ->> '$.to_state' AS to_state FROM json_each(:rows)) AS r
WHERE tasks.id = r.task_id AND tasks.status = r.from_state
RETURNING id, status, transition_count;

-- add_done_steps --
-- Count steps that reached complete or resolved_manually (the completion counter).
UPDATE tasks SET done_steps = done_steps + r.n, updated_at = :now
FROM (SELECT value ->> '$.task_id' AS task_id, value ->> '$.n' AS n FROM json_each(:rows)) AS r
WHERE tasks.id = r.task_id
RETURNING id, done_steps, total_steps, status;

-- task_blockers --
-- For finalization: per task, whether a step can still run and whether one failed for
-- good (EXISTS stops at the first such step; a count would read every step of the task).
SELECT t.id AS task_id,
       EXISTS (SELECT 1 FROM steps s WHERE s.task_id = t.id
          AND (s.status = 'in_progress' OR s.claimable_at IS NOT NULL)) AS any_live,
       EXISTS (SELECT 1 FROM steps s WHERE s.task_id = t.id
          AND s.status = 'error' AND s.claimable_at IS NULL) AS any_failed
FROM tasks t WHERE t.id IN (SELECT value FROM json_each(:task_ids));

-- task_step_views --
-- The steps of tasks with their parents' names, for the task JSON.
SELECT s.id, s.task_id, s.name, s.status, s.attempts, s.max_attempts, s.retryable, s.results,
       s.error, s.next_retry_at, s.started_at, s.completed_at, s.position, s.handler,
       s.timeout_seconds, s.claimed_by, s.lease_expires_at, s.last_attempted_at, s.claimable_at,
       s.join_mode, s.branches, s.wait_for, s.map_path, s.group_id, s.map_index,
       s.workflow, s.child_task_id,
       (SELECT json_group_array(name) FROM (SELECT p.name FROM step_edges e
            JOIN steps p ON p.id = e.from_step_id WHERE e.to_step_id = s.id
            ORDER BY p.position)) AS depends_on
FROM steps s WHERE s.task_id IN (SELECT value FROM json_each(:task_ids))
ORDER BY s.task_id, s.position, s.map_index NULLS FIRST;

-- count_tasks_by_status --
-- How many tasks are in each status, of one namespace and template name when given.
SELECT status, count(*) AS n FROM tasks
WHERE TRUE
  AND namespace = :namespace  -- when namespace
  AND name = :name  -- when name
GROUP BY status;
