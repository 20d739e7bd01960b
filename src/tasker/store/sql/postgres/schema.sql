-- Tasker's postgres schema as migrations 0001 to 0011_flow_control leave it.
-- Generated from a database migrated from zero; do not edit: run `python -m tasker.store.schema`.
-- For reading and checking: `tasker db upgrade` installs the schema (and its rows).

SET check_function_bodies = false;

CREATE SCHEMA tasker;

CREATE TABLE tasker.api_tokens (
    id bigserial NOT NULL,
    name text NOT NULL,
    token_prefix text NOT NULL,
    salt text NOT NULL,
    token_hash text NOT NULL,
    scopes jsonb DEFAULT '[]'::jsonb NOT NULL,
    created_at timestamp with time zone NOT NULL,
    last_used_at timestamp with time zone,
    revoked_at timestamp with time zone,
    CONSTRAINT api_tokens_pkey PRIMARY KEY (id),
    CONSTRAINT api_tokens_name_key UNIQUE (name)
);

CREATE TABLE tasker.event_consumers (
    name text NOT NULL,
    "position" bigint DEFAULT 0 NOT NULL,
    owner text,
    lease_expires_at timestamp with time zone,
    updated_at timestamp with time zone NOT NULL,
    CONSTRAINT event_consumers_pkey PRIMARY KEY (name)
);

CREATE TABLE tasker.event_log_position (
    id integer NOT NULL,
    last bigint NOT NULL,
    CONSTRAINT event_log_position_pkey PRIMARY KEY (id),
    CONSTRAINT event_log_position_id_check CHECK ((id = 1))
);

CREATE TABLE tasker.events (
    id bigint NOT NULL,
    name text NOT NULL,
    task_id bigint,
    step_id bigint,
    step_name text,
    payload jsonb DEFAULT '{}'::jsonb NOT NULL,
    created_at timestamp with time zone NOT NULL,
    CONSTRAINT events_pkey PRIMARY KEY (id)
);

CREATE TABLE tasker.namespaces (
    id bigserial NOT NULL,
    name text NOT NULL,
    created_at timestamp with time zone NOT NULL,
    CONSTRAINT namespaces_pkey PRIMARY KEY (id),
    CONSTRAINT namespaces_name_key UNIQUE (name)
);

CREATE TABLE tasker.rate_limits (
    key text NOT NULL,
    arrival_at timestamp with time zone NOT NULL,
    CONSTRAINT rate_limits_pkey PRIMARY KEY (key)
);

CREATE TABLE tasker.schedule_transitions (
    id bigserial NOT NULL,
    schedule_id bigint NOT NULL,
    from_state text NOT NULL,
    to_state text NOT NULL,
    reason text,
    actor text,
    created_at timestamp with time zone NOT NULL,
    CONSTRAINT schedule_transitions_pkey PRIMARY KEY (id),
    CONSTRAINT schedule_transitions_from_state_check CHECK ((from_state = ANY (ARRAY['active'::text, 'paused'::text]))),
    CONSTRAINT schedule_transitions_to_state_check CHECK ((to_state = ANY (ARRAY['active'::text, 'paused'::text])))
);

CREATE TABLE tasker.schedules (
    id bigserial NOT NULL,
    namespace text NOT NULL,
    template_name text NOT NULL,
    name text NOT NULL,
    cron text NOT NULL,
    timezone text NOT NULL,
    catchup text NOT NULL,
    context jsonb NOT NULL,
    last_tick_at timestamp with time zone NOT NULL,
    next_tick_at timestamp with time zone NOT NULL,
    paused boolean DEFAULT false NOT NULL,
    paused_at timestamp with time zone,
    paused_by text,
    pause_reason text,
    last_fired_tick_at timestamp with time zone,
    last_fired_at timestamp with time zone,
    last_task_id bigint,
    created_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL,
    CONSTRAINT schedules_pkey PRIMARY KEY (id),
    CONSTRAINT schedules_namespace_template_name_name_key UNIQUE (namespace, template_name, name),
    CONSTRAINT schedules_catchup_check CHECK ((catchup = ANY (ARRAY['none'::text, 'latest'::text, 'all'::text])))
);

CREATE TABLE tasker.schema_migrations (
    version integer NOT NULL,
    name text NOT NULL,
    applied_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT schema_migrations_pkey PRIMARY KEY (version)
);

CREATE TABLE tasker.step_edges (
    task_id bigint NOT NULL,
    from_step_id bigint NOT NULL,
    to_step_id bigint NOT NULL,
    CONSTRAINT step_edges_pkey PRIMARY KEY (from_step_id, to_step_id)
);

CREATE TABLE tasker.step_transitions (
    id bigserial NOT NULL,
    step_id bigint NOT NULL,
    task_id bigint NOT NULL,
    from_state text,
    to_state text NOT NULL,
    reason text,
    metadata jsonb DEFAULT '{}'::jsonb NOT NULL,
    actor text,
    sort_key integer NOT NULL,
    created_at timestamp with time zone NOT NULL,
    CONSTRAINT step_transitions_pkey PRIMARY KEY (id),
    CONSTRAINT step_transitions_step_id_sort_key_key UNIQUE (step_id, sort_key)
);

