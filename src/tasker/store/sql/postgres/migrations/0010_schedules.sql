-- 0010 schedules: cron schedules declared by templates, fired by the running workers.

-- One row per declared schedule, keyed by its template's namespace and name (any version:
-- the highest one declares it). Every tick up to last_tick_at has been fired or skipped;
-- next_tick_at is the first tick after it.
CREATE TABLE tasker.schedules (
    id               bigserial PRIMARY KEY,
    namespace        text NOT NULL,
    template_name    text NOT NULL,
    name             text NOT NULL,
    cron             text NOT NULL,
    timezone         text NOT NULL,
    catchup          text NOT NULL CHECK (catchup IN ('none', 'latest', 'all')),
    context          jsonb NOT NULL,
    last_tick_at     timestamptz NOT NULL,
    next_tick_at     timestamptz NOT NULL,
    paused           boolean NOT NULL DEFAULT false,
    paused_at        timestamptz,
    paused_by        text,
    pause_reason     text,
    last_fired_tick_at  timestamptz,
    last_fired_at    timestamptz,
    last_task_id     bigint,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    UNIQUE (namespace, template_name, name)
);
-- The firing workers: schedules due, by time.
CREATE INDEX schedules_due_idx ON tasker.schedules (next_tick_at) WHERE NOT paused;

-- Pauses and resumes, with who and why (an operator's manual action).
CREATE TABLE tasker.schedule_transitions (
    id           bigserial PRIMARY KEY,
    schedule_id  bigint NOT NULL REFERENCES tasker.schedules (id) ON DELETE CASCADE,
    from_state   text NOT NULL CHECK (from_state IN ('active', 'paused')),
    to_state     text NOT NULL CHECK (to_state IN ('active', 'paused')),
    reason       text,
    actor        text,
    created_at   timestamptz NOT NULL
);
CREATE INDEX schedule_transitions_schedule_idx ON tasker.schedule_transitions (schedule_id);
