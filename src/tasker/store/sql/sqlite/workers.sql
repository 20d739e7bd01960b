-- register_worker --
-- A worker announces itself when it starts.
INSERT INTO workers (id, hostname, pid, namespaces, concurrency, started_at, last_heartbeat_at)
VALUES (:id, :hostname, :pid, :namespaces, :concurrency, :now, :now)
ON CONFLICT (id) DO UPDATE SET last_heartbeat_at = excluded.last_heartbeat_at,
    stopped_at = NULL;

-- worker_heartbeat --
-- A worker is alive.
UPDATE workers SET last_heartbeat_at = :now WHERE id = :id;

-- stop_worker --
-- A worker stopped cleanly.
UPDATE workers SET stopped_at = :now, last_heartbeat_at = :now WHERE id = :id;

-- list_workers --
-- Workers with the number of steps each holds now.
SELECT w.*, (SELECT count(*) FROM steps s
             WHERE s.claimed_by = w.id AND s.status = 'in_progress') AS held_steps
FROM workers w ORDER BY w.started_at DESC;