CREATE TABLE tasker.steps (
    id bigserial NOT NULL,
    task_id bigint NOT NULL,
    namespace text NOT NULL,
    name text NOT NULL,
    "position" integer NOT NULL,
    handler text NOT NULL,
    config jsonb DEFAULT '{}'::jsonb NOT NULL,
    status text DEFAULT 'pending'::text NOT NULL,
    attempts integer DEFAULT 0 NOT NULL,
    max_attempts integer NOT NULL,
    retryable boolean DEFAULT true NOT NULL,
    timeout_seconds double precision,
    backoff_base_seconds double precision NOT NULL,
    backoff_max_seconds double precision NOT NULL,
    backoff_jitter double precision NOT NULL,
    total_parents integer DEFAULT 0 NOT NULL,
    remaining_parents integer DEFAULT 0 NOT NULL,
    claimable_at timestamp with time zone,
    next_retry_at timestamp with time zone,
    last_attempted_at timestamp with time zone,
    results jsonb,
    error jsonb,
    claimed_by text,
    claim_token text,
    lease_expires_at timestamp with time zone,
    transition_count integer DEFAULT 0 NOT NULL,
    created_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL,
    started_at timestamp with time zone,
    completed_at timestamp with time zone,
    ready_at timestamp with time zone,
    join_mode text DEFAULT 'all'::text NOT NULL,
    skipped_parents integer DEFAULT 0 NOT NULL,
    branches jsonb,
    wait_for text,
    wait_timeout_seconds double precision,
    wait_expires_at timestamp with time zone,
    map_path text,
    max_items integer,
    group_id bigint,
    map_index integer,
    map_item jsonb,
    priority integer DEFAULT 0 NOT NULL,
    workflow jsonb,
    child_task_id bigint,
    concurrency_key text,
    concurrency_limit integer,
    task_key text,
    task_key_limit integer,
    rate_key text,
    rate_count integer,
    rate_period_seconds double precision,
    flow_wait text,
    rate_reserved boolean DEFAULT false NOT NULL,
    CONSTRAINT steps_pkey PRIMARY KEY (id),
    CONSTRAINT steps_task_id_name_key UNIQUE (task_id, name),
    CONSTRAINT steps_flow_wait_check CHECK ((flow_wait = ANY (ARRAY['concurrency_limit'::text, 'rate_limited'::text]))),
    CONSTRAINT steps_join_mode_check CHECK ((join_mode = ANY (ARRAY['all'::text, 'any'::text]))),
    CONSTRAINT steps_max_attempts_check CHECK ((max_attempts >= 1)),
    CONSTRAINT steps_status_check CHECK ((status = ANY (ARRAY['pending'::text, 'in_progress'::text, 'complete'::text, 'error'::text, 'cancelled'::text, 'resolved_manually'::text, 'skipped'::text])))
);

CREATE TABLE tasker.task_signals (
    id bigserial NOT NULL,
    task_id bigint NOT NULL,
    name text NOT NULL,
    payload jsonb,
    actor text,
    created_at timestamp with time zone NOT NULL,
    CONSTRAINT task_signals_pkey PRIMARY KEY (id),
    CONSTRAINT task_signals_task_id_name_key UNIQUE (task_id, name)
);

CREATE TABLE tasker.task_transitions (
    id bigserial NOT NULL,
    task_id bigint NOT NULL,
    from_state text,
    to_state text NOT NULL,
    reason text,
    metadata jsonb DEFAULT '{}'::jsonb NOT NULL,
    actor text,
    sort_key integer NOT NULL,
    created_at timestamp with time zone NOT NULL,
    CONSTRAINT task_transitions_pkey PRIMARY KEY (id),
    CONSTRAINT task_transitions_task_id_sort_key_key UNIQUE (task_id, sort_key)
);

CREATE TABLE tasker.tasks (
    id bigserial NOT NULL,
    template_id bigint NOT NULL,
    namespace text NOT NULL,
    name text NOT NULL,
    version text NOT NULL,
    status text DEFAULT 'pending'::text NOT NULL,
    context jsonb NOT NULL,
    idempotency_key text,
    request_hash text,
    initiator text,
    source_system text,
    reason text,
    tags jsonb DEFAULT '[]'::jsonb NOT NULL,
    trace_context jsonb,
    total_steps integer DEFAULT 0 NOT NULL,
    done_steps integer DEFAULT 0 NOT NULL,
    transition_count integer DEFAULT 0 NOT NULL,
    created_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL,
    started_at timestamp with time zone,
    completed_at timestamp with time zone,
    max_steps integer,
    run_at timestamp with time zone,
    priority integer DEFAULT 0 NOT NULL,
    parent_task_id bigint,
    parent_step_id bigint,
    CONSTRAINT tasks_pkey PRIMARY KEY (id),
    CONSTRAINT tasks_status_check CHECK ((status = ANY (ARRAY['pending'::text, 'in_progress'::text, 'complete'::text, 'error'::text, 'cancelled'::text, 'resolved_manually'::text])))
);

