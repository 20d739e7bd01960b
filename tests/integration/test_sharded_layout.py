"""Readiness stays single-shard: with the per-task tables partitioned by HASH (task_id), every
statement the engine runs for one task, with that task's id bound, reads and writes one
partition, the same one in every table; a batch across tasks joins partition to partition.

A hash partition stands in for a Citus shard (docs/scaling.md). The schema is the canonical
one with documented key changes (sharded_layout.SCHEMA_ADAPTATIONS); the statements are the
engine's own named queries and readiness functions, some with a task_id predicate added
(``BOUND`` below, each change listed). What a statement touched is read twice: from the
plans auto_explain logs for it and for every statement nested in it (function bodies,
foreign-key checks), and from the transaction's table statistics (pg_stat_xact_user_tables).

``TASKER_SHARDING_REPORT=path`` writes the evidence quoted in docs/scaling.md to ``path``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sharded_layout import (
    MODULUS,
    SEED_TASKS,
    Explorer,
    Touch,
    build_sharded_database,
    join_locality,
    join_nodes,
    join_partition_indexes,
    jsonb,
    seed,
    short_plan,
)

from tasker.store.queries import load_queries
from tasker.store.schema import schema_path

pytestmark = pytest.mark.postgres

QUERIES = load_queries("postgres")
TASK = 42  # its steps a, b, c, d are 165..168: a complete, b running, c claimable, d waiting
A, B, C, D = 165, 166, 167, 168
ALL = set(range(MODULUS))
NOW = datetime(2030, 1, 1, tzinfo=UTC)  # later than every seeded claimable_at

# Changes to the readiness core (tasker.step_readiness_of) that a sharded layout needs:
# the partition key in every join and in the correlated signal lookup, so a single task
# prunes to one partition and a batch joins partition to partition. Semantics unchanged:
# an edge and both its steps always belong to one task.
READINESS_ADAPTATIONS = (
    (
        "SELECT e.to_step_id AS step_id,",
        "SELECT e.task_id AS edge_task_id, e.to_step_id AS step_id,",
    ),
    (
        "JOIN tasker.steps p ON p.id = e.from_step_id",
        "JOIN tasker.steps p ON p.task_id = e.task_id AND p.id = e.from_step_id",
    ),
    ("GROUP BY e.to_step_id", "GROUP BY e.task_id, e.to_step_id"),
    (
        "LEFT JOIN parent_counts pc ON pc.step_id = s.id",
        "LEFT JOIN parent_counts pc ON pc.edge_task_id = s.task_id AND pc.step_id = s.id",
    ),
    (
        "WHERE g.task_id = s.task_id AND g.name = s.wait_for",
        "WHERE g.task_id = s.task_id AND g.task_id = ANY ($1) AND g.name = s.wait_for",
    ),
)

# The engine's statements with the task bound: a task_id predicate where the statement
# finds rows by step id alone, or by a correlated column the planner cannot prune on.
BOUND: dict[str, tuple[tuple[str, str], ...]] = {
    "lock_running_steps": (
        (
            "WHERE s.status = 'in_progress'",
            "WHERE s.task_id = %(task_id)s AND s.status = 'in_progress'",
        ),
    ),
    "finish_steps": (("WHERE s.id = r.id", "WHERE s.task_id = %(task_id)s AND s.id = r.id"),),
    "release_children": (
        ("WHERE t.id = s.task_id", "WHERE t.id = %(task_id)s"),
        (
            "WHERE from_step_id = ANY(%(step_ids)s::bigint[])\n         OR",
            "WHERE task_id = %(task_id)s"
            " AND (from_step_id = ANY(%(step_ids)s::bigint[])\n         OR",
        ),
        ("GROUP BY to_step_id) e", ") GROUP BY to_step_id) e"),
        ("WHERE s.id = e.to_step_id", "WHERE s.task_id = %(task_id)s AND s.id = e.to_step_id"),
    ),
    "add_done_steps": (
        ("WHERE t.id = r.task_id", "WHERE t.id = %(task_id)s AND t.id = r.task_id"),
    ),
    "set_task_status": (
        ("WHERE t.id = r.task_id", "WHERE t.id = %(task_id)s AND t.id = r.task_id"),
    ),
    "task_blockers": (
        ("WHERE s.task_id = t.id", "WHERE s.task_id = t.id AND s.task_id = %(task_id)s"),
    ),
    "parent_results": (
        (
            "JOIN tasker.steps p ON p.id = e.from_step_id",
            "JOIN tasker.steps p ON p.task_id = e.task_id AND p.id = e.from_step_id",
        ),
        (
            "WHERE e.to_step_id = ANY",
            "WHERE e.task_id = ANY(%(task_ids)s::bigint[]) AND e.to_step_id = ANY",
        ),
    ),
    "step_signals": (("WHERE s.id = ANY", "WHERE s.task_id = %(task_id)s AND s.id = ANY"),),
    "claim_steps": (
        ("WHERE s.id = picked.id", "WHERE s.task_id = %(task_id)s AND s.id = picked.id"),
    ),
    "step_transitions_of_task": (
        (
            "JOIN tasker.steps s ON s.id = st.step_id",
            "JOIN tasker.steps s ON s.task_id = st.task_id AND s.id = st.step_id",
        ),
    ),
    "task_step_views": (
        (
            "WHERE e.to_step_id = s.id",
            "WHERE e.task_id = %(task_id)s AND p.task_id = %(task_id)s AND e.to_step_id = s.id",
        ),
    ),
}


def adapt(sql: str, changes: tuple[tuple[str, str], ...]) -> str:
    """``sql`` with each change applied; each old text must be there (every occurrence
    changes), so a rewritten query fails here rather than going unadapted."""
    for old, new in changes:
        assert old in sql, f"{old!r} is no longer in the query"
        sql = sql.replace(old, new)
    return sql


def readiness_function(adapted: bool) -> str:
    """The CREATE FUNCTION statement of tasker.step_readiness_of from schema.sql."""
    text = schema_path("postgres").read_text()
    start = text.index("CREATE OR REPLACE FUNCTION tasker.step_readiness_of(")
    end = text.index("$function$;", start) + len("$function$;")
    body = text[start:end]
    return adapt(body, READINESS_ADAPTATIONS) if adapted else body


def per_task_params() -> dict[str, dict[str, Any]]:
    """Parameters of each per-task statement, for task TASK (rows of its own steps)."""
    now = NOW
    lease = now + timedelta(seconds=30)
    return {
        "insert_task": dict(
            template_id=1,
            namespace="default",
            name="diamond",
            version="1.0.0",
            context=jsonb({}),
            idempotency_key=None,
            request_hash=None,
            initiator=None,
            source_system=None,
            reason=None,
            tags=jsonb([]),
            trace_context=None,
            total_steps=4,
            max_steps=None,
            run_at=None,
            priority=0,
            parent_task_id=None,
            parent_step_id=None,
            now=now,
        ),
        "insert_steps": dict(
            task_id=TASK,
            namespace="default",
            start_at=now,
            now=now,
            priority=0,
            task_key=None,
            task_key_limit=None,
            rows=jsonb(
                [
                    {
                        "name": "e",
                        "position": 5,
                        "handler": "shop:step",
                        "config": {},
                        "max_attempts": 3,
                        "retryable": True,
                        "backoff_base_seconds": 1,
                        "backoff_max_seconds": 60,
                        "backoff_jitter": 0.1,
                        "total_parents": 0,
                        "join_mode": "all",
                    }
                ]
            ),
        ),
        "insert_edges": dict(task_id=TASK, rows=jsonb([{"parent": "a", "child": "d"}])),
        "claim_steps": dict(
            now=now,
            namespaces=None,
            handlers=None,
            task_id=TASK,
            limit=10,
            worker_id="worker-2",
            lease_expires_at=lease,
        ),
        "start_tasks": dict(task_ids=[TASK], now=now),
        "task_contexts": dict(task_ids=[TASK]),
        "parent_results": dict(step_ids=[B, C, D], task_ids=[TASK]),
        "step_signals": dict(step_ids=[D], task_id=TASK),
        "lock_tasks": dict(task_ids=[TASK]),
        "lock_running_steps": dict(
            task_id=TASK, rows=jsonb([{"id": B, "claim_token": f"token-{TASK}"}])
        ),
        "finish_steps": dict(
            task_id=TASK,
            now=now,
            rows=jsonb(
                [
                    {
                        "id": B,
                        "status": "complete",
                        "results": {"ok": 1},
                        "error": None,
                        "retryable": True,
                        "next_retry_at": None,
                        "refund": 0,
                    }
                ]
            ),
        ),
        "release_children": dict(task_id=TASK, step_ids=[B], skipped_ids=[], now=now),
        "add_done_steps": dict(task_id=TASK, now=now, rows=jsonb([{"task_id": TASK, "n": 1}])),
        "insert_step_transitions": dict(
            now=now,
            rows=jsonb(
                [
                    {
                        "step_id": B,
                        "task_id": TASK,
                        "from_state": "in_progress",
                        "to_state": "complete",
                        "reason": None,
                        "metadata": {},
                        "actor": "w",
                        "sort_key": 3,
                    }
                ]
            ),
        ),
        "insert_task_transitions": dict(
            now=now,
            rows=jsonb(
                [
                    {
                        "task_id": TASK,
                        "from_state": "in_progress",
                        "to_state": "complete",
                        "reason": None,
                        "metadata": {},
                        "actor": "w",
                        "sort_key": 3,
                    }
                ]
            ),
        ),
        "insert_events": dict(
            now=now,
            count=2,
            rows=jsonb(
                [
                    {
                        "seq": 0,
                        "name": "step.completed",
                        "task_id": TASK,
                        "step_id": B,
                        "step_name": "b",
                        "payload": {},
                    },
                    {
                        "seq": 1,
                        "name": "workflow.steps_ready",
                        "task_id": TASK,
                        "step_id": None,
                        "step_name": None,
                        "payload": {},
                    },
                ]
            ),
        ),
        "get_tasks": dict(task_ids=[TASK]),
        "task_blockers": dict(task_ids=[TASK], task_id=TASK),
        "set_task_status": dict(
            task_id=TASK,
            now=now,
            rows=jsonb([{"task_id": TASK, "from_state": "in_progress", "to_state": "complete"}]),
        ),
        "get_step_readiness_status": dict(task_id=TASK, step_ids=None, now=now),
        "get_task_execution_context": dict(task_id=TASK, now=now),
        "calculate_dependency_levels": dict(task_id=TASK),
        "task_step_views": dict(task_ids=[TASK], task_id=TASK),
        "task_transitions": dict(task_id=TASK),
        "step_transitions_of_task": dict(task_id=TASK),
        "events_after": dict(after_id=0, task_id=TASK, limit=100),
    }


# Tables outside the partitioned set that a per-task statement may touch, and why.
GLOBAL_TOUCHES = {
    "insert_events": {"event_log_position"},  # the one-row event-id counter: global by design
    "insert_task": {"templates"},  # its foreign key; a reference table (a copy on every node)
}

REPORT: dict[str, Any] = {"per_task": [], "plans": {}, "batch": [], "claim": []}


@pytest.fixture(scope="module", autouse=True)
def write_report() -> Iterator[None]:
    yield
    target = os.environ.get("TASKER_SHARDING_REPORT")
    if target:
        Path(target).write_text(render_report())


@pytest.fixture
def explorer(empty_postgres_url: str) -> Iterator[Explorer]:
    """The partitioned schema, seeded with SEED_TASKS diamonds, with the readiness core as
    the engine ships it."""
    build_sharded_database(empty_postgres_url)
    seed(empty_postgres_url)
    ex = Explorer(empty_postgres_url)
    yield ex
    ex.close()


def install_readiness(explorer: Explorer, adapted: bool) -> None:
    explorer.conn.execute(readiness_function(adapted))  # type: ignore[arg-type]
    explorer.conn.commit()


def summary(touch: Touch) -> str:
    parts = touch.partitions()
    return ", ".join(f"{t} {sorted(i)}" for t, i in sorted(parts.items())) or "-"


def test_the_tasks_rows_share_one_partition_index_in_every_table(explorer: Explorer) -> None:
    # Given the seeded diamonds, when each task's rows are located, then a task's steps lie
    # in the partition of the same index as its task row (co-location), and the tasks
    # spread over all partitions (or the single-partition assertions below prove nothing).
    indexes = [explorer.task_partition(t) for t in range(1, 41)]
    assert set(indexes) == ALL
    rows = explorer.fetch(
        "SELECT count(DISTINCT s.tableoid) FROM tasker.step_edges e "
        "JOIN tasker.steps s ON s.id IN (e.from_step_id, e.to_step_id) WHERE e.task_id = %(t)s",
        {"t": TASK},
    )
    assert rows == [(1,)]


def test_every_per_task_statement_touches_one_partition(explorer: Explorer) -> None:
    # Given the readiness core with the partition key in its joins
    install_readiness(explorer, adapted=True)
    home = explorer.task_partition(TASK)
    problems = []
    for name, params in sorted(per_task_params().items()):
        # When the engine's statement runs for one task
        touch = explorer.run(adapt(QUERIES[name], BOUND.get(name, ())), params)
        # Then every partitioned table it planned to read or write, and every one it did
        # touch, is in one partition (the task's; a new task's own for insert_task), and
        # it touches nothing else but the documented global rows
        indexes = touch.partition_indexes()
        expected = indexes if name == "insert_task" and len(indexes) == 1 else {home}
        if not touch.plans or indexes != expected:
            problems.append(f"{name}: {summary(touch)}")
        if not touch.global_tables() <= GLOBAL_TOUCHES.get(name, set()):
            problems.append(f"{name}: global tables {sorted(touch.global_tables())}")
        as_written = None
        if name in BOUND:
            # As the engine runs it today the statement finds rows by step id alone (or by
            # a correlated column): it could not be routed to one shard. Proves each added
            # predicate is needed, and that this test sees statements that span partitions.
            as_written = explorer.run(QUERIES[name], params)
            if as_written.partition_indexes() != ALL:
                problems.append(f"{name} as written: {summary(as_written)} (expected all)")
        REPORT["per_task"].append((name, touch, as_written))
        REPORT["plans"][name] = touch
    assert not problems, "\n".join(problems)


def test_the_readiness_core_as_shipped_plans_all_signal_partitions(explorer: Explorer) -> None:
    # Given the readiness core as the migrations install it: the correlated signal lookup
    # (g.task_id = s.task_id) cannot be pruned when the query is planned
    touch = explorer.run(
        QUERIES["get_step_readiness_status"], per_task_params()["get_step_readiness_status"]
    )
    # Then its plan lists every task_signals partition (at run time only the task's own is
    # probed, and only for steps waiting for a signal); the adaptation prunes it statically
    assert touch.partitions()["task_signals"] == ALL
    assert touch.partitions()["steps"] == {explorer.task_partition(TASK)}


def test_a_batch_across_tasks_joins_partition_to_partition(explorer: Explorer) -> None:
    task_ids = list(range(1, 41))  # tasks in all four partitions
    now = NOW
    batch = {
        "get_step_readiness_status_batch": dict(task_ids=task_ids, now=now),
        "get_task_execution_contexts_batch": dict(task_ids=task_ids, now=now),
        "parent_results": dict(
            step_ids=[(t - 1) * 4 + k for t in task_ids for k in (2, 3, 4)], task_ids=task_ids
        ),
    }
    # Given the readiness core as shipped: its edge-to-parent join is on step ids only
    shipped = explorer.run(
        QUERIES["get_step_readiness_status_batch"], batch["get_step_readiness_status_batch"]
    )
    shipped_joins = [join_locality(n) for p in shipped.plans for n in join_nodes(p["Plan"])]
    assert "cross-partition" in shipped_joins, shipped_joins
    # When the core carries the partition key in its joins (partition-wise join on)
    install_readiness(explorer, adapted=True)
    for name, params in batch.items():
        touch = explorer.run(adapt(QUERIES[name], BOUND.get(name, ())), params)
        joins = [n for p in touch.plans for n in join_nodes(p["Plan"])]
        over_partitions = [n for n in joins if join_partition_indexes(n)]
        localities = [join_locality(n) for n in over_partitions]
        # Then every join over partitions joins one partition index with itself, or (a
        # grouped subquery on one side) equates the partition keys: each part could run on
        # its own shard; and the batch reads all four partitions
        assert over_partitions, f"{name}: no join over partitions"
        assert "cross-partition" not in localities, f"{name}: {localities}"
        assert touch.partition_indexes() == ALL
        REPORT["batch"].append((name, touch, localities))
        REPORT["plans"][f"{name} (40 tasks)"] = touch


def test_the_claim_fans_out_one_statement_per_partition(explorer: Explorer) -> None:
    claim = per_task_params()["claim_steps"] | {"task_id": None, "limit": 50}
    # Given ready steps in every partition: the claim across all tasks (as shipped) plans
    # and locks in every partition: it is cross-shard by nature
    everywhere = explorer.run(QUERIES["claim_steps"], claim)
    assert everywhere.partition_indexes() == ALL
    REPORT["claim"].append(("claim_steps, all tasks (as shipped)", everywhere))
    for index in range(MODULUS):
        # When the same statement runs against one partition (as a Citus worker runs it
        # against one shard), and its transaction's follow-ups for the steps it claimed
        one = QUERIES["claim_steps"].replace("tasker.steps", f"tasker.steps_p{index}")
        touch = explorer.run(one, claim)
        rows = explorer.fetch(one, claim)
        assert rows, f"partition {index} had nothing to claim"
        task_ids = sorted({row[1] for row in rows})
        step_ids = sorted(row[0] for row in rows)
        follow = [
            explorer.run(QUERIES["start_tasks"], dict(task_ids=task_ids, now=NOW)),
            explorer.run(QUERIES["task_contexts"], dict(task_ids=task_ids)),
            explorer.run(
                adapt(QUERIES["parent_results"], BOUND["parent_results"]),
                dict(step_ids=step_ids, task_ids=task_ids),
            ),
        ]
        # Then it and they touch that partition alone
        for t in [touch, *follow]:
            assert t.partition_indexes() == {index}, summary(t)
        REPORT["claim"].append(
            (f"claim_steps on steps_p{index} + start_tasks, task_contexts, parent_results", touch)
        )


def render_report() -> str:
    lines = ["### Per-task statements (task 42, partition 2)", ""]
    lines += ["| statement | task_id predicate added | as written | with the task bound |"]
    lines += ["|---|---|---|---|"]
    for name, touch, as_written in sorted(REPORT["per_task"], key=lambda r: r[0]):
        glob = touch.global_tables()
        bound = summary(touch) + (f"; global: {', '.join(sorted(glob))}" if glob else "")
        written = summary(as_written) if as_written else "same"
        lines.append(f"| `{name}` | {'yes' if as_written else 'no'} | {written} | {bound} |")
    lines += ["", "### Batches across 40 tasks (partition-wise join on)", ""]
    lines += ["| statement | partitions | joins over partitions |", "|---|---|---|"]
    for name, touch, localities in REPORT["batch"]:
        counts = ", ".join(f"{localities.count(k)} {k}" for k in sorted(set(localities)))
        lines.append(f"| `{name}` | {summary(touch)} | {counts} |")
    lines += ["", "### The claim", "", "| statement | partitions |", "|---|---|"]
    for name, touch in REPORT["claim"]:
        lines.append(f"| {name} | {summary(touch)} |")
    lines += ["", "### Plans (shortened: nodes, tables, conditions; costs left out)", ""]
    for name, touch in sorted(REPORT["plans"].items()):
        lines += [f"`{name}`:", "", "```"]
        for plan in touch.plans:
            if any(node.get("Relation Name") for node in _nodes(plan["Plan"])):
                lines += short_plan(plan["Plan"], limit=30)
                lines.append("")
        lines[-1:] = ["```", ""]
    return "\n".join(lines) + "\n" + f"<!-- {SEED_TASKS} seeded tasks -->\n"


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)
