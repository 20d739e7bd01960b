-- upsert_namespace --
-- Register a namespace (idempotent) and return its id.
INSERT INTO namespaces (name, created_at) VALUES (:name, :now)
ON CONFLICT (name) DO UPDATE SET name = excluded.name
RETURNING id;

-- upsert_template --
-- Register a template version; the code's current definition replaces a stored one.
INSERT INTO templates (namespace_id, name, version, description, definition, created_at)
VALUES (:namespace_id, :name, :version, :description, :definition, :now)
ON CONFLICT (namespace_id, name, version)
    DO UPDATE SET definition = excluded.definition, description = excluded.description
RETURNING id;

-- list_stored_templates --
-- Every template version ever registered in this database.
SELECT t.id, n.name AS namespace, t.name, t.version, t.description, t.definition, t.created_at
FROM templates t JOIN namespaces n ON n.id = t.namespace_id
ORDER BY n.name, t.name, t.id;
