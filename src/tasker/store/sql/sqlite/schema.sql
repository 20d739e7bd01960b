-- Tasker's sqlite schema as migrations 0001 to 0011_flow_control leave it.
-- Generated from a database migrated from zero; do not edit: run `python -m tasker.store.schema`.
-- For reading and checking: `tasker db upgrade` installs the schema (and its rows).

CREATE TABLE api_tokens (
    id            INTEGER PRIMARY KEY,
    -- Names stay unique after revocation so `token:NAME` in the history means one token.
    name          TEXT NOT NULL UNIQUE,
    token_prefix  TEXT NOT NULL,
    salt          TEXT NOT NULL,
    token_hash    TEXT NOT NULL,
    scopes        TEXT NOT NULL DEFAULT '[]',
    created_at    TEXT NOT NULL,
    last_used_at  TEXT,
    revoked_at    TEXT
);

CREATE TABLE event_consumers (
    name              TEXT PRIMARY KEY,
    position          INTEGER NOT NULL DEFAULT 0,
    -- The process delivering for this consumer now, and until when (a lease, so a
    -- crashed deliverer is replaced).
    owner             TEXT,
    lease_expires_at  TEXT,
    updated_at        TEXT NOT NULL
);

CREATE TABLE events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT NOT NULL,
    task_id     INTEGER,
    step_id     INTEGER,
    step_name   TEXT,
    payload     TEXT NOT NULL DEFAULT '{}',
    created_at  TEXT NOT NULL
);

CREATE TABLE namespaces (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL
);

CREATE TABLE rate_limits (
    key         TEXT PRIMARY KEY,
    arrival_at  TEXT NOT NULL
);

CREATE TABLE schedule_transitions (
    id           INTEGER PRIMARY KEY,
    schedule_id  INTEGER NOT NULL REFERENCES schedules (id) ON DELETE CASCADE,
    from_state   TEXT NOT NULL CHECK (from_state IN ('active', 'paused')),
    to_state     TEXT NOT NULL CHECK (to_state IN ('active', 'paused')),
    reason       TEXT,
    actor        TEXT,
    created_at   TEXT NOT NULL
);

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

CREATE TABLE schema_migrations (
    version     INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    applied_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE TABLE step_edges (
    task_id       INTEGER NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    from_step_id  INTEGER NOT NULL REFERENCES steps (id) ON DELETE CASCADE,
    to_step_id    INTEGER NOT NULL REFERENCES steps (id) ON DELETE CASCADE,
    PRIMARY KEY (from_step_id, to_step_id)
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
                             'resolved_manually', 'skipped')),
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
    completed_at          TEXT, ready_at TEXT, join_mode TEXT NOT NULL DEFAULT 'all', skipped_parents INTEGER NOT NULL DEFAULT 0, branches TEXT, wait_for TEXT, wait_timeout_seconds REAL, wait_expires_at TEXT, map_path TEXT, max_items INTEGER, group_id INTEGER, map_index INTEGER, map_item TEXT, priority INTEGER NOT NULL DEFAULT 0, workflow TEXT, child_task_id INTEGER, concurrency_key TEXT, concurrency_limit INTEGER, task_key TEXT, task_key_limit INTEGER, rate_key TEXT, rate_count INTEGER, rate_period_seconds REAL, flow_wait TEXT
    CHECK (flow_wait IN ('concurrency_limit', 'rate_limited')), rate_reserved INTEGER NOT NULL DEFAULT 0,
    UNIQUE (task_id, name)
);

CREATE TABLE task_signals (
    id          INTEGER PRIMARY KEY,
    task_id     INTEGER NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    payload     TEXT,
    actor       TEXT,
    created_at  TEXT NOT NULL,
    UNIQUE (task_id, name)
);

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
, max_steps INTEGER, run_at TEXT, priority INTEGER NOT NULL DEFAULT 0, parent_task_id INTEGER, parent_step_id INTEGER);

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

CREATE TABLE workers (
    id                 TEXT PRIMARY KEY,
    hostname           TEXT NOT NULL,
    pid                INTEGER NOT NULL,
    namespaces         TEXT NOT NULL DEFAULT '[]',
    concurrency        INTEGER NOT NULL,
    started_at         TEXT NOT NULL,
    last_heartbeat_at  TEXT NOT NULL,
    stopped_at         TEXT
, handlers TEXT, templates TEXT NOT NULL DEFAULT '[]', handler_errors TEXT NOT NULL DEFAULT '{}', lease_seconds REAL, abandoned_threads INTEGER NOT NULL DEFAULT 0);

CREATE INDEX api_tokens_prefix_idx ON api_tokens (token_prefix) WHERE revoked_at IS NULL;

CREATE INDEX events_created_at_idx ON events (created_at);

CREATE INDEX events_task_idx ON events (task_id, id);

CREATE INDEX schedule_transitions_schedule_idx ON schedule_transitions (schedule_id);

CREATE INDEX schedules_due_idx ON schedules (next_tick_at) WHERE NOT paused;

CREATE INDEX step_edges_task_idx ON step_edges (task_id);

CREATE INDEX step_edges_to_idx ON step_edges (to_step_id);

CREATE INDEX step_transitions_task_idx ON step_transitions (task_id, id);

CREATE INDEX steps_claim_priority_idx ON steps (priority DESC, claimable_at, id)
    WHERE claimable_at IS NOT NULL;

CREATE INDEX steps_claimable_idx ON steps (claimable_at, id) WHERE claimable_at IS NOT NULL;

CREATE INDEX steps_completed_at_idx ON steps (completed_at) WHERE completed_at IS NOT NULL;

CREATE INDEX steps_concurrency_parked_idx ON steps (concurrency_key, priority DESC, id)
    WHERE flow_wait = 'concurrency_limit';

CREATE INDEX steps_concurrency_running_idx ON steps (concurrency_key)
    WHERE claim_token IS NOT NULL AND concurrency_key IS NOT NULL;

CREATE INDEX steps_failed_idx ON steps (task_id)
    WHERE status = 'error' AND claimable_at IS NULL;

CREATE INDEX steps_group_idx ON steps (group_id, map_index) WHERE group_id IS NOT NULL;

CREATE INDEX steps_lease_idx ON steps (lease_expires_at) WHERE status = 'in_progress';

CREATE INDEX steps_live_idx ON steps (task_id)
    WHERE status = 'in_progress' OR claimable_at IS NOT NULL;

CREATE INDEX steps_task_key_parked_idx ON steps (task_key, priority DESC, task_id)
    WHERE flow_wait = 'concurrency_limit';

CREATE INDEX steps_task_key_running_idx ON steps (task_key, task_id)
    WHERE claim_token IS NOT NULL AND task_key IS NOT NULL;

CREATE INDEX steps_wait_expires_idx ON steps (wait_expires_at)
    WHERE wait_expires_at IS NOT NULL;

CREATE INDEX tasks_completed_at_idx ON tasks (completed_at) WHERE completed_at IS NOT NULL;

CREATE UNIQUE INDEX tasks_idempotency_key_idx ON tasks (idempotency_key)
    WHERE idempotency_key IS NOT NULL;

CREATE INDEX tasks_namespace_name_idx ON tasks (namespace, name, id);

CREATE UNIQUE INDEX tasks_parent_step_idx ON tasks (parent_step_id)
    WHERE parent_step_id IS NOT NULL;

CREATE INDEX tasks_parent_task_idx ON tasks (parent_task_id) WHERE parent_task_id IS NOT NULL;

CREATE INDEX tasks_status_id_idx ON tasks (status, id);
