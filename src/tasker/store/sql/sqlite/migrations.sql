-- migrations_table_exists --
-- Whether the migrations table exists yet (a fresh database has none).
SELECT count(*) > 0 AS present FROM sqlite_master
WHERE type = 'table' AND name = 'schema_migrations';

-- applied_migrations --
-- Applied migration versions with their times.
SELECT version, name, applied_at FROM schema_migrations ORDER BY version;

-- migration_applied --
-- One applied migration, if it is.
SELECT version FROM schema_migrations WHERE version = :version;

-- lock_migrations --
-- BEGIN IMMEDIATE already holds the write lock; nothing more to take.
SELECT 1;

-- record_migration --
-- Mark a migration applied, in the transaction that applied it.
INSERT INTO schema_migrations (version, name) VALUES (:version, :name);
