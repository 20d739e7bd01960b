-- get_signal --
-- The signal of that name a task received, if any.
SELECT id, task_id, name, payload, actor, created_at FROM tasker.task_signals
WHERE task_id = %(task_id)s AND name = %(name)s;

-- insert_signal --
-- Keep a signal a task received (one per name).
INSERT INTO tasker.task_signals (task_id, name, payload, actor, created_at)
VALUES (%(task_id)s, %(name)s, %(payload)s, %(actor)s, %(now)s)
RETURNING id, created_at;

-- signal_step --
-- Lock the step of a task that waits for the named signal.
SELECT id, task_id, name, status, remaining_parents, skipped_parents, total_parents,
    join_mode, handler, retryable, wait_for, wait_timeout_seconds, transition_count,
    attempts, max_attempts
FROM tasker.steps
WHERE task_id = %(task_id)s AND wait_for = %(name)s
FOR UPDATE;

-- signal_names --
-- The signals a task's steps wait for, in step order.
SELECT wait_for AS name FROM tasker.steps
WHERE task_id = %(task_id)s AND wait_for IS NOT NULL
ORDER BY position;
