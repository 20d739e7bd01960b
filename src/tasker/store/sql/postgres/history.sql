-- insert_task_transitions --
-- History rows for task state changes.
INSERT INTO tasker.task_transitions (task_id, from_state, to_state, reason, metadata, actor,
    sort_key, created_at)
SELECT r.task_id, r.from_state, r.to_state, r.reason, COALESCE(r.metadata, '{}'), r.actor,
    r.sort_key, %(now)s
FROM jsonb_to_recordset(%(rows)s) AS r(task_id bigint, from_state text, to_state text,
    reason text, metadata jsonb, actor text, sort_key integer);

-- insert_step_transitions --
-- History rows for step state changes.
INSERT INTO tasker.step_transitions (step_id, task_id, from_state, to_state, reason, metadata,
    actor, sort_key, created_at)
SELECT r.step_id, r.task_id, r.from_state, r.to_state, r.reason, COALESCE(r.metadata, '{}'),
    r.actor, r.sort_key, %(now)s
FROM jsonb_to_recordset(%(rows)s) AS r(step_id bigint, task_id bigint, from_state text,
    to_state text, reason text, metadata jsonb, actor text, sort_key integer);

-- insert_events --
-- Append events to the durable log, in the transaction of the change they describe.
INSERT INTO tasker.events (name, task_id, step_id, step_name, payload, created_at)
SELECT r.name, r.task_id, r.step_id, r.step_name, COALESCE(r.payload, '{}'), %(now)s
FROM jsonb_to_recordset(%(rows)s) AS r(seq integer, name text, task_id bigint, step_id bigint,
    step_name text, payload jsonb)
ORDER BY r.seq;

-- task_transitions --
-- A task's own history, in order.
SELECT * FROM tasker.task_transitions WHERE task_id = %(task_id)s ORDER BY sort_key;

-- step_transitions_of_task --
-- The history of every step of a task, in order.
SELECT st.*, s.name AS step_name FROM tasker.step_transitions st
JOIN tasker.steps s ON s.id = st.step_id
WHERE st.task_id = %(task_id)s ORDER BY st.id;

-- events_after --
-- Events after a cursor (an event id), oldest first.
SELECT * FROM tasker.events
WHERE id > %(after_id)s AND (%(task_id)s::bigint IS NULL OR task_id = %(task_id)s)
ORDER BY id LIMIT %(limit)s;
