"""Tasker's PostgreSQL schema with the per-task tables partitioned by ``HASH (task_id)``, and
the tools to see which partitions a statement touches.

Used by ``test_sharded_layout.py``. A hash partition of one database stands in for a shard
of a distributed PostgreSQL (Citus places rows by a hash of the distribution column in the
same way): a statement whose every scan touches one partition, the same one in every
table, could run on one shard; one that needs several partitions would fan out.

The DDL is the canonical schema (``sql/postgres/schema.sql``, which a test keeps equal to
the migrations) with the changes in ``SCHEMA_ADAPTATIONS``, each applied to text that must
occur exactly once, so a changed schema fails here instead of being silently mis-edited.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from tasker.store.queries import load_migrations, specialise
from tasker.store.schema import schema_path

MODULUS = 4

# Each hot table and the column its rows are placed by: every row of one task in the
# partition of that task's id, in every table (tasks by id, the rest by task_id).
PARTITION_KEYS = {
    "tasks": "id",
    "steps": "task_id",
    "step_edges": "task_id",
    "step_transitions": "task_id",
    "task_transitions": "task_id",
    "task_signals": "task_id",
    "events": "task_id",
}

# (text of schema.sql, its replacement, why). A unique constraint on a partitioned table
# must contain the partition key (PostgreSQL, and Citus for a distributed table), so keys
# that identify a row by its own id gain the task_id, and foreign keys to them follow.
SCHEMA_ADAPTATIONS: tuple[tuple[str, str, str], ...] = (
    (
        "CONSTRAINT steps_pkey PRIMARY KEY (id)",
        "CONSTRAINT steps_pkey PRIMARY KEY (task_id, id)",
        "steps: the key gains task_id; step ids stay unique by their sequence",
    ),
    (
        "CONSTRAINT step_edges_pkey PRIMARY KEY (from_step_id, to_step_id)",
        "CONSTRAINT step_edges_pkey PRIMARY KEY (task_id, from_step_id, to_step_id)",
        "step_edges: the key gains task_id (an edge never joins two tasks)",
    ),
    (
        "CONSTRAINT step_transitions_pkey PRIMARY KEY (id)",
        "CONSTRAINT step_transitions_pkey PRIMARY KEY (task_id, id)",
        "step_transitions: the key gains task_id",
    ),
    (
        "CONSTRAINT step_transitions_step_id_sort_key_key UNIQUE (step_id, sort_key)",
        "CONSTRAINT step_transitions_step_id_sort_key_key UNIQUE (task_id, step_id, sort_key)",
        "step_transitions: the per-step sort key is unique within the step's task",
    ),
    (
        "CONSTRAINT task_transitions_pkey PRIMARY KEY (id)",
        "CONSTRAINT task_transitions_pkey PRIMARY KEY (task_id, id)",
        "task_transitions: the key gains task_id",
    ),
    (
        "CONSTRAINT task_signals_pkey PRIMARY KEY (id)",
        "CONSTRAINT task_signals_pkey PRIMARY KEY (task_id, id)",
        "task_signals: the key gains task_id",
    ),
    (
        "    payload jsonb DEFAULT '{}'::jsonb NOT NULL,\n"
        "    created_at timestamp with time zone NOT NULL,\n"
        "    CONSTRAINT events_pkey PRIMARY KEY (id)\n",
        "    payload jsonb DEFAULT '{}'::jsonb NOT NULL,\n"
        "    created_at timestamp with time zone NOT NULL\n",
        "events: no primary key. task_id is null for schedule events, so (task_id, id) "
        "cannot be a key; ids stay unique because the one-row counter hands them out",
    ),
    (
        "CREATE INDEX events_created_at_idx",
        "CREATE INDEX events_id_idx ON tasker.events USING btree (id);\n\n"
        "CREATE INDEX events_created_at_idx",
        "events: an index on id in each partition stands in for the dropped key",
    ),
    (
        "CREATE UNIQUE INDEX tasks_idempotency_key_idx",
        "CREATE INDEX tasks_idempotency_key_idx",
        "tasks: an idempotency key can no longer be unique across partitions; a sharded "
        "deployment needs a table keyed (and distributed) by the key itself",
    ),
    (
        "CREATE UNIQUE INDEX tasks_parent_step_idx",
        "CREATE INDEX tasks_parent_step_idx",
        "tasks: 'one child task per parent step' is no longer enforced by an index",
    ),
    (
        "FOREIGN KEY (from_step_id) REFERENCES tasker.steps(id)",
        "FOREIGN KEY (task_id, from_step_id) REFERENCES tasker.steps(task_id, id)",
        "step_edges: foreign keys name the task too (the steps key is now (task_id, id))",
    ),
    (
        "FOREIGN KEY (to_step_id) REFERENCES tasker.steps(id)",
        "FOREIGN KEY (task_id, to_step_id) REFERENCES tasker.steps(task_id, id)",
        "step_edges: as above",
    ),
    (
        "FOREIGN KEY (step_id) REFERENCES tasker.steps(id)",
        "FOREIGN KEY (task_id, step_id) REFERENCES tasker.steps(task_id, id)",
        "step_transitions: as above",
    ),
)


def sharded_schema_sql() -> str:
    """The canonical PostgreSQL schema with the hot tables partitioned by task."""
    text = schema_path("postgres").read_text()
    for old, new, _ in SCHEMA_ADAPTATIONS:
        count = text.count(old)
        if count != 1:
            raise AssertionError(f"schema.sql holds {old!r} {count} times, not once")
        text = text.replace(old, new)
    partitions = []
    for table, key in PARTITION_KEYS.items():
        start = text.index(f"CREATE TABLE tasker.{table} (")
        end = text.index("\n);", start)
        text = text[:end] + f"\n) PARTITION BY HASH ({key});" + text[end + 3 :]
        partitions += [
            f"CREATE TABLE tasker.{table}_p{i} PARTITION OF tasker.{table} "
            f"FOR VALUES WITH (MODULUS {MODULUS}, REMAINDER {i});"
            for i in range(MODULUS)
        ]
    # Partitions before the indexes and foreign keys, which then cascade to them.
    first_index = text.index("\nCREATE INDEX ")
    return text[:first_index] + "\n" + "\n".join(partitions) + "\n" + text[first_index:]


def build_sharded_database(url: str) -> None:
    """Create the partitioned schema in the empty database at ``url``, with the rows the
    migrations install, and mark every migration applied (so the engine accepts it)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sharded_schema_sql())  # type: ignore[arg-type]
        conn.execute("INSERT INTO tasker.event_log_position (id, last) VALUES (1, 0)")
        for version, name, _ in load_migrations("postgres"):
            conn.execute(
                "INSERT INTO tasker.schema_migrations (version, name) VALUES (%s, %s)",
                (version, name),
            )


