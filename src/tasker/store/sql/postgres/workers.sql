-- register_worker --
-- A worker announces itself when it starts.
INSERT INTO tasker.workers (id, hostname, pid, namespaces, concurrency, started_at,
    last_heartbeat_at)
VALUES (%(id)s, %(hostname)s, %(pid)s, %(namespaces)s, %(concurrency)s, %(now)s, %(now)s)
ON CONFLICT (id) DO UPDATE SET last_heartbeat_at = EXCLUDED.last_heartbeat_at,
    stopped_at = NULL;

-- worker_heartbeat --
-- A worker is alive.
UPDATE tasker.workers SET last_heartbeat_at = %(now)s WHERE id = %(id)s;

-- stop_worker --
-- A worker stopped cleanly.
UPDATE tasker.workers SET stopped_at = %(now)s, last_heartbeat_at = %(now)s WHERE id = %(id)s;

-- list_workers --
-- Workers with the number of steps each holds now.
SELECT w.*, (SELECT count(*) FROM tasker.steps s
             WHERE s.claimed_by = w.id AND s.status = 'in_progress') AS held_steps
FROM tasker.workers w ORDER BY w.started_at DESC;
