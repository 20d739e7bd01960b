-- 0001 initial schema: templates, tasks, steps, edges, transitions, events, workers.
-- Every object lives in schema tasker. Times are timestamptz; JSON is jsonb.

CREATE SCHEMA IF NOT EXISTS tasker;

CREATE TABLE tasker.schema_migrations (
    version     integer PRIMARY KEY,
    name        text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE tasker.namespaces (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL
);

CREATE TABLE tasker.templates (
    id            bigserial PRIMARY KEY,
    namespace_id  bigint NOT NULL REFERENCES tasker.namespaces (id),
    name          text NOT NULL,
    version       text NOT NULL,
    description   text,
    definition    jsonb NOT NULL,
    created_at    timestamptz NOT NULL,
    -- Looking a template up by key; also makes registration idempotent.
    UNIQUE (namespace_id, name, version)
);

CREATE TABLE tasker.tasks (
    id                bigserial PRIMARY KEY,
    template_id       bigint NOT NULL REFERENCES tasker.templates (id),
    namespace         text NOT NULL,
    name              text NOT NULL,
    version           text NOT NULL,
    status            text NOT NULL DEFAULT 'pending' CHECK (status IN
                        ('pending', 'in_progress', 'complete', 'error', 'cancelled',
                         'resolved_manually')),
    context           jsonb NOT NULL,
    idempotency_key   text,
    request_hash      text,
    initiator         text,
    source_system     text,
    reason            text,
    tags              jsonb NOT NULL DEFAULT '[]',
    trace_context     jsonb,
    total_steps       integer NOT NULL DEFAULT 0,
    -- Steps complete or resolved_manually: the task is complete when this reaches total_steps.
    done_steps        integer NOT NULL DEFAULT 0,
    -- Per-task sort key of the next transition row.
    transition_count  integer NOT NULL DEFAULT 0,
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    started_at        timestamptz,
    completed_at      timestamptz
);
-- The same key always maps to one task; the index also serves the idempotency lookup.
CREATE UNIQUE INDEX tasks_idempotency_key_idx ON tasker.tasks (idempotency_key)
    WHERE idempotency_key IS NOT NULL;
-- `task list --status` and health counts filter on status, newest first.
CREATE INDEX tasks_status_id_idx ON tasker.tasks (status, id);
-- `task list --namespace/--name` and templates' task counts.
CREATE INDEX tasks_namespace_name_idx ON tasker.tasks (namespace, name, id);
-- Retention prunes finished tasks by completion time.
CREATE INDEX tasks_completed_at_idx ON tasker.tasks (completed_at) WHERE completed_at IS NOT NULL;

CREATE TABLE tasker.steps (
    id                    bigserial PRIMARY KEY,
    task_id               bigint NOT NULL REFERENCES tasker.tasks (id) ON DELETE CASCADE,
    namespace             text NOT NULL,
    name                  text NOT NULL,
    position              integer NOT NULL,
    handler               text NOT NULL,
    config                jsonb NOT NULL DEFAULT '{}',
    status                text NOT NULL DEFAULT 'pending' CHECK (status IN
                            ('pending', 'in_progress', 'complete', 'error', 'cancelled',
                             'resolved_manually')),
    attempts              integer NOT NULL DEFAULT 0,
    max_attempts          integer NOT NULL CHECK (max_attempts >= 1),
    retryable             boolean NOT NULL DEFAULT true,
    timeout_seconds       double precision,
    backoff_base_seconds  double precision NOT NULL,
    backoff_max_seconds   double precision NOT NULL,
    backoff_jitter        double precision NOT NULL,
    total_parents         integer NOT NULL DEFAULT 0,
    -- Parents not yet complete/resolved; a pending step is claimable when it is 0.
    remaining_parents     integer NOT NULL DEFAULT 0,
    -- Non-null exactly when the step may be claimed from this time on: a pending step whose
    -- parents are done (the time they finished) or a failed step waiting for its retry
    -- (its next_retry_at). Claiming reads only this column, so its cost ignores history.
    claimable_at          timestamptz,
    next_retry_at         timestamptz,
    last_attempted_at     timestamptz,
    results               jsonb,
    error                 jsonb,
    claimed_by            text,
    claim_token           text,
    lease_expires_at      timestamptz,
    transition_count      integer NOT NULL DEFAULT 0,
    created_at            timestamptz NOT NULL,
    updated_at            timestamptz NOT NULL,
    started_at            timestamptz,
    completed_at          timestamptz,
    UNIQUE (task_id, name)
);
-- The claim query: the oldest claimable steps. Partial, so it holds only the live queue
-- and stays small however many finished steps accumulate.
CREATE INDEX steps_claimable_idx ON tasker.steps (claimable_at, id)
    WHERE claimable_at IS NOT NULL;
-- The lease reaper: running steps by lease expiry.
CREATE INDEX steps_lease_idx ON tasker.steps (lease_expires_at)
    WHERE status = 'in_progress';
-- Finalization: a task's steps that can still run (running, claimable, awaiting retry).
CREATE INDEX steps_live_idx ON tasker.steps (task_id)
    WHERE status = 'in_progress' OR claimable_at IS NOT NULL;
-- Finalization: a task's permanently failed steps (failed and never claimable again).
CREATE INDEX steps_failed_idx ON tasker.steps (task_id)
    WHERE status = 'error' AND claimable_at IS NULL;
-- Analytics and slowest-step queries scan recently finished steps.
CREATE INDEX steps_completed_at_idx ON tasker.steps (completed_at)
    WHERE completed_at IS NOT NULL;

CREATE TABLE tasker.step_edges (
    task_id       bigint NOT NULL REFERENCES tasker.tasks (id) ON DELETE CASCADE,
    from_step_id  bigint NOT NULL REFERENCES tasker.steps (id) ON DELETE CASCADE,
    to_step_id    bigint NOT NULL REFERENCES tasker.steps (id) ON DELETE CASCADE,
    PRIMARY KEY (from_step_id, to_step_id)
);
-- Parents of a step (readiness, parent results); the primary key serves children.
CREATE INDEX step_edges_to_idx ON tasker.step_edges (to_step_id);
-- All edges of one task (DAG display, readiness of a whole task).
CREATE INDEX step_edges_task_idx ON tasker.step_edges (task_id);

CREATE TABLE tasker.task_transitions (
    id          bigserial PRIMARY KEY,
    task_id     bigint NOT NULL REFERENCES tasker.tasks (id) ON DELETE CASCADE,
    from_state  text,
    to_state    text NOT NULL,
    reason      text,
    metadata    jsonb NOT NULL DEFAULT '{}',
    actor       text,
    sort_key    integer NOT NULL,
    created_at  timestamptz NOT NULL,
    -- One row per position in a task's history, so a duplicate can never be written.
    UNIQUE (task_id, sort_key)
);

CREATE TABLE tasker.step_transitions (
    id          bigserial PRIMARY KEY,
    step_id     bigint NOT NULL REFERENCES tasker.steps (id) ON DELETE CASCADE,
    task_id     bigint NOT NULL REFERENCES tasker.tasks (id) ON DELETE CASCADE,
    from_state  text,
    to_state    text NOT NULL,
    reason      text,
    metadata    jsonb NOT NULL DEFAULT '{}',
    actor       text,
    sort_key    integer NOT NULL,
    created_at  timestamptz NOT NULL,
    UNIQUE (step_id, sort_key)
);
-- A task's whole history (GET /v1/tasks/{id}/transitions).
CREATE INDEX step_transitions_task_idx ON tasker.step_transitions (task_id, id);

CREATE TABLE tasker.events (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL,
    task_id     bigint,
    step_id     bigint,
    step_name   text,
    payload     jsonb NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL
);
-- Events of one task in order.
CREATE INDEX events_task_idx ON tasker.events (task_id, id);
-- Retention prunes by age.
CREATE INDEX events_created_at_idx ON tasker.events (created_at);

CREATE TABLE tasker.workers (
    id                 text PRIMARY KEY,
    hostname           text NOT NULL,
    pid                integer NOT NULL,
    namespaces         jsonb NOT NULL DEFAULT '[]',
    concurrency        integer NOT NULL,
    started_at         timestamptz NOT NULL,
    last_heartbeat_at  timestamptz NOT NULL,
    stopped_at         timestamptz
);
