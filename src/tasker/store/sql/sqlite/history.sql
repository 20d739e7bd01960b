-- insert_task_transitions --
-- History rows for task state changes.
INSERT INTO task_transitions (task_id, from_state, to_state, reason, metadata, actor,
    sort_key, created_at)
SELECT value ->> '$.task_id', value ->> '$.from_state', value ->> '$.to_state',
    value ->> '$.reason', COALESCE(nullif(value -> '$.metadata', 'null'), '{}'),
    value ->> '$.actor', value ->> '$.sort_key', :now
FROM json_each(:rows);

-- insert_step_transitions --
-- History rows for step state changes.
INSERT INTO step_transitions (step_id, task_id, from_state, to_state, reason, metadata, actor,
    sort_key, created_at)
SELECT value ->> '$.step_id', value ->> '$.task_id', value ->> '$.from_state',
    value ->> '$.to_state', value ->> '$.reason',
    COALESCE(nullif(value -> '$.metadata', 'null'), '{}'), value ->> '$.actor',
    value ->> '$.sort_key', :now
FROM json_each(:rows);

-- insert_events --
-- Append events to the durable log, in the transaction of the change they describe.
INSERT INTO events (name, task_id, step_id, step_name, payload, created_at)
SELECT value ->> '$.name', value ->> '$.task_id', value ->> '$.step_id',
    value ->> '$.step_name', COALESCE(nullif(value -> '$.payload', 'null'), '{}'), :now
FROM json_each(:rows) ORDER BY value ->> '$.seq';

-- task_transitions --
-- A task's own history, in order.
SELECT * FROM task_transitions WHERE task_id = :task_id ORDER BY sort_key;

-- step_transitions_of_task --
-- The history of every step of a task, in order.
SELECT st.*, s.name AS step_name FROM step_transitions st
JOIN steps s ON s.id = st.step_id
WHERE st.task_id = :task_id ORDER BY st.id;

-- events_after --
-- Events after a cursor (an event id), oldest first.
SELECT * FROM events
WHERE id > :after_id AND (:task_id IS NULL OR task_id = :task_id)
ORDER BY id LIMIT :limit;
