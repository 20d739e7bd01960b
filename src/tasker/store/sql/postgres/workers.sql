-- register_worker --
-- A worker announces itself when it starts, with the handlers it serves and its lease.
INSERT INTO tasker.workers (id, hostname, pid, namespaces, concurrency, started_at,
    last_heartbeat_at, handlers, templates, handler_errors, lease_seconds)
VALUES (%(id)s, %(hostname)s, %(pid)s, %(namespaces)s, %(concurrency)s, %(now)s, %(now)s,
    %(handlers)s, %(templates)s, %(handler_errors)s, %(lease_seconds)s)
ON CONFLICT (id) DO UPDATE SET last_heartbeat_at = EXCLUDED.last_heartbeat_at,
    stopped_at = NULL, handlers = EXCLUDED.handlers, templates = EXCLUDED.templates,
    handler_errors = EXCLUDED.handler_errors, lease_seconds = EXCLUDED.lease_seconds;

-- worker_heartbeat --
-- A worker is alive, with the number of handler threads it has abandoned.
UPDATE tasker.workers SET last_heartbeat_at = %(now)s, abandoned_threads = %(abandoned_threads)s
WHERE id = %(id)s;

-- stop_worker --
-- A worker stopped cleanly (with the handler threads it abandoned and leaves running).
UPDATE tasker.workers SET stopped_at = %(now)s, last_heartbeat_at = %(now)s,
    abandoned_threads = %(abandoned_threads)s
WHERE id = %(id)s;

-- list_workers --
-- Workers with the number of steps each holds now.
SELECT w.*, (SELECT count(*) FROM tasker.steps s
             WHERE s.claimed_by = w.id AND s.status = 'in_progress') AS held_steps
FROM tasker.workers w ORDER BY w.started_at DESC;

-- live_workers --
-- Workers alive now: not stopped, and their last heartbeat within their lease.
SELECT id, hostname, pid, namespaces, handlers, templates, handler_errors, concurrency,
    COALESCE(lease_seconds, %(default_lease_seconds)s) AS lease_seconds, started_at,
    last_heartbeat_at
FROM tasker.workers
WHERE stopped_at IS NULL
  AND last_heartbeat_at >= %(now)s::timestamptz
      - make_interval(secs => COALESCE(lease_seconds, %(default_lease_seconds)s))
ORDER BY started_at, id;

-- step_handlers --
-- Namespace and handler of steps, to match them with the workers that serve them.
SELECT id, namespace, handler FROM tasker.steps WHERE id = ANY(%(step_ids)s::bigint[]);

-- running_steps --
-- Steps running now with the worker holding each, by worker then claim time (at most limit).
SELECT id, task_id, name, handler, claimed_by, last_attempted_at, lease_expires_at
FROM tasker.steps WHERE status = 'in_progress' AND claimed_by IS NOT NULL
ORDER BY claimed_by, last_attempted_at, id LIMIT %(limit)s;