SEED_TASKS = 2000

# SEED_TASKS diamonds a -> (b, c) -> d: a complete, b running, c ready, d waiting; history
# and an event per step; a signal for every tenth task. Step ids are (task - 1) * 4 + k.
SEED_SQL = f"""
INSERT INTO tasker.namespaces (name, created_at) VALUES ('default', now());
INSERT INTO tasker.templates (namespace_id, name, version, definition, created_at)
VALUES (1, 'diamond', '1.0.0', '{{}}', now());
INSERT INTO tasker.tasks (id, template_id, namespace, name, version, status, context,
    total_steps, done_steps, transition_count, created_at, updated_at, started_at)
SELECT t, 1, 'default', 'diamond', '1.0.0', 'in_progress', '{{}}', 4, 1, 2, now(), now(), now()
FROM generate_series(1, {SEED_TASKS}) t;
INSERT INTO tasker.steps (id, task_id, namespace, name, position, handler, status, attempts,
    max_attempts, backoff_base_seconds, backoff_max_seconds, backoff_jitter, total_parents,
    remaining_parents, claimable_at, claimed_by, claim_token, lease_expires_at, results,
    transition_count, created_at, updated_at)
SELECT (t - 1) * 4 + k, t, 'default', (ARRAY['a', 'b', 'c', 'd'])[k], k, 'shop:step',
    (ARRAY['complete', 'in_progress', 'pending', 'pending'])[k], CASE WHEN k <= 2 THEN 1 ELSE 0 END,
    3, 1, 60, 0.1, (ARRAY[0, 1, 1, 2])[k], (ARRAY[0, 0, 0, 2])[k],
    CASE WHEN k = 3 THEN now() - interval '1 second' END,
    CASE WHEN k = 2 THEN 'worker-1' END, CASE WHEN k = 2 THEN 'token-' || t END,
    CASE WHEN k = 2 THEN now() + interval '30 seconds' END,
    CASE WHEN k = 1 THEN '{{"ok": true}}'::jsonb END,
    1, now(), now()
FROM generate_series(1, {SEED_TASKS}) t, generate_series(1, 4) k;
INSERT INTO tasker.step_edges (task_id, from_step_id, to_step_id)
SELECT t, (t - 1) * 4 + e.f, (t - 1) * 4 + e.c
FROM generate_series(1, {SEED_TASKS}) t, (VALUES (1, 2), (1, 3), (2, 4), (3, 4)) e(f, c);
INSERT INTO tasker.task_transitions (task_id, from_state, to_state, sort_key, created_at)
SELECT t, NULL, 'pending', 1, now() FROM generate_series(1, {SEED_TASKS}) t;
INSERT INTO tasker.step_transitions (step_id, task_id, from_state, to_state, sort_key,
    created_at)
SELECT id, task_id, NULL, 'pending', 1, now() FROM tasker.steps;
INSERT INTO tasker.events (id, name, task_id, step_id, step_name, created_at)
SELECT row_number() OVER (ORDER BY id), 'step.started', task_id, id, name, now()
FROM tasker.steps;
UPDATE tasker.event_log_position SET last = (SELECT count(*) FROM tasker.events);
INSERT INTO tasker.task_signals (task_id, name, created_at)
SELECT t, 'approved', now() FROM generate_series(10, {SEED_TASKS}, 10) t;
SELECT setval('tasker.tasks_id_seq', {SEED_TASKS});
SELECT setval('tasker.steps_id_seq', {SEED_TASKS * 4});
ANALYZE;
"""


