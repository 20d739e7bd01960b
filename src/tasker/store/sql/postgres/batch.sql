-- tasks_by_idempotency_keys --
-- The tasks created with any of these idempotency keys (one look-up for a batch's chunk).
SELECT id, idempotency_key, request_hash FROM tasker.tasks
WHERE idempotency_key = ANY(%(keys)s::text[]);

-- insert_tasks --
-- Create many tasks in one statement (a batch's chunk), as insert_task does one; ids follow
-- the rows' seq. JSON documents come as text, stored as a single creation stores them.
INSERT INTO tasker.tasks (template_id, namespace, name, version, status, context,
    idempotency_key, request_hash, initiator, source_system, reason, tags, trace_context,
    total_steps, max_steps, run_at, priority, parent_task_id, parent_step_id,
    transition_count, created_at, updated_at)
SELECT r.template_id, r.namespace, r.name, r.version, 'pending', r.context::jsonb,
    r.idempotency_key, r.request_hash, r.initiator, r.source_system, r.reason, r.tags::jsonb,
    r.trace_context::jsonb, r.total_steps, r.max_steps, r.run_at, r.priority, NULL, NULL, 1,
    %(now)s, %(now)s
FROM jsonb_to_recordset(%(rows)s) AS r(seq integer, template_id bigint, namespace text,
    name text, version text, context text, idempotency_key text, request_hash text,
    initiator text, source_system text, reason text, tags text, trace_context text,
    total_steps integer, max_steps integer, run_at timestamptz, priority integer)
ORDER BY r.seq
RETURNING id;

-- insert_tasks_steps --
-- Create the steps of many tasks in one statement, as insert_steps does one task's: each task
-- (tasks: seq, task_id, shape, namespace, start_at, priority, task_key, task_key_limit) gets
-- the step rows of its shape (steps: shape and insert_steps' row columns), in task order then
-- position order.
INSERT INTO tasker.steps (task_id, namespace, name, position, handler, config, status,
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
    1, %(now)s, %(now)s, r.join_mode, r.branches, r.wait_for, r.wait_timeout_seconds,
    r.map_path, r.max_items, t.priority, r.workflow, r.concurrency_key, r.concurrency_limit,
    t.task_key, t.task_key_limit, r.rate_key, r.rate_count, r.rate_period_seconds
FROM jsonb_to_recordset(%(tasks)s) AS t(seq integer, task_id bigint, shape integer,
    namespace text, start_at timestamptz, priority integer, task_key text,
    task_key_limit integer)
JOIN jsonb_to_recordset(%(steps)s) AS r(shape integer, name text, position integer,
    handler text, config jsonb, max_attempts integer, retryable boolean,
    timeout_seconds double precision, backoff_base_seconds double precision,
    backoff_max_seconds double precision, backoff_jitter double precision,
    total_parents integer, join_mode text, branches jsonb, wait_for text,
    wait_timeout_seconds double precision, map_path text, max_items integer, workflow jsonb,
    concurrency_key text, concurrency_limit integer, rate_key text, rate_count integer,
    rate_period_seconds double precision) ON r.shape = t.shape
ORDER BY t.seq, r.position
RETURNING id, task_id, name, claimable_at;

-- insert_tasks_edges --
-- Create the dependency edges of many tasks, by step name: each task (tasks: task_id, shape)
-- gets the edges of its shape (edges: shape, parent, child).
INSERT INTO tasker.step_edges (task_id, from_step_id, to_step_id)
SELECT t.task_id, p.id, c.id
FROM jsonb_to_recordset(%(tasks)s) AS t(task_id bigint, shape integer)
JOIN jsonb_to_recordset(%(edges)s) AS r(shape integer, parent text, child text)
    ON r.shape = t.shape
JOIN tasker.steps p ON p.task_id = t.task_id AND p.name = r.parent
JOIN tasker.steps c ON c.task_id = t.task_id AND c.name = r.child;