CREATE TABLE tasker.templates (
    id bigserial NOT NULL,
    namespace_id bigint NOT NULL,
    name text NOT NULL,
    version text NOT NULL,
    description text,
    definition jsonb NOT NULL,
    created_at timestamp with time zone NOT NULL,
    CONSTRAINT templates_pkey PRIMARY KEY (id),
    CONSTRAINT templates_namespace_id_name_version_key UNIQUE (namespace_id, name, version)
);

CREATE TABLE tasker.workers (
    id text NOT NULL,
    hostname text NOT NULL,
    pid integer NOT NULL,
    namespaces jsonb DEFAULT '[]'::jsonb NOT NULL,
    concurrency integer NOT NULL,
    started_at timestamp with time zone NOT NULL,
    last_heartbeat_at timestamp with time zone NOT NULL,
    stopped_at timestamp with time zone,
    handlers jsonb,
    templates jsonb DEFAULT '[]'::jsonb NOT NULL,
    handler_errors jsonb DEFAULT '{}'::jsonb NOT NULL,
    lease_seconds double precision,
    abandoned_threads integer DEFAULT 0 NOT NULL,
    CONSTRAINT workers_pkey PRIMARY KEY (id)
);

ALTER TABLE tasker.schedule_transitions
    ADD CONSTRAINT schedule_transitions_schedule_id_fkey FOREIGN KEY (schedule_id) REFERENCES tasker.schedules(id) ON DELETE CASCADE;

ALTER TABLE tasker.step_edges
    ADD CONSTRAINT step_edges_from_step_id_fkey FOREIGN KEY (from_step_id) REFERENCES tasker.steps(id) ON DELETE CASCADE;

ALTER TABLE tasker.step_edges
    ADD CONSTRAINT step_edges_task_id_fkey FOREIGN KEY (task_id) REFERENCES tasker.tasks(id) ON DELETE CASCADE;

ALTER TABLE tasker.step_edges
    ADD CONSTRAINT step_edges_to_step_id_fkey FOREIGN KEY (to_step_id) REFERENCES tasker.steps(id) ON DELETE CASCADE;

ALTER TABLE tasker.step_transitions
    ADD CONSTRAINT step_transitions_step_id_fkey FOREIGN KEY (step_id) REFERENCES tasker.steps(id) ON DELETE CASCADE;

ALTER TABLE tasker.step_transitions
    ADD CONSTRAINT step_transitions_task_id_fkey FOREIGN KEY (task_id) REFERENCES tasker.tasks(id) ON DELETE CASCADE;

ALTER TABLE tasker.steps
    ADD CONSTRAINT steps_task_id_fkey FOREIGN KEY (task_id) REFERENCES tasker.tasks(id) ON DELETE CASCADE;

ALTER TABLE tasker.task_signals
    ADD CONSTRAINT task_signals_task_id_fkey FOREIGN KEY (task_id) REFERENCES tasker.tasks(id) ON DELETE CASCADE;

ALTER TABLE tasker.task_transitions
    ADD CONSTRAINT task_transitions_task_id_fkey FOREIGN KEY (task_id) REFERENCES tasker.tasks(id) ON DELETE CASCADE;

ALTER TABLE tasker.tasks
    ADD CONSTRAINT tasks_template_id_fkey FOREIGN KEY (template_id) REFERENCES tasker.templates(id);

ALTER TABLE tasker.templates
    ADD CONSTRAINT templates_namespace_id_fkey FOREIGN KEY (namespace_id) REFERENCES tasker.namespaces(id);

CREATE INDEX api_tokens_prefix_idx ON tasker.api_tokens USING btree (token_prefix) WHERE (revoked_at IS NULL);

CREATE INDEX events_created_at_idx ON tasker.events USING btree (created_at);

CREATE INDEX events_task_idx ON tasker.events USING btree (task_id, id);

CREATE INDEX schedule_transitions_schedule_idx ON tasker.schedule_transitions USING btree (schedule_id);

CREATE INDEX schedules_due_idx ON tasker.schedules USING btree (next_tick_at) WHERE (NOT paused);

CREATE INDEX step_edges_task_idx ON tasker.step_edges USING btree (task_id);

CREATE INDEX step_edges_to_idx ON tasker.step_edges USING btree (to_step_id);

CREATE INDEX step_transitions_task_idx ON tasker.step_transitions USING btree (task_id, id);

CREATE INDEX steps_claim_priority_idx ON tasker.steps USING btree (priority DESC, claimable_at, id) WHERE (claimable_at IS NOT NULL);

CREATE INDEX steps_claimable_idx ON tasker.steps USING btree (claimable_at, id) WHERE (claimable_at IS NOT NULL);

CREATE INDEX steps_completed_at_idx ON tasker.steps USING btree (completed_at) WHERE (completed_at IS NOT NULL);

CREATE INDEX steps_concurrency_parked_idx ON tasker.steps USING btree (concurrency_key, priority DESC, id) WHERE (flow_wait = 'concurrency_limit'::text);

