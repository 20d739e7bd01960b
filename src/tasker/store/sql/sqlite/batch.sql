-- tasks_by_idempotency_keys --
-- The tasks created with any of these idempotency keys (one look-up for a batch's chunk).
SELECT id, idempotency_key, request_hash FROM tasks
WHERE idempotency_key IN (SELECT value FROM json_each(:keys));

-- insert_tasks --
-- Create many tasks in one statement (a batch's chunk), as insert_task does one; ids follow
-- the rows' seq. JSON documents come as text, stored as a single creation stores them.
INSERT INTO tasks (template_id, namespace, name, version, status, context,
    idempotency_key, request_hash, initiator, source_system, reason, tags, trace_context,
    total_steps, max_steps, run_at, priority, parent_task_id, parent_step_id,
    transition_count, created_at, updated_at)
SELECT value ->> '$.template_id', value ->> '$.namespace', value ->> '$.name',
    value ->> '$.version', 'pending', value ->> '$.context', value ->> '$.idempotency_key',
    value ->> '$.request_hash', value ->> '$.initiator', value ->> '$.source_system',
    value ->> '$.reason', value ->> '$.tags', value ->> '$.trace_context',
    value ->> '$.total_steps', value ->> '$.max_steps', value ->> '$.run_at',
    value ->> '$.priority', NULL, NULL, 1, :now, :now
FROM json_each(:rows)
ORDER BY value ->> '$.seq'
RETURNING id;

-- insert_tasks_steps --
-- Create the steps of many tasks in one statement, as insert_steps does one task's: each task
-- (tasks: seq, task_id, shape, namespace, start_at, priority, task_key, task_key_limit) gets
-- the step rows of its shape (steps: shape and insert_steps' row columns), in task order then
-- position order.
INSERT INTO steps (task_id, namespace, name, position, handler, config, status,
    max_attempts, retryable, timeout_seconds, backoff_base_seconds, backoff_max_seconds,
    backoff_jitter, total_parents, remaining_parents, claimable_at, ready_at, transition_count,
    created_at, updated_at, join_mode, branches, wait_for, wait_timeout_seconds, map_path,
    max_items, priority, workflow, concurrency_key, concurrency_limit, task_key, task_key_limit,
    rate_key, rate_count, rate_period_seconds)
SELECT t.value ->> '$.task_id', t.value ->> '$.namespace', r.value ->> '$.name',
    r.value ->> '$.position', r.value ->> '$.handler', r.value -> '$.config', 'pending',
    r.value ->> '$.max_attempts', r.value ->> '$.retryable', r.value ->> '$.timeout_seconds',
    r.value ->> '$.backoff_base_seconds', r.value ->> '$.backoff_max_seconds',
    r.value ->> '$.backoff_jitter', r.value ->> '$.total_parents',
    r.value ->> '$.total_parents',
    CASE WHEN r.value ->> '$.total_parents' = 0 AND r.value ->> '$.wait_for' IS NULL
         AND r.value ->> '$.map_path' IS NULL THEN t.value ->> '$.start_at' END,
    CASE WHEN r.value ->> '$.total_parents' = 0 AND r.value ->> '$.wait_for' IS NULL
         AND r.value ->> '$.map_path' IS NULL THEN t.value ->> '$.start_at' END,
    1, :now, :now, r.value ->> '$.join_mode', nullif(r.value -> '$.branches', 'null'),
    r.value ->> '$.wait_for', r.value ->> '$.wait_timeout_seconds', r.value ->> '$.map_path',
    r.value ->> '$.max_items', t.value ->> '$.priority', nullif(r.value -> '$.workflow', 'null'),
    r.value ->> '$.concurrency_key', r.value ->> '$.concurrency_limit',
    t.value ->> '$.task_key', t.value ->> '$.task_key_limit', r.value ->> '$.rate_key',
    r.value ->> '$.rate_count', r.value ->> '$.rate_period_seconds'
FROM json_each(:tasks) AS t
JOIN json_each(:steps) AS r ON r.value ->> '$.shape' = t.value ->> '$.shape'
ORDER BY t.value ->> '$.seq', r.value ->> '$.position'
RETURNING id, task_id, name, claimable_at;

-- insert_tasks_edges --
-- Create the dependency edges of many tasks, by step name: each task (tasks: task_id, shape)
-- gets the edges of its shape (edges: shape, parent, child). CROSS JOIN fixes the join order
-- (each edge looks both steps up through the (task_id, name) index), as in insert_edges.
INSERT INTO step_edges (task_id, from_step_id, to_step_id)
SELECT t.value ->> '$.task_id', p.id, c.id
FROM json_each(:tasks) AS t
CROSS JOIN json_each(:edges) AS r
CROSS JOIN steps AS p
CROSS JOIN steps AS c
WHERE r.value ->> '$.shape' = t.value ->> '$.shape'
  AND p.task_id = t.value ->> '$.task_id' AND p.name = r.value ->> '$.parent'
  AND c.task_id = t.value ->> '$.task_id' AND c.name = r.value ->> '$.child';
