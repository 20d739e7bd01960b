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
-- Ids come from the one-row counter, locked until commit, so they follow commit order;
-- callers run this as their transaction's last statement.
WITH block AS (
    UPDATE tasker.event_log_position SET last = last + %(count)s WHERE id = 1
    RETURNING last - %(count)s AS base
)
INSERT INTO tasker.events (id, name, task_id, step_id, step_name, payload, created_at)
SELECT block.base + r.seq + 1, r.name, r.task_id, r.step_id, r.step_name,
    COALESCE(r.payload, '{}'), %(now)s
FROM block, jsonb_to_recordset(%(rows)s) AS r(seq integer, name text, task_id bigint,
    step_id bigint, step_name text, payload jsonb)
ORDER BY r.seq;

-- task_transitions --
-- A task's own history, in order.
SELECT * FROM tasker.task_transitions WHERE task_id = %(task_id)s ORDER BY sort_key;

-- step_transitions_of_task --
-- The history of every step of a task, in order.
SELECT st.*, s.name AS step_name FROM tasker.step_transitions st
JOIN tasker.steps s ON s.id = st.step_id
WHERE st.task_id = %(task_id)s ORDER BY st.id;

-- task_transitions_page --
-- A page of a task's own history, in order: the rows after a sort key.
SELECT * FROM tasker.task_transitions
WHERE task_id = %(task_id)s AND sort_key > %(after_sort_key)s ORDER BY sort_key LIMIT %(limit)s;

-- step_transitions_of_task_page --
-- A page of the history of every step of a task, in order: the rows after an id.
SELECT st.*, s.name AS step_name FROM tasker.step_transitions st
JOIN tasker.steps s ON s.id = st.step_id
WHERE st.task_id = %(task_id)s AND st.id > %(after_id)s ORDER BY st.id LIMIT %(limit)s;

-- events_after --
-- Events after a cursor (an event id), oldest first. Ids follow commit order (see
-- insert_events), so the id alone is a safe cursor.
SELECT id, name, task_id, step_id, step_name, payload, created_at FROM tasker.events
WHERE id > %(after_id)s
  AND task_id = %(task_id)s  -- when task_id
ORDER BY id LIMIT %(limit)s;

-- acquire_consumer --
-- Take (or renew) a named consumer's lease; returns its position only to the holder.
INSERT INTO tasker.event_consumers (name, position, owner, lease_expires_at, updated_at)
VALUES (%(name)s, 0, %(owner)s, %(lease_expires_at)s, %(now)s)
ON CONFLICT (name) DO UPDATE
    SET owner = EXCLUDED.owner, lease_expires_at = EXCLUDED.lease_expires_at,
        updated_at = EXCLUDED.updated_at
    WHERE tasker.event_consumers.owner IS NULL
       OR tasker.event_consumers.owner = EXCLUDED.owner
       OR tasker.event_consumers.lease_expires_at < %(now)s
RETURNING position;

-- save_consumer_position --
-- Record how far a consumer got (only while it holds the lease). updated_at is when the
-- consumer was last seen: taking or renewing its lease, saving or releasing.
UPDATE tasker.event_consumers SET position = %(position)s, updated_at = %(now)s
WHERE name = %(name)s AND owner = %(owner)s;

-- release_consumer --
-- Give up a consumer's lease (clean stop).
UPDATE tasker.event_consumers SET owner = NULL, lease_expires_at = NULL, updated_at = %(now)s
WHERE name = %(name)s AND owner = %(owner)s;

-- slowest_active_consumer --
-- The active durable consumer furthest behind: holding a lease, or seen since a cutoff.
SELECT name, position FROM tasker.event_consumers
WHERE lease_expires_at >= %(now)s OR updated_at >= %(seen_since)s
ORDER BY position, name LIMIT 1;

-- count_events_after --
-- How many events after an id were created before a cutoff.
SELECT count(*) AS n FROM tasker.events WHERE id > %(after_id)s AND created_at < %(before)s;

-- prune_events --
-- Delete one batch of events older than a cutoff and, unless it is NULL, with an id up to
-- up_to_id; callers loop until it deletes less than a batch.
DELETE FROM tasker.events WHERE id IN (
    SELECT id FROM tasker.events
    WHERE created_at < %(before)s
      AND id <= %(up_to_id)s::bigint  -- when up_to_id
    ORDER BY id LIMIT %(limit)s);

-- finished_tasks_before --
-- One batch of finished tasks completed before a cutoff (retention).
SELECT id FROM tasker.tasks
WHERE completed_at < %(before)s
  AND status IN ('complete', 'error', 'cancelled', 'resolved_manually')
ORDER BY completed_at LIMIT %(limit)s;

-- delete_task_events --
-- Delete the events of tasks being pruned.
DELETE FROM tasker.events WHERE task_id = ANY(%(task_ids)s::bigint[]);

-- delete_tasks --
-- Delete tasks; their steps, edges and history go with them (ON DELETE CASCADE).
DELETE FROM tasker.tasks WHERE id = ANY(%(task_ids)s::bigint[]);

-- events_page --
-- Events after a cursor (an event id), oldest first, of one task and one event name when
-- given (GET /v1/events and the dashboard's live updates).
SELECT id, name, task_id, step_id, step_name, payload, created_at FROM tasker.events
WHERE id > %(after_id)s
  AND task_id = %(task_id)s  -- when task_id
  AND name = %(name)s  -- when name
ORDER BY id LIMIT %(limit)s;

-- last_event_id --
-- The newest event's id, 0 when the log is empty (where a live view starts following it).
SELECT coalesce(max(id), 0) AS id FROM tasker.events;