CREATE INDEX steps_concurrency_running_idx ON tasker.steps USING btree (concurrency_key) WHERE ((claim_token IS NOT NULL) AND (concurrency_key IS NOT NULL));

CREATE INDEX steps_failed_idx ON tasker.steps USING btree (task_id) WHERE ((status = 'error'::text) AND (claimable_at IS NULL));

CREATE INDEX steps_group_idx ON tasker.steps USING btree (group_id, map_index) WHERE (group_id IS NOT NULL);

CREATE INDEX steps_lease_idx ON tasker.steps USING btree (lease_expires_at) WHERE (status = 'in_progress'::text);

CREATE INDEX steps_live_idx ON tasker.steps USING btree (task_id) WHERE ((status = 'in_progress'::text) OR (claimable_at IS NOT NULL));

CREATE INDEX steps_task_key_parked_idx ON tasker.steps USING btree (task_key, priority DESC, task_id) WHERE (flow_wait = 'concurrency_limit'::text);

CREATE INDEX steps_task_key_running_idx ON tasker.steps USING btree (task_key, task_id) WHERE ((claim_token IS NOT NULL) AND (task_key IS NOT NULL));

CREATE INDEX steps_wait_expires_idx ON tasker.steps USING btree (wait_expires_at) WHERE (wait_expires_at IS NOT NULL);

CREATE INDEX tasks_completed_at_idx ON tasker.tasks USING btree (completed_at) WHERE (completed_at IS NOT NULL);

CREATE UNIQUE INDEX tasks_idempotency_key_idx ON tasker.tasks USING btree (idempotency_key) WHERE (idempotency_key IS NOT NULL);

CREATE INDEX tasks_namespace_name_idx ON tasker.tasks USING btree (namespace, name, id);

CREATE UNIQUE INDEX tasks_parent_step_idx ON tasker.tasks USING btree (parent_step_id) WHERE (parent_step_id IS NOT NULL);

CREATE INDEX tasks_parent_task_idx ON tasker.tasks USING btree (parent_task_id) WHERE (parent_task_id IS NOT NULL);

CREATE INDEX tasks_status_id_idx ON tasker.tasks USING btree (status, id);

CREATE OR REPLACE FUNCTION tasker.calculate_dependency_levels(task_id bigint)
 RETURNS TABLE(workflow_step_id bigint, dependency_level integer)
 LANGUAGE plpgsql
 STABLE
AS $function$
DECLARE
    v_ids         bigint[];   -- the task's step ids; a step is known by its slot in here
    v_n           integer;
    v_children    integer[];  -- child slots grouped by parent slot (compressed rows)
    v_first       integer[];  -- v_first[p]: where parent p's children start in v_children
    v_out         integer[];  -- number of children per slot
    v_waiting     integer[];  -- parents not yet levelled, per slot
    v_level       integer[];
    v_queue       integer[];
    v_head        integer := 1;
    v_tail        integer := 0;
    v_parent      integer;
    v_child       integer;
BEGIN
    SELECT array_agg(s.id ORDER BY s.id) INTO v_ids
    FROM tasker.steps s WHERE s.task_id = $1;
    v_n := coalesce(cardinality(v_ids), 0);
    IF v_n = 0 THEN
        RETURN;
    END IF;

    WITH slot AS (
        SELECT t.step_id, t.ord::integer AS ord
        FROM unnest(v_ids) WITH ORDINALITY AS t(step_id, ord)
    ),
    edge AS (
        SELECT ps.ord AS parent_slot, cs.ord AS child_slot
        FROM tasker.step_edges se
        JOIN slot ps ON ps.step_id = se.from_step_id
        JOIN slot cs ON cs.step_id = se.to_step_id
        WHERE se.task_id = $1
    ),
    outs AS (
        SELECT x.parent_slot AS ord, count(*)::integer AS n FROM edge x GROUP BY x.parent_slot
    ),
    ins AS (
        SELECT x.child_slot AS ord, count(*)::integer AS n FROM edge x GROUP BY x.child_slot
    ),
    degrees AS (
        SELECT g.ord, coalesce(o.n, 0) AS n_out, coalesce(n_in.n, 0) AS n_in,
               (sum(coalesce(o.n, 0)) OVER (ORDER BY g.ord) - coalesce(o.n, 0) + 1)::integer
                   AS first_child
        FROM generate_series(1, v_n) AS g(ord)
        LEFT JOIN outs o ON o.ord = g.ord
        LEFT JOIN ins n_in ON n_in.ord = g.ord
    )
    SELECT (SELECT coalesce(array_agg(x.child_slot ORDER BY x.parent_slot, x.child_slot),
                            '{}'::integer[]) FROM edge x),
           (SELECT array_agg(d.n_out ORDER BY d.ord) FROM degrees d),
           (SELECT array_agg(d.n_in ORDER BY d.ord) FROM degrees d),
           (SELECT array_agg(d.first_child ORDER BY d.ord) FROM degrees d)
    INTO v_children, v_out, v_waiting, v_first;

    v_level := array_fill(0, ARRAY[v_n]);
    v_queue := array_fill(0, ARRAY[v_n]);
    FOR i IN 1..v_n LOOP
        IF v_waiting[i] = 0 THEN
            v_tail := v_tail + 1;
            v_queue[v_tail] := i;
        END IF;
    END LOOP;

    WHILE v_head <= v_tail LOOP
        v_parent := v_queue[v_head];
        v_head := v_head + 1;
        FOR k IN v_first[v_parent] .. v_first[v_parent] + v_out[v_parent] - 1 LOOP
            v_child := v_children[k];
            IF v_level[v_child] <= v_level[v_parent] THEN
                v_level[v_child] := v_level[v_parent] + 1;
            END IF;
            v_waiting[v_child] := v_waiting[v_child] - 1;
            IF v_waiting[v_child] = 0 THEN
                v_tail := v_tail + 1;
                v_queue[v_tail] := v_child;
            END IF;
        END LOOP;
    END LOOP;

    IF v_tail < v_n THEN
        RAISE EXCEPTION 'task % has a dependency cycle', $1;
    END IF;

    RETURN QUERY
        SELECT t.step_id, t.lvl
        FROM unnest(v_ids, v_level) AS t(step_id, lvl)
        ORDER BY t.lvl, t.step_id;
