-- migrations_table_exists --
-- Whether the migrations table exists yet (a fresh database has none).
SELECT to_regclass('tasker.schema_migrations') IS NOT NULL AS present;

-- applied_migrations --
-- Applied migration versions with their times.
SELECT version, name, applied_at FROM tasker.schema_migrations ORDER BY version;

-- migration_applied --
-- One applied migration, if it is.
SELECT version FROM tasker.schema_migrations WHERE version = %(version)s;

-- lock_migrations --
-- Transaction-scoped advisory lock so two upgraders never run the same migration.
SELECT pg_advisory_xact_lock(7346291);

-- record_migration --
-- Mark a migration applied, in the transaction that applied it.
INSERT INTO tasker.schema_migrations (version, name) VALUES (%(version)s, %(name)s);
