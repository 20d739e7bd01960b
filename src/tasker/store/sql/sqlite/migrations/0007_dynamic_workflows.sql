-- 0007 dynamic workflows: the skipped state, join rules, branches and signals.

-- A step that will not run because a branch was not taken is `skipped`. SQLite cannot alter a
-- CHECK constraint, and rebuilding `steps` would cascade-delete its edges and history under
-- foreign_keys=ON; widening the list in the stored table definition is the documented
-- alternative for a change that loosens a constraint (nothing on disk changes). RESET makes
-- this connection re-read the schema; the ALTERs below bump schema_version for the others.
PRAGMA writable_schema=ON;
UPDATE sqlite_schema
SET sql = replace(sql, '''resolved_manually''))', '''resolved_manually'', ''skipped''))')
WHERE type = 'table' AND name = 'steps';
PRAGMA writable_schema=RESET;

-- `all`: runs when every parent is complete/resolved, skipped when one is skipped; `any`:
-- runs once every parent is finished and one is not skipped, skipped when all are.
ALTER TABLE steps ADD COLUMN join_mode TEXT NOT NULL DEFAULT 'all';
-- Parents that were skipped (counted into remaining_parents too, as finished).
ALTER TABLE steps ADD COLUMN skipped_parents INTEGER NOT NULL DEFAULT 0;
-- Children this step chooses among with tasker.Branch (a JSON array); NULL: it does not choose.
ALTER TABLE steps ADD COLUMN branches TEXT;
-- The signal this step waits for once its parents are done; NULL: it waits for none.
ALTER TABLE steps ADD COLUMN wait_for TEXT;
-- How long it waits for the signal (NULL: for ever), and the deadline once it waits.
ALTER TABLE steps ADD COLUMN wait_timeout_seconds REAL;
ALTER TABLE steps ADD COLUMN wait_expires_at TEXT;

-- Map (fan-out decided at run time): a group step names a list in a parent's results
-- (map_path: PARENT.KEY[.KEY...], at most max_items long); once its parents are done, one
-- instance step per item is created with group_id, map_index and map_item. The group's own
-- state is derived from its instances'.
ALTER TABLE steps ADD COLUMN map_path TEXT;
ALTER TABLE steps ADD COLUMN max_items INTEGER;
ALTER TABLE steps ADD COLUMN group_id INTEGER;
ALTER TABLE steps ADD COLUMN map_index INTEGER;
ALTER TABLE steps ADD COLUMN map_item TEXT;
-- The most steps the task may have, map instances included (TASKER_MAX_TASK_STEPS).
ALTER TABLE tasks ADD COLUMN max_steps INTEGER;

-- A group's instances, in item order.
CREATE INDEX steps_group_idx ON steps (group_id, map_index) WHERE group_id IS NOT NULL;

-- Signals delivered to a task, by name; one per name (a second must carry the same payload).
CREATE TABLE task_signals (
    id          INTEGER PRIMARY KEY,
    task_id     INTEGER NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    payload     TEXT,
    actor       TEXT,
    created_at  TEXT NOT NULL,
    UNIQUE (task_id, name)
);

-- Waits that time out: the reaper finds them by deadline.
CREATE INDEX steps_wait_expires_idx ON steps (wait_expires_at)
    WHERE wait_expires_at IS NOT NULL;
