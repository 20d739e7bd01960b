-- 0005 worker handlers: what each worker serves, and its lease, so readiness can tell a
-- step that no live worker is able to run.

-- Handler paths the worker loaded at start-up (a JSON array); it claims only their steps.
-- NULL: any handler (a worker started before this migration).
ALTER TABLE workers ADD COLUMN handlers TEXT;
-- Keys (namespace/name@version) of the templates all of whose handlers loaded.
ALTER TABLE workers ADD COLUMN templates TEXT NOT NULL DEFAULT '[]';
-- Handler paths that did not load, each with its import error (a JSON object).
ALTER TABLE workers ADD COLUMN handler_errors TEXT NOT NULL DEFAULT '{}';
-- The worker's lease: it is live while its last heartbeat is this recent. NULL: the
-- reader's TASKER_LEASE_SECONDS (a worker started before this migration).
ALTER TABLE workers ADD COLUMN lease_seconds REAL;
