-- catalog_scope --
-- Nothing to scope: SQLite has one schema and prints each object as it was written.
SELECT NULL AS search_path;

-- schema_objects --
-- Every table, index, view and trigger as a statement (kind, name, ddl): the canonical schema.sql.
SELECT type AS kind, name, sql || ';' AS ddl
FROM sqlite_master
WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite\_%' ESCAPE '\'
ORDER BY CASE type WHEN 'table' THEN 2 WHEN 'index' THEN 4 WHEN 'view' THEN 6 ELSE 7 END, name;
