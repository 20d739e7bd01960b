-- 0002 readiness functions. SQLite has no stored functions: the same readiness, execution
-- context, dependency levels, health and analytics queries live as named queries in
-- sql/sqlite/readiness.sql. They need no index beyond 0001's (steps by task through the
-- (task_id, name) unique index, edges by task_id and by parent through the primary key),
-- so this migration only keeps the numbers aligned with PostgreSQL.
SELECT 1;
