-- 0005 worker handlers: what each worker serves, and its lease, so readiness can tell a
-- step that no live worker is able to run.

-- Handler paths the worker loaded at start-up; it claims only their steps. NULL: any
-- handler (a worker started before this migration).
ALTER TABLE tasker.workers ADD COLUMN handlers jsonb;
-- Keys (namespace/name@version) of the templates all of whose handlers loaded.
ALTER TABLE tasker.workers ADD COLUMN templates jsonb NOT NULL DEFAULT '[]';
-- Handler paths that did not load, each with its import error.
ALTER TABLE tasker.workers ADD COLUMN handler_errors jsonb NOT NULL DEFAULT '{}';
-- The worker's lease: it is live while its last heartbeat is this recent. NULL: the
-- reader's TASKER_LEASE_SECONDS (a worker started before this migration).
ALTER TABLE tasker.workers ADD COLUMN lease_seconds double precision;
