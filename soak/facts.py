"""What the run left behind, read once at the end: the database's tasks, steps, history
and events, and the ledger's plans, executions and human actions.

The history gives each step's *claims*: every ``→ in_progress`` transition carries the
attempt and the worker id (``<host>-<pid>-<hex>``), and the step's next transition says
how that claim ended (``complete``, ``error`` with its class, ``cancelled``), and when.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from benchmarks.harness import Probe

from soak.ledger import Ledger
from soak.plan import TaskPlan

FINAL_TASK_STATES = frozenset({"complete", "error", "cancelled", "resolved_manually"})


@dataclass
class Claim:
    """One attempt as the database saw it: claimed by ``pid`` at ``at``, ended ``end``."""

    step_id: int
    attempt: int
    worker_id: str
    pid: int | None
    at: datetime
    end: str | None = None  # the step's next state; None while still running
    end_class: str | None = None  # error class when end == "error"
    end_at: datetime | None = None


@dataclass
class Facts:
    tasks: dict[int, dict[str, Any]] = field(default_factory=dict)
    steps: dict[int, dict[str, Any]] = field(default_factory=dict)
    claims: dict[int, list[Claim]] = field(default_factory=lambda: defaultdict(list))
    # (kind, id) -> [(from_state, to_state)], history rows with a from_state, in order
    history: dict[tuple[str, int], list[tuple[str, str]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    events: dict[tuple[str, int], list[tuple[str, str]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    completions: dict[int, int] = field(default_factory=lambda: defaultdict(int))  # → complete
    completed_events: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    plans: dict[int, TaskPlan] = field(default_factory=dict)  # task id -> plan
    ok: list[dict[str, Any]] = field(default_factory=list)
    unstorable: list[dict[str, Any]] = field(default_factory=list)
    human: list[dict[str, Any]] = field(default_factory=list)
    torn_lines: int = 0
    _by_task: dict[int, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))

    def steps_of(self, task_id: int) -> list[dict[str, Any]]:
        if not self._by_task:
            for step in self.steps.values():
                self._by_task[step["task_id"]].append(step)
        return self._by_task[task_id]


def worker_pid(worker_id: str | None) -> int | None:
    """The pid inside a worker id ``<hostname>-<pid>-<hex>``."""
    if not worker_id:
        return None
    try:
        return int(worker_id.rsplit("-", 2)[1])
    except (IndexError, ValueError):
        return None


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else (value or {})


def read_facts(url: str, ledger: Ledger) -> Facts:
    facts = Facts()
    with Probe(url) as probe:
        for row in probe.rows("SELECT id, name, status FROM tasker.tasks"):
            facts.tasks[row["id"]] = row
        for row in probe.rows(
            "SELECT id, task_id, name, status, attempts, max_attempts, retryable, error,"
            " claimed_by, lease_expires_at FROM tasker.steps"
        ):
            row["error"] = _json(row["error"]) if row["error"] is not None else None
            facts.steps[row["id"]] = row
        _read_step_history(probe, facts)
        for row in probe.rows(
            "SELECT task_id, from_state, to_state FROM tasker.task_transitions"
            " ORDER BY task_id, sort_key"
        ):
            if row["from_state"] is not None:
                facts.history[("task", row["task_id"])].append((row["from_state"], row["to_state"]))
        for row in probe.rows(
            "SELECT name, task_id, step_id, payload FROM tasker.events"
            " WHERE substr(name, 1, 5) IN ('task.', 'step.') ORDER BY id"
        ):
            payload = _json(row["payload"])
            entity = ("step", row["step_id"]) if row["step_id"] else ("task", row["task_id"])
            facts.events[entity].append((payload.get("from_state"), payload.get("to_state")))
            if row["name"] == "step.completed":
                facts.completed_events[row["step_id"]] += 1
    lines = ledger.read()
    facts.torn_lines = lines.torn
    for record in lines.of_kind("plan"):
        facts.plans[record["task"]] = TaskPlan.from_json(
            record["i"], record["shape"], record["steps"]
        )
    facts.ok = lines.of_kind("ok")
    facts.unstorable = lines.of_kind("unstorable")
    facts.human = lines.of_kind("human")
    return facts


def _read_step_history(probe: Probe, facts: Facts) -> None:
    open_claims: dict[int, Claim] = {}
    for row in probe.rows(
        "SELECT step_id, from_state, to_state, metadata, created_at"
        " FROM tasker.step_transitions ORDER BY step_id, sort_key"
    ):
        step_id = row["step_id"]
        if row["from_state"] is None:
            continue
        facts.history[("step", step_id)].append((row["from_state"], row["to_state"]))
        metadata = _json(row["metadata"])
        claim = open_claims.pop(step_id, None)
        if claim is not None:
            claim.end = row["to_state"]
            claim.end_class = metadata.get("error_class")
            claim.end_at = row["created_at"]
        if row["to_state"] == "complete":
            facts.completions[step_id] += 1
        if row["to_state"] == "in_progress":
            worker = str(metadata.get("worker_id", ""))
            claim = Claim(
                step_id,
                int(metadata.get("attempt", 0)),
                worker,
                worker_pid(worker),
                row["created_at"],
            )
            facts.claims[step_id].append(claim)
            open_claims[step_id] = claim
