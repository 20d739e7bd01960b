-- 0001 initial schema: templates, tasks, steps, edges, transitions, events, workers.
-- Times are TEXT in one fixed ISO 8601 UTC format ('2026-01-01T00:00:00.000000Z'), so
-- they compare correctly as strings; JSON is TEXT; booleans are 0/1.

CREATE TABLE schema_migrations (
    version     INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    applied_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE TABLE namespaces (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL
);

CREATE TABLE templates (
    id            INTEGER PRIMARY KEY,
    namespace_id  INTEGER NOT NULL REFERENCES namespaces (id),
    name          TEXT NOT NULL,
    version       TEXT NOT NULL,
    description   TEXT,
    definition    TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    -- Looking a template up by key; also makes registration idempotent.
    UNIQUE (namespace_id, name, version)
);

CREATE TABLE tasks (
    id                INTEGER PRIMARY KEY,
    template_id       INTEGER NOT NULL REFERENCES templates (id),
    namespace         TEXT NOT NULL,
    name              TEXT NOT NULL,
    version           TEXT NOT NULL,
    status            TEXT NOT NULL DEFAULT 'pending' CHECK (status IN
                        ('pending', 'in_progress', 'complete', 'error', 'cancelled',
                         'resolved_manually')),
    context           TEXT NOT NULL,
    idempotency_key   TEXT,
    request_hash      TEXT,
    initiator         TEXT,
    source_system     TEXT,
    reason            TEXT,
    tags              TEXT NOT NULL DEFAULT '[]',
    trace_context     TEXT,
    total_steps       INTEGER NOT NULL DEFAULT 0,
    -- Steps complete or resolved_manually: the task is complete when this reaches total_steps.
    done_steps        INTEGER NOT NULL DEFAULT 0,
    -- Per-task sort key of the next transition row.
    transition_count  INTEGER NOT NULL DEFAULT 0,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL,
    started_at        TEXT,
    completed_at      TEXT
);
-- The same key always maps to one task; the index also serves the idempotency lookup.
CREATE UNIQUE INDEX tasks_idempotency_key_idx ON tasks (idempotency_key)
    WHERE idempotency_key IS NOT NULL;
-- `task list --status` and health counts filter on status, newest first.
CREATE INDEX tasks_status_id_idx ON tasks (status, id);
-- `task list --namespace/--name` and templates' task counts.
CREATE INDEX tasks_namespace_name_idx ON tasks (namespace, name, id);
-- Retention prunes finished tasks by completion time.
CREATE INDEX tasks_completed_at_idx ON tasks (completed_at) WHERE completed_at IS NOT NULL;

CREATE TABLE steps (
    id                    INTEGER PRIMARY KEY,
    task_id               INTEGER NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    namespace             TEXT NOT NULL,
    name                  TEXT NOT NULL,
    position              INTEGER NOT NULL,
    handler               TEXT NOT NULL,
    config                TEXT NOT NULL DEFAULT '{}',
    status                TEXT NOT NULL DEFAULT 'pending' CHECK (status IN
                            ('pending', 'in_progress', 'complete', 'error', 'cancelled',
                             'resolved_manually')),
    attempts              INTEGER NOT NULL DEFAULT 0,
    max_attempts          INTEGER NOT NULL CHECK (max_attempts >= 1),
    retryable             INTEGER NOT NULL DEFAULT 1,
    timeout_seconds       REAL,
    backoff_base_seconds  REAL NOT NULL,
    backoff_max_seconds   REAL NOT NULL,
    backoff_jitter        REAL NOT NULL,
    total_parents         INTEGER NOT NULL DEFAULT 0,
    -- Parents not yet complete/resolved; a pending step is claimable when it is 0.
    remaining_parents     INTEGER NOT NULL DEFAULT 0,
    -- Non-null exactly when the step may be claimed from this time on (see the PostgreSQL
    -- schema for the full rule). Claiming reads only this column.
    claimable_at          TEXT,
    next_retry_at         TEXT,
    last_attempted_at     TEXT,
    results               TEXT,
    error                 TEXT,
    claimed_by            TEXT,
    claim_token           TEXT,
    lease_expires_at      TEXT,
    transition_count      INTEGER NOT NULL DEFAULT 0,
    created_at            TEXT NOT NULL,
    updated_at            TEXT NOT NULL,
    started_at            TEXT,
    completed_at          TEXT,
    UNIQUE (task_id, name)
);
-- The claim query: the oldest claimable steps; partial, so history never enters it.
CREATE INDEX steps_claimable_idx ON steps (claimable_at, id) WHERE claimable_at IS NOT NULL;
-- The lease reaper: running steps by lease expiry.
CREATE INDEX steps_lease_idx ON steps (lease_expires_at) WHERE status = 'in_progress';
-- Finalization: a task's steps that can still run (running, claimable, awaiting retry).
CREATE INDEX steps_live_idx ON steps (task_id)
    WHERE status = 'in_progress' OR claimable_at IS NOT NULL;
-- Finalization: a task's permanently failed steps (failed and never claimable again).
CREATE INDEX steps_failed_idx ON steps (task_id)
    WHERE status = 'error' AND claimable_at IS NULL;
-- Analytics and slowest-step queries scan recently finished steps.
CREATE INDEX steps_completed_at_idx ON steps (completed_at) WHERE completed_at IS NOT NULL;

CREATE TABLE step_edges (
    task_id       INTEGER NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    from_step_id  INTEGER NOT NULL REFERENCES steps (id) ON DELETE CASCADE,
    to_step_id    INTEGER NOT NULL REFERENCES steps (id) ON DELETE CASCADE,
    PRIMARY KEY (from_step_id, to_step_id)
);
-- Parents of a step (readiness, parent results); the primary key serves children.
CREATE INDEX step_edges_to_idx ON step_edges (to_step_id);
-- All edges of one task (DAG display, readiness of a whole task).
CREATE INDEX step_edges_task_idx ON step_edges (task_id);

CREATE TABLE task_transitions (
    id          INTEGER PRIMARY KEY,
    task_id     INTEGER NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    from_state  TEXT,
    to_state    TEXT NOT NULL,
    reason      TEXT,
    metadata    TEXT NOT NULL DEFAULT '{}',
    actor       TEXT,
    sort_key    INTEGER NOT NULL,
    created_at  TEXT NOT NULL,
    -- One row per position in a task's history, so a duplicate can never be written.
    UNIQUE (task_id, sort_key)
);

CREATE TABLE step_transitions (
    id          INTEGER PRIMARY KEY,
    step_id     INTEGER NOT NULL REFERENCES steps (id) ON DELETE CASCADE,
    task_id     INTEGER NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    from_state  TEXT,
    to_state    TEXT NOT NULL,
    reason      TEXT,
    metadata    TEXT NOT NULL DEFAULT '{}',
    actor       TEXT,
    sort_key    INTEGER NOT NULL,
    created_at  TEXT NOT NULL,
    UNIQUE (step_id, sort_key)
);
-- A task's whole history (GET /v1/tasks/{id}/transitions).
CREATE INDEX step_transitions_task_idx ON step_transitions (task_id, id);

CREATE TABLE events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT NOT NULL,
    task_id     INTEGER,
    step_id     INTEGER,
    step_name   TEXT,
    payload     TEXT NOT NULL DEFAULT '{}',
    created_at  TEXT NOT NULL
);
-- Events of one task in order.
CREATE INDEX events_task_idx ON events (task_id, id);
-- Retention prunes by age.
CREATE INDEX events_created_at_idx ON events (created_at);

CREATE TABLE workers (
    id                 TEXT PRIMARY KEY,
    hostname           TEXT NOT NULL,
    pid                INTEGER NOT NULL,
    namespaces         TEXT NOT NULL DEFAULT '[]',
    concurrency        INTEGER NOT NULL,
    started_at         TEXT NOT NULL,
    last_heartbeat_at  TEXT NOT NULL,
    stopped_at         TEXT
);