END;
$function$;

CREATE OR REPLACE FUNCTION tasker.get_analytics_metrics(since timestamp with time zone, now timestamp with time zone DEFAULT now())
 RETURNS TABLE(analysis_period_start timestamp with time zone, calculated_at timestamp with time zone, active_tasks_count bigint, total_namespaces_count bigint, unique_task_types_count bigint, tasks_created bigint, tasks_completed bigint, tasks_failed bigint, steps_completed bigint, steps_failed bigint, completion_rate numeric, error_rate numeric, avg_task_duration_seconds numeric, avg_step_duration_seconds numeric, task_throughput_per_minute numeric, step_throughput_per_minute numeric)
 LANGUAGE sql
 STABLE
AS $function$
    WITH task_window AS (
        SELECT
            count(*) FILTER (WHERE created_at BETWEEN $1 AND $2) AS created,
            count(*) FILTER (WHERE status IN ('complete', 'resolved_manually')
                             AND completed_at BETWEEN $1 AND $2) AS completed,
            count(*) FILTER (WHERE status = 'error'
                             AND coalesce(completed_at, updated_at) BETWEEN $1 AND $2) AS failed,
            avg(extract(epoch FROM completed_at - created_at))
                FILTER (WHERE status IN ('complete', 'resolved_manually')
                        AND completed_at BETWEEN $1 AND $2) AS avg_duration
        FROM tasker.tasks
    ),
    step_window AS (
        SELECT
            count(*) FILTER (WHERE status IN ('complete', 'resolved_manually')
                             AND completed_at BETWEEN $1 AND $2) AS completed,
            count(*) FILTER (WHERE status = 'error' AND updated_at BETWEEN $1 AND $2) AS failed,
            avg(extract(epoch FROM completed_at - coalesce(last_attempted_at, started_at)))
                FILTER (WHERE status IN ('complete', 'resolved_manually')
                        AND completed_at BETWEEN $1 AND $2
                        AND coalesce(last_attempted_at, started_at) IS NOT NULL) AS avg_duration
        FROM tasker.steps
        WHERE (completed_at BETWEEN $1 AND $2) OR (status = 'error' AND updated_at BETWEEN $1 AND $2)
    ),
    span AS (SELECT extract(epoch FROM $2 - $1) / 60.0 AS minutes)
    SELECT $1, $2,
           (SELECT count(*) FROM tasker.tasks WHERE status IN ('pending', 'in_progress')),
           (SELECT count(*) FROM tasker.namespaces),
           (SELECT count(*) FROM (SELECT DISTINCT namespace_id, name FROM tasker.templates) u),
           tw.created, tw.completed, tw.failed, sw.completed, sw.failed,
           CASE WHEN tw.completed + tw.failed = 0 THEN 0.000000
                ELSE round(tw.completed::numeric / (tw.completed + tw.failed), 6) END,
           CASE WHEN tw.completed + tw.failed = 0 THEN 0.000000
                ELSE round(tw.failed::numeric / (tw.completed + tw.failed), 6) END,
           round(coalesce(tw.avg_duration, 0), 6),
           round(coalesce(sw.avg_duration, 0), 6),
           CASE WHEN sp.minutes <= 0 THEN 0.000000 ELSE round(tw.completed / sp.minutes, 6) END,
           CASE WHEN sp.minutes <= 0 THEN 0.000000 ELSE round(sw.completed / sp.minutes, 6) END
    FROM task_window tw, step_window sw, span sp
$function$;

CREATE OR REPLACE FUNCTION tasker.get_slowest_steps(since timestamp with time zone, lim integer DEFAULT 10)
 RETURNS TABLE(workflow_step_id bigint, task_id bigint, namespace text, task_name text, version text, step_name text, status text, attempts integer, duration_seconds numeric, completed_at timestamp with time zone)
 LANGUAGE sql
 STABLE
