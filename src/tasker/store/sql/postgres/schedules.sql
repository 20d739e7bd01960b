-- upsert_schedules --
-- Store the schedules templates declare (rows: namespace, template_name, name, cron, timezone,
-- catchup, context, next_tick_at). A new one starts from now; a stored one keeps its progress
-- and pause unless its cron or zone changed (then it starts from now again).
INSERT INTO tasker.schedules (namespace, template_name, name, cron, timezone, catchup, context,
    last_tick_at, next_tick_at, paused, created_at, updated_at)
SELECT r.namespace, r.template_name, r.name, r.cron, r.timezone, r.catchup, r.context,
    %(now)s, r.next_tick_at, false, %(now)s, %(now)s
FROM jsonb_to_recordset(%(rows)s) AS r(namespace text, template_name text, name text,
    cron text, timezone text, catchup text, context jsonb, next_tick_at timestamptz)
ON CONFLICT (namespace, template_name, name) DO UPDATE
SET last_tick_at = CASE WHEN (tasker.schedules.cron, tasker.schedules.timezone)
                             = (EXCLUDED.cron, EXCLUDED.timezone)
                        THEN tasker.schedules.last_tick_at ELSE EXCLUDED.last_tick_at END,
    next_tick_at = CASE WHEN (tasker.schedules.cron, tasker.schedules.timezone)
                             = (EXCLUDED.cron, EXCLUDED.timezone)
                        THEN tasker.schedules.next_tick_at ELSE EXCLUDED.next_tick_at END,
    cron = EXCLUDED.cron, timezone = EXCLUDED.timezone, catchup = EXCLUDED.catchup,
    context = EXCLUDED.context, updated_at = EXCLUDED.updated_at;

-- list_schedules --
-- Every stored schedule, by template and name.
SELECT * FROM tasker.schedules ORDER BY namespace, template_name, name;

-- try_schedule_lock --
-- Only one transaction at a time fires schedules (released at its commit or rollback, and
-- with its connection when its worker dies).
SELECT pg_try_advisory_xact_lock(7346293) AS acquired;

-- lock_due_schedules --
-- Schedules not paused whose next tick has come, the most overdue first.
SELECT * FROM tasker.schedules
WHERE NOT paused AND next_tick_at <= %(now)s
ORDER BY next_tick_at, id
LIMIT %(limit)s
FOR UPDATE SKIP LOCKED;

-- advance_schedule --
-- Every tick up to last_tick_at is fired or skipped; the latest fired one, when given.
UPDATE tasker.schedules
SET last_tick_at = %(last_tick_at)s, next_tick_at = %(next_tick_at)s,
    last_fired_tick_at = COALESCE(%(fired_tick)s, last_fired_tick_at),
    last_fired_at = CASE WHEN %(fired_tick)s::timestamptz IS NULL THEN last_fired_at
                         ELSE %(now)s::timestamptz END,
    last_task_id = COALESCE(%(task_id)s, last_task_id), updated_at = %(now)s
WHERE id = %(id)s;

-- lock_schedule --
-- One schedule by its key, locked for a manual change.
SELECT * FROM tasker.schedules
WHERE namespace = %(namespace)s AND template_name = %(template_name)s AND name = %(name)s
FOR UPDATE;

-- set_schedule_paused --
-- Pause or resume; resuming starts from now (the ticks of the pause are not caught up).
UPDATE tasker.schedules
SET paused = %(paused)s,
    paused_at = CASE WHEN %(paused)s THEN %(now)s::timestamptz END,
    paused_by = CASE WHEN %(paused)s THEN %(actor)s END,
    pause_reason = CASE WHEN %(paused)s THEN %(reason)s END,
    last_tick_at = CASE WHEN %(paused)s THEN last_tick_at ELSE %(last_tick_at)s END,
    next_tick_at = CASE WHEN %(paused)s THEN next_tick_at ELSE %(next_tick_at)s END,
    updated_at = %(now)s
WHERE id = %(id)s
RETURNING *;

-- insert_schedule_transition --
-- The history row of a pause or resume: who, why, when.
INSERT INTO tasker.schedule_transitions (schedule_id, from_state, to_state, reason, actor,
    created_at)
VALUES (%(schedule_id)s, %(from_state)s, %(to_state)s, %(reason)s, %(actor)s, %(now)s);

-- schedule_transitions --
-- A schedule's pauses and resumes, oldest first.
SELECT t.from_state, t.to_state, t.reason, t.actor, t.created_at
FROM tasker.schedule_transitions t
JOIN tasker.schedules s ON s.id = t.schedule_id
WHERE s.namespace = %(namespace)s AND s.template_name = %(template_name)s AND s.name = %(name)s
ORDER BY t.id;
