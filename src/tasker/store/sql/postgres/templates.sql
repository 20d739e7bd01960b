-- upsert_namespace --
-- Register a namespace (idempotent) and return its id. DO UPDATE, not DO NOTHING plus a
-- SELECT: the statement's snapshot misses a row a concurrent creator just committed.
INSERT INTO tasker.namespaces (name, created_at) VALUES (%(name)s, %(now)s)
ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name
RETURNING id;

-- upsert_template --
-- Register a template version; the code's current definition replaces a stored one.
INSERT INTO tasker.templates (namespace_id, name, version, description, definition, created_at)
VALUES (%(namespace_id)s, %(name)s, %(version)s, %(description)s, %(definition)s, %(now)s)
ON CONFLICT (namespace_id, name, version)
    DO UPDATE SET definition = EXCLUDED.definition, description = EXCLUDED.description
RETURNING id;

-- list_stored_templates --
-- Every template version ever registered in this database.
SELECT t.id, n.name AS namespace, t.name, t.version, t.description, t.definition, t.created_at
FROM tasker.templates t JOIN tasker.namespaces n ON n.id = t.namespace_id
ORDER BY n.name, t.name, t.id;