AS $function$
    SELECT s.id, s.task_id, t.namespace, t.name, t.version, s.name, s.status, s.attempts,
           round(extract(epoch FROM s.completed_at - coalesce(s.last_attempted_at, s.started_at)),
                 6) AS duration_seconds,
           s.completed_at
    FROM tasker.steps s
    JOIN tasker.tasks t ON t.id = s.task_id
    WHERE s.completed_at IS NOT NULL AND s.completed_at >= $1
      AND coalesce(s.last_attempted_at, s.started_at) IS NOT NULL
    ORDER BY duration_seconds DESC, s.id
    LIMIT $2
$function$;

CREATE OR REPLACE FUNCTION tasker.get_slowest_tasks(since timestamp with time zone, lim integer DEFAULT 10)
 RETURNS TABLE(task_id bigint, namespace text, name text, version text, status text, total_steps integer, duration_seconds numeric, created_at timestamp with time zone, completed_at timestamp with time zone)
 LANGUAGE sql
 STABLE
AS $function$
    SELECT t.id, t.namespace, t.name, t.version, t.status, t.total_steps,
           round(extract(epoch FROM t.completed_at - t.created_at), 6) AS duration_seconds,
           t.created_at, t.completed_at
    FROM tasker.tasks t
    WHERE t.completed_at IS NOT NULL AND t.completed_at >= $1
    ORDER BY duration_seconds DESC, t.id
    LIMIT $2
$function$;

CREATE OR REPLACE FUNCTION tasker.get_step_readiness_status(task_id bigint, step_ids bigint[] DEFAULT NULL::bigint[], now timestamp with time zone DEFAULT now())
 RETURNS TABLE(workflow_step_id bigint, task_id bigint, name text, current_state text, dependencies_satisfied boolean, retry_eligible boolean, ready_for_execution boolean, total_parents integer, completed_parents integer, attempts integer, max_attempts integer, next_retry_at timestamp with time zone, last_attempted_at timestamp with time zone, blocking_reason text)
 LANGUAGE sql
 STABLE
AS $function$
    SELECT r.workflow_step_id, r.task_id, r.name, r.current_state, r.dependencies_satisfied,
           r.retry_eligible, r.ready_for_execution, r.total_parents, r.completed_parents,
           r.attempts, r.max_attempts, r.next_retry_at, r.last_attempted_at, r.blocking_reason
    FROM tasker.step_readiness_of(ARRAY[$1], $2, $3) r
    ORDER BY r.task_id, r.position, r.workflow_step_id
$function$;

CREATE OR REPLACE FUNCTION tasker.get_step_readiness_status_batch(task_ids bigint[], now timestamp with time zone DEFAULT now())
 RETURNS TABLE(workflow_step_id bigint, task_id bigint, name text, current_state text, dependencies_satisfied boolean, retry_eligible boolean, ready_for_execution boolean, total_parents integer, completed_parents integer, attempts integer, max_attempts integer, next_retry_at timestamp with time zone, last_attempted_at timestamp with time zone, blocking_reason text)
 LANGUAGE sql
 STABLE
AS $function$
    SELECT r.workflow_step_id, r.task_id, r.name, r.current_state, r.dependencies_satisfied,
           r.retry_eligible, r.ready_for_execution, r.total_parents, r.completed_parents,
           r.attempts, r.max_attempts, r.next_retry_at, r.last_attempted_at, r.blocking_reason
    FROM tasker.step_readiness_of($1, NULL, $2) r
    ORDER BY r.task_id, r.position, r.workflow_step_id
$function$;

CREATE OR REPLACE FUNCTION tasker.get_system_health_counts(now timestamp with time zone DEFAULT now())
 RETURNS TABLE(total_tasks bigint, pending_tasks bigint, in_progress_tasks bigint, complete_tasks bigint, error_tasks bigint, cancelled_tasks bigint, resolved_manually_tasks bigint, total_steps bigint, pending_steps bigint, in_progress_steps bigint, complete_steps bigint, error_steps bigint, retrying_steps bigint, exhausted_steps bigint, claimable_steps bigint, expired_leases bigint, active_workers bigint)
 LANGUAGE sql
 STABLE
