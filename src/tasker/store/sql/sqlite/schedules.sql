-- upsert_schedules --
-- Store the schedules templates declare (rows: namespace, template_name, name, cron, timezone,
-- catchup, context, next_tick_at). A new one starts from now; a stored one keeps its progress
-- and pause unless its cron or zone changed (then it starts from now again).
INSERT INTO schedules (namespace, template_name, name, cron, timezone, catchup, context,
    last_tick_at, next_tick_at, paused, created_at, updated_at)
SELECT value ->> '$.namespace', value ->> '$.template_name', value ->> '$.name',
    value ->> '$.cron', value ->> '$.timezone', value ->> '$.catchup', value -> '$.context',
    :now, value ->> '$.next_tick_at', 0, :now, :now
FROM json_each(:rows) WHERE true
ON CONFLICT (namespace, template_name, name) DO UPDATE
SET last_tick_at = CASE WHEN cron = excluded.cron AND timezone = excluded.timezone
                        THEN last_tick_at ELSE excluded.last_tick_at END,
    next_tick_at = CASE WHEN cron = excluded.cron AND timezone = excluded.timezone
                        THEN next_tick_at ELSE excluded.next_tick_at END,
    cron = excluded.cron, timezone = excluded.timezone, catchup = excluded.catchup,
    context = excluded.context, updated_at = excluded.updated_at;

-- list_schedules --
-- Every stored schedule, by template and name.
SELECT * FROM schedules ORDER BY namespace, template_name, name;

-- try_schedule_lock --
-- Only one transaction at a time fires schedules: on SQLite the write transaction it runs
-- in already is that lock.
SELECT 1 AS acquired;

-- lock_due_schedules --
-- Schedules not paused whose next tick has come, the most overdue first.
SELECT * FROM schedules
WHERE NOT paused AND next_tick_at <= :now
ORDER BY next_tick_at, id
LIMIT :limit;

-- advance_schedule --
-- Every tick up to last_tick_at is fired or skipped; the latest fired one, when given.
UPDATE schedules
SET last_tick_at = :last_tick_at, next_tick_at = :next_tick_at,
    last_fired_tick_at = COALESCE(:fired_tick, last_fired_tick_at),
    last_fired_at = CASE WHEN :fired_tick IS NULL THEN last_fired_at ELSE :now END,
    last_task_id = COALESCE(:task_id, last_task_id), updated_at = :now
WHERE id = :id;

-- lock_schedule --
-- One schedule by its key, for a manual change (the write transaction holds the lock).
SELECT * FROM schedules
WHERE namespace = :namespace AND template_name = :template_name AND name = :name;

-- set_schedule_paused --
-- Pause or resume; resuming starts from now (the ticks of the pause are not caught up).
UPDATE schedules
SET paused = :paused,
    paused_at = CASE WHEN :paused THEN :now END,
    paused_by = CASE WHEN :paused THEN :actor END,
    pause_reason = CASE WHEN :paused THEN :reason END,
    last_tick_at = CASE WHEN :paused THEN last_tick_at ELSE :last_tick_at END,
    next_tick_at = CASE WHEN :paused THEN next_tick_at ELSE :next_tick_at END,
    updated_at = :now
WHERE id = :id
RETURNING *;

-- insert_schedule_transition --
-- The history row of a pause or resume: who, why, when.
INSERT INTO schedule_transitions (schedule_id, from_state, to_state, reason, actor, created_at)
VALUES (:schedule_id, :from_state, :to_state, :reason, :actor, :now);

-- schedule_transitions --
-- A schedule's pauses and resumes, oldest first.
SELECT t.from_state, t.to_state, t.reason, t.actor, t.created_at
FROM schedule_transitions t
JOIN schedules s ON s.id = t.schedule_id
WHERE s.namespace = :namespace AND s.template_name = :template_name AND s.name = :name
ORDER BY t.id;
