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
-- position order. Each document's values are read once (MATERIALIZED), not once per pair.
WITH t AS MATERIALIZED (
    SELECT value ->> '$.seq' AS seq, value ->> '$.task_id' AS task_id,
        value ->> '$.shape' AS shape, value ->> '$.namespace' AS namespace,
        value ->> '$.start_at' AS start_at, value ->> '$.priority' AS priority,
        value ->> '$.task_key' AS task_key, value ->> '$.task_key_limit' AS task_key_limit
    FROM json_each(:tasks)
), r AS MATERIALIZED (
    SELECT value ->> '$.shape' AS shape, value ->> '$.name' AS name,
        value ->> '$.position' AS position, value ->> '$.handler' AS handler,
        value -> '$.config' AS config, value ->> '$.max_attempts' AS max_attempts,
        value ->> '$.retryable' AS retryable, value ->> '$.timeout_seconds' AS timeout_seconds,
        value ->> '$.backoff_base_seconds' AS backoff_base_seconds,
        value ->> '$.backoff_max_seconds' AS backoff_max_seconds,
        value ->> '$.backoff_jitter' AS backoff_jitter,
        value ->> '$.total_parents' AS total_parents, value ->> '$.join_mode' AS join_mode,
        nullif(value -> '$.branches', 'null') AS branches, value ->> '$.wait_for' AS wait_for,
        value ->> '$.wait_timeout_seconds' AS wait_timeout_seconds,
        value ->> '$.map_path' AS map_path, value ->> '$.max_items' AS max_items,
        nullif(value -> '$.workflow', 'null') AS workflow,
        value ->> '$.concurrency_key' AS concurrency_key,
        value ->> '$.concurrency_limit' AS concurrency_limit, value ->> '$.rate_key' AS rate_key,
        value ->> '$.rate_count' AS rate_count,
        value ->> '$.rate_period_seconds' AS rate_period_seconds
    FROM json_each(:steps)
)
INSERT INTO steps (task_id, namespace, name, position, handler, config, status,
    max_attempts, retryable, timeout_seconds, backoff_base_seconds, backoff_max_seconds,
    backoff_jitter, total_parents, remaining_parents, claimable_at, ready_at, transition_count,
    created_at, updated_at, join_mode, branches, wait_for, wait_timeout_seconds, map_path,
    max_items, priority, workflow, concurrency_key, concurrency_limit, task_key, task_key_limit,
    rate_key, rate_count, rate_period_seconds)
SELECT t.task_id, t.namespace, r.name, r.position, r.handler, r.config, 'pending',
    r.max_attempts, r.retryable, r.timeout_seconds, r.backoff_base_seconds,
    r.backoff_max_seconds, r.backoff_jitter, r.total_parents, r.total_parents,
    CASE WHEN r.total_parents = 0 AND r.wait_for IS NULL AND r.map_path IS NULL
         THEN t.start_at END,
    CASE WHEN r.total_parents = 0 AND r.wait_for IS NULL AND r.map_path IS NULL
         THEN t.start_at END,
    1, :now, :now, r.join_mode, r.branches, r.wait_for, r.wait_timeout_seconds, r.map_path,
    r.max_items, t.priority, r.workflow, r.concurrency_key, r.concurrency_limit, t.task_key,
    t.task_key_limit, r.rate_key, r.rate_count, r.rate_period_seconds
FROM t JOIN r ON r.shape = t.shape
ORDER BY t.seq, r.position
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