AS $function$
    WITH t AS (
        SELECT count(*) AS total,
               count(*) FILTER (WHERE status = 'pending') AS pending,
               count(*) FILTER (WHERE status = 'in_progress') AS in_progress,
               count(*) FILTER (WHERE status = 'complete') AS complete,
               count(*) FILTER (WHERE status = 'error') AS error,
               count(*) FILTER (WHERE status = 'cancelled') AS cancelled,
               count(*) FILTER (WHERE status = 'resolved_manually') AS resolved
        FROM tasker.tasks
    ),
    s AS (
        SELECT count(*) AS total,
               count(*) FILTER (WHERE status = 'pending') AS pending,
               count(*) FILTER (WHERE status = 'in_progress') AS in_progress,
               count(*) FILTER (WHERE status = 'complete') AS complete,
               count(*) FILTER (WHERE status = 'error') AS error,
               count(*) FILTER (WHERE status = 'error' AND retryable
                                AND attempts < max_attempts) AS retrying,
               count(*) FILTER (WHERE status = 'error' AND NOT (retryable
                                AND attempts < max_attempts)) AS exhausted,
               count(*) FILTER (WHERE status = 'in_progress'
                                AND lease_expires_at < $1) AS expired
        FROM tasker.steps
    )
    SELECT t.total, t.pending, t.in_progress, t.complete, t.error, t.cancelled, t.resolved,
           s.total, s.pending, s.in_progress, s.complete, s.error, s.retrying, s.exhausted,
           (SELECT count(*) FROM tasker.steps c
            WHERE c.claimable_at IS NOT NULL AND c.claimable_at <= $1),
           s.expired,
           (SELECT count(*) FROM tasker.workers w
            WHERE w.stopped_at IS NULL AND w.last_heartbeat_at >= $1 - interval '90 seconds')
    FROM t, s
$function$;

CREATE OR REPLACE FUNCTION tasker.get_task_execution_context(task_id bigint, now timestamp with time zone DEFAULT now())
 RETURNS TABLE(task_id bigint, status text, total_steps integer, pending_steps integer, in_progress_steps integer, completed_steps integer, failed_steps integer, ready_steps integer, execution_status text, recommended_action text, completion_percentage numeric, health_status text)
 LANGUAGE sql
 STABLE
AS $function$
    SELECT * FROM tasker.get_task_execution_contexts_batch(ARRAY[$1], $2)
$function$;

CREATE OR REPLACE FUNCTION tasker.get_task_execution_contexts_batch(task_ids bigint[], now timestamp with time zone DEFAULT now())
 RETURNS TABLE(task_id bigint, status text, total_steps integer, pending_steps integer, in_progress_steps integer, completed_steps integer, failed_steps integer, ready_steps integer, execution_status text, recommended_action text, completion_percentage numeric, health_status text)
 LANGUAGE sql
 STABLE
AS $function$
    WITH counts AS (
        SELECT r.task_id,
               count(*)::integer AS n_total,
               (count(*) FILTER (WHERE r.current_state = 'pending'))::integer AS n_pending,
               (count(*) FILTER (WHERE r.current_state = 'in_progress'))::integer AS n_running,
               (count(*) FILTER (WHERE r.current_state IN ('complete', 'resolved_manually', 'skipped')))
                   ::integer AS n_done,
               (count(*) FILTER (WHERE r.current_state = 'error'))::integer AS n_failed,
               (count(*) FILTER (WHERE r.ready_for_execution))::integer AS n_ready,
               (count(*) FILTER (WHERE r.blocking_reason IN ('not_retryable', 'retries_exhausted')))
                   ::integer AS n_blocked,
               (count(*) FILTER (WHERE r.blocking_reason = 'waiting_for_backoff'))::integer
                   AS n_backoff,
               (count(*) FILTER (WHERE r.current_state = 'cancelled'))::integer AS n_cancelled
        FROM tasker.step_readiness_of($1, NULL, $2) r
        GROUP BY r.task_id
    ),
    verdict AS (
        SELECT t.id, t.status,
               coalesce(c.n_total, 0) AS n_total, coalesce(c.n_pending, 0) AS n_pending,
               coalesce(c.n_running, 0) AS n_running, coalesce(c.n_done, 0) AS n_done,
               coalesce(c.n_failed, 0) AS n_failed, coalesce(c.n_ready, 0) AS n_ready,
               CASE
                   WHEN t.status = 'cancelled' THEN 'cancelled'
                   WHEN coalesce(c.n_ready, 0) > 0 THEN 'has_ready_steps'
                   WHEN coalesce(c.n_running, 0) > 0 THEN 'processing'
                   WHEN coalesce(c.n_done, 0) = coalesce(c.n_total, 0) THEN 'all_complete'
                   WHEN c.n_blocked > 0 THEN 'blocked_by_failures'
                   WHEN c.n_backoff > 0 THEN 'waiting_for_retry'
                   WHEN c.n_cancelled > 0 THEN 'cancelled'
                   ELSE 'waiting_for_dependencies'
               END AS execution_status
        FROM tasker.tasks t
        LEFT JOIN counts c ON c.task_id = t.id
        WHERE t.id = ANY ($1)
    )
    SELECT v.id, v.status, v.n_total, v.n_pending, v.n_running, v.n_done, v.n_failed, v.n_ready,
           v.execution_status,
           CASE v.execution_status
               WHEN 'has_ready_steps' THEN 'execute_ready_steps'
               WHEN 'processing' THEN 'wait_for_completion'
               WHEN 'all_complete' THEN
                   CASE WHEN v.status IN ('complete', 'resolved_manually') THEN 'none'
                        ELSE 'finalize_task' END
               WHEN 'blocked_by_failures' THEN 'handle_failures'
               WHEN 'waiting_for_retry' THEN 'wait_for_completion'
               WHEN 'waiting_for_dependencies' THEN 'wait_for_dependencies'
               ELSE 'none'
           END,
           CASE WHEN v.n_total = 0 THEN 0.00
                ELSE round(100.0 * v.n_done / v.n_total, 2) END,
           CASE
               WHEN v.execution_status = 'cancelled' THEN 'unknown'
               WHEN v.execution_status = 'blocked_by_failures' THEN 'blocked'
               WHEN v.n_failed > 0 THEN 'recovering'
               ELSE 'healthy'
           END
    FROM verdict v
    ORDER BY v.id
