-- register_worker --
-- A worker announces itself when it starts, with the handlers it serves and its lease.
INSERT INTO workers (id, hostname, pid, namespaces, concurrency, started_at, last_heartbeat_at,
    handlers, templates, handler_errors, lease_seconds)
VALUES (:id, :hostname, :pid, :namespaces, :concurrency, :now, :now,
    :handlers, :templates, :handler_errors, :lease_seconds)
ON CONFLICT (id) DO UPDATE SET last_heartbeat_at = excluded.last_heartbeat_at,
    stopped_at = NULL, handlers = excluded.handlers, templates = excluded.templates,
    handler_errors = excluded.handler_errors, lease_seconds = excluded.lease_seconds;

-- worker_heartbeat --
-- A worker is alive, with the number of handler threads it has abandoned.
UPDATE workers SET last_heartbeat_at = :now, abandoned_threads = :abandoned_threads
WHERE id = :id;

-- stop_worker --
-- A worker stopped cleanly (with the handler threads it abandoned and leaves running).
UPDATE workers SET stopped_at = :now, last_heartbeat_at = :now,
    abandoned_threads = :abandoned_threads
WHERE id = :id;

-- list_workers --
-- Workers with the number of steps each holds now.
SELECT w.*, (SELECT count(*) FROM steps s
             WHERE s.claimed_by = w.id AND s.status = 'in_progress') AS held_steps
FROM workers w ORDER BY w.started_at DESC;

-- live_workers --
-- Workers alive now: not stopped, and their last heartbeat within their lease.
SELECT id, hostname, pid, namespaces, handlers, templates, handler_errors, concurrency,
    coalesce(lease_seconds, :default_lease_seconds) AS lease_seconds, started_at,
    last_heartbeat_at
FROM workers
WHERE stopped_at IS NULL
  -- julianday() resolves about 10 microseconds here: plenty for leases of seconds.
  AND julianday(last_heartbeat_at) + coalesce(lease_seconds, :default_lease_seconds) / 86400.0
      >= julianday(:now)
ORDER BY started_at, id;

-- step_handlers --
-- Namespace and handler of steps, to match them with the workers that serve them.
SELECT id, namespace, handler FROM steps WHERE id IN (SELECT value FROM json_each(:step_ids));

-- running_steps --
-- Steps running now with the worker holding each, by worker then claim time (at most limit).
SELECT id, task_id, name, handler, claimed_by, last_attempted_at, lease_expires_at
FROM steps WHERE status = 'in_progress' AND claimed_by IS NOT NULL
ORDER BY claimed_by, last_attempted_at, id LIMIT :limit;
