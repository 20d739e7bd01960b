-- 0009 child workflows: a step that runs another template as a child task.

-- The template a step runs as a child task ({namespace, name, version}, a JSON object; the
-- version is pinned when the task is created); NULL: the step runs no child.
ALTER TABLE steps ADD COLUMN workflow TEXT;
-- The child task the step started (it waits for it while in_progress).
ALTER TABLE steps ADD COLUMN child_task_id INTEGER;
-- A child task's parent task and the step that started it. No foreign key: retention
-- prunes finished tasks one by one, parents and children alike.
ALTER TABLE tasks ADD COLUMN parent_task_id INTEGER;
ALTER TABLE tasks ADD COLUMN parent_step_id INTEGER;

-- At most one child per step, whatever retries or races happen: a second insert fails.
CREATE UNIQUE INDEX tasks_parent_step_idx ON tasks (parent_step_id)
    WHERE parent_step_id IS NOT NULL;
-- A task's children (to cancel them with it).
CREATE INDEX tasks_parent_task_idx ON tasks (parent_task_id) WHERE parent_task_id IS NOT NULL;