def seed(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(SEED_SQL)  # type: ignore[arg-type]


_PARTITION = re.compile(rf"^({'|'.join(PARTITION_KEYS)})_p(\d+)$")


def partition_of(relation: str) -> tuple[str, int] | None:
    """``("steps", 2)`` for ``steps_p2``; None for a table that is not a partition."""
    match = _PARTITION.match(relation)
    return (match.group(1), int(match.group(2))) if match else None


def walk(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", []):
        yield from walk(child)


def relations(plan: dict[str, Any]) -> set[str]:
    """Every table a plan reads or writes (``Relation Name`` of its nodes)."""
    return {node["Relation Name"] for node in walk(plan) if "Relation Name" in node}


@dataclass
class Touch:
    """What one statement (and every statement nested in it) did."""

    plans: list[dict[str, Any]] = field(default_factory=list)  # auto_explain, outermost last
    written: set[str] = field(default_factory=set)  # tables with rows inserted/updated/deleted
    scanned: set[str] = field(default_factory=set)  # tables scanned (by index or sequentially)

    def plan_relations(self) -> set[str]:
        return set().union(*(relations(p["Plan"]) for p in self.plans))

    def partitions(self) -> dict[str, set[int]]:
        """Partition indexes touched per hot table: in any plan, or by the statistics."""
        found: dict[str, set[int]] = {}
        for relation in self.plan_relations() | self.written | self.scanned:
            hit = partition_of(relation)
            if hit:
                found.setdefault(hit[0], set()).add(hit[1])
        return found

    def partition_indexes(self) -> set[int]:
        return set().union(*self.partitions().values())

    def global_tables(self) -> set[str]:
        """Tables outside the hot set that the statement touched."""
        hot = set(PARTITION_KEYS)
        return {
            r
            for r in self.plan_relations() | self.written | self.scanned
            if partition_of(r) is None and r not in hot
        }


_STATS = """
SELECT relname, coalesce(seq_scan, 0) + coalesce(idx_scan, 0) AS scans,
       n_tup_ins + n_tup_upd + n_tup_del AS writes
FROM pg_stat_xact_user_tables WHERE schemaname = 'tasker'
"""


class Explorer:
    """Runs statements with their parameters inlined as literals (client-side binding, so
    each is planned with the real values) and ``auto_explain`` logging the plan of every
    statement, nested ones included (the bodies of PL/pgSQL and SQL functions, foreign-key
    checks), to this client. Each run is rolled back."""

    def __init__(self, url: str) -> None:
        self.conn = psycopg.connect(url, cursor_factory=psycopg.ClientCursor)
        self._plans: list[dict[str, Any]] | None = None
        self.conn.add_notice_handler(self._on_notice)
        self.conn.execute("LOAD 'auto_explain'")
        for name, value in (
            ("auto_explain.log_min_duration", "0"),
            ("auto_explain.log_nested_statements", "on"),
            ("auto_explain.log_format", "json"),
            ("auto_explain.log_level", "notice"),
            ("enable_partitionwise_join", "on"),
            ("enable_partitionwise_aggregate", "on"),
        ):
            self.conn.execute("SELECT set_config(%s, %s, false)", (name, value))
        self.conn.commit()

    def close(self) -> None:
        self.conn.close()

    def _on_notice(self, diag: psycopg.errors.Diagnostic) -> None:
        message = diag.message_primary or ""
        if self._plans is not None and "plan:" in message:
            self._plans.append(json.loads(message.split("plan:", 1)[1]))

    def _stats(self) -> dict[str, tuple[int, int]]:
        rows = self.conn.execute(_STATS).fetchall()
        return {name: (scans, writes) for name, scans, writes in rows}

    @contextmanager
    def _rolled_back(self) -> Iterator[None]:
        try:
            yield
        finally:
            self.conn.rollback()

    def run(self, sql: str, params: dict[str, Any] | None = None) -> Touch:
        """Execute ``sql`` once (its optional filters as the store sends them, with
        ``params``); what it (and what it calls) touched."""
        sql = specialise(sql, params or {})
        with self._rolled_back():
            before = self._stats()
            self._plans = []
            try:
                self.conn.execute(sql, params)  # type: ignore[arg-type]
            finally:
                plans, self._plans = self._plans, None
            after = self._stats()
        touch = Touch(plans=plans)
        for name, (scans, writes) in after.items():
            old_scans, old_writes = before.get(name, (0, 0))
            if scans > old_scans:
                touch.scanned.add(name)
            if writes > old_writes:
                touch.written.add(name)
        return touch

    def fetch(self, sql: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        with self._rolled_back():
            return self.conn.execute(specialise(sql, params or {}), params).fetchall()  # type: ignore[arg-type]

    def task_partition(self, task_id: int) -> int:
        """The partition index of a task's rows, asserted the same in tasks and steps."""
        rows = self.fetch(
            "SELECT tableoid::regclass::text FROM tasker.tasks WHERE id = %(id)s "
            "UNION SELECT tableoid::regclass::text FROM tasker.steps WHERE task_id = %(id)s",
            {"id": task_id},
        )
        indexes = set()
        for (name,) in rows:
            hit = partition_of(name.removeprefix("tasker."))
            assert hit is not None, name
            indexes.add(hit[1])
        assert len(indexes) == 1, f"task {task_id}'s rows lie in partitions {indexes}"
        return indexes.pop()


def jsonb(value: Any) -> Jsonb:
    return Jsonb(value)


def join_nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for node in walk(plan):
        if node["Node Type"] in ("Hash Join", "Merge Join", "Nested Loop"):
            yield node


def join_partition_indexes(node: dict[str, Any]) -> set[int]:
    """The partition indexes of every hot-table partition below a join node."""
    found = set()
    for relation in relations(node):
        hit = partition_of(relation)
        if hit:
            found.add(hit[1])
    return found


_KEYS_EQUAL = re.compile(
    r"\.(?:task_id|id) = \w+\.\w*task_id\b|\.\w*task_id = \w+\.(?:task_id|id)\b"
)


def join_locality(node: dict[str, Any]) -> str:
    """How a join node could run on shards: ``"partition-wise"`` when all the partitions
    below it have one index; ``"co-located"`` when a side is a grouped subquery (which
    PostgreSQL never joins partition-wise) but the join condition equates the partition
    keys and every grouping below keeps ``task_id`` (the condition under which Citus pushes
    a join down to each shard); otherwise ``"cross-partition"``."""
    if len(join_partition_indexes(node)) <= 1:
        return "partition-wise"
    condition = " ".join(
        str(node.get(key, "")) for key in ("Hash Cond", "Merge Cond", "Join Filter")
    )
    groupings = [n["Group Key"] for n in walk(node) if n["Node Type"] == "Aggregate"]
    if (
        groupings
        and _KEYS_EQUAL.search(condition)
        and all(any(k.endswith("task_id") for k in keys) for keys in groupings)
    ):
        return "co-located"
    return "cross-partition"


_SHOWN = (
    "Relation Name",
    "Index Name",
    "Index Cond",
    "Recheck Cond",
    "Hash Cond",
    "Join Filter",
    "Filter",
    "Subplans Removed",
    "Group Key",
    "Sort Key",
)


def short_plan(plan: dict[str, Any], depth: int = 0, limit: int = 40) -> list[str]:
    """A plan as indented lines: node type, table, index and conditions (no costs)."""
    parts = [plan["Node Type"]]
    if "Operation" in plan and plan["Node Type"] == "ModifyTable":
        parts = [plan["Operation"]]
    if "Relation Name" in plan:
        parts.append(f"on {plan['Relation Name']}")
    if "Index Name" in plan:
        parts.append(f"using {plan['Index Name']}")
    details = []
    for key in _SHOWN[2:]:
        if key in plan:
            value = plan[key]
            text = ", ".join(value) if isinstance(value, list) else str(value)
            if len(text) > 90:
                text = text[:87] + "..."
            details.append(f"{key}: {text}")
    lines = ["  " * depth + " ".join(parts) + (f"  [{'; '.join(details)}]" if details else "")]
    for child in plan.get("Plans", []):
        lines += short_plan(child, depth + 1, limit)
    return lines[:limit]
