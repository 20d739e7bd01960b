-- 0010 schedules: cron schedules declared by templates, fired by the running workers.

-- One row per declared schedule, keyed by its template's namespace and name (any version:
-- the highest one declares it). Every tick up to last_tick_at has been fired or skipped;
-- next_tick_at is the first tick after it.
CREATE TABLE schedules (
    id               INTEGER PRIMARY KEY,
    namespace        TEXT NOT NULL,
    template_name    TEXT NOT NULL,
    name             TEXT NOT NULL,
    cron             TEXT NOT NULL,
    timezone         TEXT NOT NULL,
    catchup          TEXT NOT NULL CHECK (catchup IN ('none', 'latest', 'all')),
    context          TEXT NOT NULL,
    last_tick_at     TEXT NOT NULL,
    next_tick_at     TEXT NOT NULL,
    paused           INTEGER NOT NULL DEFAULT 0,
    paused_at        TEXT,
    paused_by        TEXT,
    pause_reason     TEXT,
    last_fired_tick_at  TEXT,
    last_fired_at    TEXT,
    last_task_id     INTEGER,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    UNIQUE (namespace, template_name, name)
);
-- The firing workers: schedules due, by time.
CREATE INDEX schedules_due_idx ON schedules (next_tick_at) WHERE NOT paused;

-- Pauses and resumes, with who and why (an operator's manual action).
CREATE TABLE schedule_transitions (
    id           INTEGER PRIMARY KEY,
    schedule_id  INTEGER NOT NULL REFERENCES schedules (id) ON DELETE CASCADE,
    from_state   TEXT NOT NULL CHECK (from_state IN ('active', 'paused')),
    to_state     TEXT NOT NULL CHECK (to_state IN ('active', 'paused')),
    reason       TEXT,
    actor        TEXT,
    created_at   TEXT NOT NULL
);
CREATE INDEX schedule_transitions_schedule_idx ON schedule_transitions (schedule_id);
