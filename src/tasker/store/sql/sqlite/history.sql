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
FROM json_each(:rows) WHERE :count IS NOT NULL ORDER BY value ->> '$.seq';

-- task_transitions --
-- A task's own history, in order.
SELECT * FROM task_transitions WHERE task_id = :task_id ORDER BY sort_key;

-- step_transitions_of_task --
-- The history of every step of a task, in order.
SELECT st.*, s.name AS step_name FROM step_transitions st
JOIN steps s ON s.id = st.step_id
WHERE st.task_id = :task_id ORDER BY st.id;

-- task_transitions_page --
-- A page of a task's own history, in order: the rows after a sort key.
SELECT * FROM task_transitions
WHERE task_id = :task_id AND sort_key > :after_sort_key ORDER BY sort_key LIMIT :limit;

-- step_transitions_of_task_page --
-- A page of the history of every step of a task, in order: the rows after an id.
SELECT st.*, s.name AS step_name FROM step_transitions st
JOIN steps s ON s.id = st.step_id
WHERE st.task_id = :task_id AND st.id > :after_id ORDER BY st.id LIMIT :limit;

-- events_after --
-- Events after a cursor (an event id), oldest first. One writer at a time means ids
-- follow commit order, so the id alone is a safe cursor.
SELECT id, name, task_id, step_id, step_name, payload, created_at FROM events
WHERE id > :after_id
  AND task_id = :task_id  -- when task_id
ORDER BY id LIMIT :limit;

-- acquire_consumer --
-- Take (or renew) a named consumer's lease; returns its position only to the holder.
INSERT INTO event_consumers (name, position, owner, lease_expires_at, updated_at)
VALUES (:name, 0, :owner, :lease_expires_at, :now)
ON CONFLICT (name) DO UPDATE
    SET owner = excluded.owner, lease_expires_at = excluded.lease_expires_at,
        updated_at = excluded.updated_at
    WHERE event_consumers.owner IS NULL
       OR event_consumers.owner = excluded.owner
       OR event_consumers.lease_expires_at < :now
RETURNING position;

-- save_consumer_position --
-- Record how far a consumer got (only while it holds the lease). updated_at is when the
-- consumer was last seen: taking or renewing its lease, saving or releasing.
UPDATE event_consumers SET position = :position, updated_at = :now
WHERE name = :name AND owner = :owner;

-- release_consumer --
-- Give up a consumer's lease (clean stop).
UPDATE event_consumers SET owner = NULL, lease_expires_at = NULL, updated_at = :now
WHERE name = :name AND owner = :owner;

-- slowest_active_consumer --
-- The active durable consumer furthest behind: holding a lease, or seen since a cutoff.
SELECT name, position FROM event_consumers
WHERE lease_expires_at >= :now OR updated_at >= :seen_since
ORDER BY position, name LIMIT 1;

-- count_events_after --
-- How many events after an id were created before a cutoff.
SELECT count(*) AS n FROM events WHERE id > :after_id AND created_at < :before;

-- prune_events --
-- Delete one batch of events older than a cutoff and, unless it is NULL, with an id up to
-- up_to_id; callers loop until it deletes less than a batch.
DELETE FROM events WHERE id IN (
    SELECT id FROM events
    WHERE created_at < :before
      AND id <= :up_to_id  -- when up_to_id
    ORDER BY id LIMIT :limit);

-- finished_tasks_before --
-- One batch of finished tasks completed before a cutoff (retention).
SELECT id FROM tasks
WHERE completed_at < :before
  AND status IN ('complete', 'error', 'cancelled', 'resolved_manually')
ORDER BY completed_at LIMIT :limit;

-- delete_task_events --
-- Delete the events of tasks being pruned.
DELETE FROM events WHERE task_id IN (SELECT value FROM json_each(:task_ids));

-- delete_tasks --
-- Delete tasks; their steps, edges and history go with them (ON DELETE CASCADE).
DELETE FROM tasks WHERE id IN (SELECT value FROM json_each(:task_ids));

-- events_page --
-- Events after a cursor (an event id), oldest first, of one task and one event name when
-- given (GET /v1/events and the dashboard's live updates).
SELECT id, name, task_id, step_id, step_name, payload, created_at FROM events
WHERE id > :after_id
  AND task_id = :task_id  -- when task_id
  AND name = :name  -- when name
ORDER BY id LIMIT :limit;

-- last_event_id --
-- The newest event's id, 0 when the log is empty (where a live view starts following it).
SELECT coalesce(max(id), 0) AS id FROM events;