$function$;

CREATE OR REPLACE FUNCTION tasker.step_readiness_of(task_ids bigint[], step_ids bigint[], now timestamp with time zone)
 RETURNS TABLE(workflow_step_id bigint, task_id bigint, name text, current_state text, dependencies_satisfied boolean, retry_eligible boolean, ready_for_execution boolean, total_parents integer, completed_parents integer, attempts integer, max_attempts integer, next_retry_at timestamp with time zone, last_attempted_at timestamp with time zone, blocking_reason text, "position" integer)
 LANGUAGE plpgsql
 STABLE
 SET plan_cache_mode TO 'force_custom_plan'
 SET enable_seqscan TO 'off'
 SET jit TO 'off'
AS $function$
BEGIN
    RETURN QUERY
    WITH parent_counts AS (
        SELECT e.to_step_id AS step_id,
               count(*)::integer AS n_parents,
               (count(*) FILTER (WHERE p.status IN ('complete', 'resolved_manually')))::integer
                   AS n_done,
               (count(*) FILTER (WHERE p.status = 'skipped'))::integer AS n_skipped
        FROM tasker.step_edges e
        JOIN tasker.steps p ON p.id = e.from_step_id
        WHERE e.task_id = ANY ($1) AND p.task_id = ANY ($1)
        GROUP BY e.to_step_id
    ),
    counted AS (
        SELECT s.id, s.task_id, s.name, s.position, s.status, s.attempts, s.max_attempts,
               s.retryable, s.next_retry_at, s.last_attempted_at, s.join_mode,
               coalesce(t.run_at > $3, false) AS scheduled,
               coalesce(pc.n_parents, 0) AS n_parents,
               coalesce(pc.n_done, 0) AS n_done,
               coalesce(pc.n_skipped, 0) AS n_skipped,
               s.child_task_id,
               (s.flow_wait IS NOT NULL AND s.claimable_at > $3) AS flow_waiting, s.flow_wait,
               (s.wait_for IS NOT NULL AND NOT EXISTS (
                   SELECT 1 FROM tasker.task_signals g
                   WHERE g.task_id = s.task_id AND g.name = s.wait_for)) AS signal_missing
        FROM tasker.steps s
        JOIN tasker.tasks t ON t.id = s.task_id
        LEFT JOIN parent_counts pc ON pc.step_id = s.id
        WHERE s.task_id = ANY ($1) AND ($2 IS NULL OR s.id = ANY ($2))
    ),
    flags AS (
        SELECT c.*,
               CASE WHEN c.join_mode = 'any'
                    THEN c.n_parents = 0
                         OR (c.n_done + c.n_skipped = c.n_parents AND c.n_done > 0)
                    ELSE c.n_done = c.n_parents
               END AS deps_ok,
               (c.status = 'error' AND c.retryable AND c.attempts < c.max_attempts
                AND (c.next_retry_at IS NULL OR c.next_retry_at <= $3)) AS eligible
        FROM counted c
    ),
    ready AS (
        SELECT f.*,
               f.deps_ok AND NOT f.flow_waiting
                   AND ((f.status = 'pending' AND NOT f.signal_missing AND NOT f.scheduled)
                        OR f.eligible)
                   AS is_ready
        FROM flags f
    )
    SELECT r.id, r.task_id, r.name, r.status, r.deps_ok, r.eligible, r.is_ready,
           r.n_parents, r.n_done, r.attempts, r.max_attempts, r.next_retry_at,
           r.last_attempted_at,
           CASE
               WHEN r.is_ready THEN NULL
               WHEN r.status IN ('complete', 'resolved_manually') THEN 'finished'
               WHEN r.status = 'skipped' THEN 'skipped'
               WHEN r.status = 'cancelled' THEN 'cancelled'
               WHEN r.status = 'in_progress' AND r.child_task_id IS NOT NULL
                   THEN 'waiting_for_child'
               WHEN r.status = 'in_progress' THEN 'in_progress'
               WHEN r.flow_waiting THEN r.flow_wait
               WHEN r.status = 'error' AND NOT r.retryable THEN 'not_retryable'
               WHEN r.status = 'error' AND r.attempts >= r.max_attempts THEN 'retries_exhausted'
               WHEN r.status = 'error' AND NOT r.eligible THEN 'waiting_for_backoff'
               WHEN r.status = 'pending' AND r.deps_ok AND r.scheduled THEN 'scheduled'
               WHEN r.status = 'pending' AND r.deps_ok AND r.signal_missing
                   THEN 'waiting_for_signal'
               ELSE 'dependencies_not_satisfied'
           END,
           r.position
    FROM ready r;
END;
$function$;
