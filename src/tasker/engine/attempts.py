"""Claiming steps and recording attempt outcomes: the worker's two transactions.

Both work in batches: one round trip claims up to N steps; one transaction records
many outcomes with their history, events, released children and task finalization.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from tasker.engine import flow
from tasker.engine.children import start_children
from tasker.engine.history import Change, Event, HistoryWriter, step_event, task_event
from tasker.engine.maps import settle_groups
from tasker.engine.parents import finalize
from tasker.engine.release import BRANCH_NOT_TAKEN, release_children, skip_steps
from tasker.exceptions import StoreError, ValidationError
from tasker.payloads import storable_text
from tasker.retry import Backoff, next_retry_at, should_retry
from tasker.serialization import iso
from tasker.store.database import Connection, Json, Row


@dataclass(frozen=True)
class ClaimedStep:
    """A step a worker now holds, with everything its handler needs."""

    step_id: int
    task_id: int
    name: str
    handler: str
    config: dict[str, Any]
    attempt: int
    max_attempts: int
    timeout_seconds: float | None
    claim_token: str
    context: dict[str, Any]
    parent_results: dict[str, Any]
    namespace: str
    task_name: str
    task_version: str
    trace_context: dict[str, str] | None = None
    queued_seconds: float | None = None
    signal: Any = None  # the payload of the signal the step waited for (wait_for)
    total_parents: int = 0
    item: Any = None  # a map instance's item, and its index in the list (None otherwise)
    index: int | None = None


@dataclass(frozen=True)
class Outcome:
    """How one attempt ended. ``error`` None means success with ``results``."""

    step_id: int
    task_id: int
    claim_token: str
    results: Any = None
    error: dict[str, Any] | None = None
    retry_after: float | None = None
    permanent: bool = False
    events: tuple[tuple[str, dict[str, Any]], ...] = ()
    lease_expired: bool = False
    duration_seconds: float | None = None  # how long the handler ran
    # Released unfinished by a stopping worker: the attempt is given back and the step
    # retried at once (if retryable: it may have had effects, so a non-retryable one
    # waits for a person, as after any failed attempt).
    released: bool = False
    # The children a branching step chose (tasker.Branch); None when it returned no Branch.
    branch: tuple[str, ...] | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


# What the database, its driver or the JSON encoder raises for a row it will not store
# (a NUL in PostgreSQL text, nesting too deep to encode, a value out of range): the data's
# fault, so the step fails saying why. Anything else is a bug in Tasker: it propagates and
# the worker retries the batch, rather than failing users' steps for it. An unreachable
# or busy database (DatabaseUnavailable, TransientStoreError) is waited for, never this.
UNSTORABLE_ERRORS: tuple[type[Exception], ...] = (
    StoreError,
    ValidationError,
    TypeError,
    ValueError,
    RecursionError,
)


def refused(outcome: Outcome, exc: Exception) -> Outcome:
    """The outcome the database would not store, as a permanent failure saying why."""
    message = f"result is not storable: the database refused it: {exc}"
    return Outcome(
        outcome.step_id,
        outcome.task_id,
        outcome.claim_token,
        error={"class": "UnstorableResult", "message": storable_text(message), "traceback": None},
        permanent=True,
        duration_seconds=outcome.duration_seconds,
    )


@dataclass
class OutcomeReport:
    """What recording outcomes did: steps recorded (by the state they reached: complete,
    retry, failed, cancelled), steps refused as stale, tasks finalized."""

    recorded: list[int] = field(default_factory=list)
    stale: list[int] = field(default_factory=list)
    step_results: dict[int, str] = field(default_factory=dict)
    finalized: dict[int, str] = field(default_factory=dict)
    task_durations: dict[int, float] = field(default_factory=dict)
    # Concurrency keys whose slots the recorded steps gave back (flow.unpark them next).
    freed: set[flow.FreedKey] = field(default_factory=set)

    def merge(self, other: OutcomeReport) -> None:
        self.freed |= other.freed
        self.recorded += other.recorded
        self.stale += other.stale
        self.step_results.update(other.step_results)
        self.finalized.update(other.finalized)
        self.task_durations.update(other.task_durations)


def claim_steps(
    conn: Connection,
    *,
    worker_id: str,
    limit: int,
    lease_seconds: float,
    namespaces: list[str] | None,
    now: datetime,
    task_id: int | None = None,
    handlers: list[str] | None = None,
) -> list[ClaimedStep]:
    """Claim up to ``limit`` claimable steps; only of ``handlers`` when given (a worker
    passes the handlers it loaded, so it never takes a step it cannot run)."""
    rows = conn.fetch_all(
        "claim_steps",
        worker_id=worker_id,
        limit=limit,
        lease_expires_at=now + timedelta(seconds=lease_seconds),
        namespaces=namespaces or None,
        handlers=handlers,
        task_id=task_id,
        now=now,
    )
    rows = flow.admit(conn, rows, now)
    if not rows:
        return []
    history = HistoryWriter()
    task_ids = sorted({row["task_id"] for row in rows})
    # The task starts before its first step does, in the history and the event log.
    for task in conn.fetch_all("start_tasks", task_ids=task_ids, now=now):
        history.change(
            Change(
                task["id"],
                "pending",
                "in_progress",
                task["transition_count"],
                task_event("pending", "in_progress"),
                actor=worker_id,
                payload=_identity(task),
            )
        )
    for row in rows:
        history.change(
            Change(
                row["task_id"],
                row["from_state"],
                "in_progress",
                row["transition_count"],
                step_event("in_progress"),
                step_id=row["id"],
                step_name=row["name"],
                actor=worker_id,
                payload={
                    "attempt": row["attempts"],
                    "max_attempts": row["max_attempts"],
                    "worker_id": worker_id,
                    "queued_seconds": _seconds(row["ready_at"], now),
                },
            )
        )
    tasks = {t["id"]: t for t in conn.fetch_all("task_contexts", task_ids=task_ids)}
    waited = [row["id"] for row in rows if row["wait_for"] is not None]
    signals = {
        row["step_id"]: row["payload"]
        for row in (conn.fetch_all("step_signals", step_ids=waited) if waited else [])
    }
    parents: dict[int, dict[str, Any]] = defaultdict(dict)
    children = [row["id"] for row in rows if row["total_parents"]]
    if children:  # roots have no parent results to fetch
        for parent in conn.fetch_all("parent_results", step_ids=children):
            parents[parent["step_id"]][parent["name"]] = parent["results"]
    history.flush(conn, now)
    return [
        ClaimedStep(
            step_id=row["id"],
            task_id=row["task_id"],
            name=row["name"],
            handler=row["handler"],
            config=row["config"] or {},
            attempt=row["attempts"],
            max_attempts=row["max_attempts"],
            timeout_seconds=row["timeout_seconds"],
            claim_token=row["claim_token"],
            context=tasks[row["task_id"]]["context"],
            parent_results=parents[row["id"]],
            namespace=row["namespace"],
            task_name=tasks[row["task_id"]]["name"],
            task_version=tasks[row["task_id"]]["version"],
            trace_context=tasks[row["task_id"]]["trace_context"],
            queued_seconds=_seconds(row["ready_at"], now),
            signal=signals.get(row["id"]),
            total_parents=row["total_parents"],
            item=row["map_item"],
            index=row["map_index"],
        )
        for row in rows
    ]


def record_outcomes(
    conn: Connection,
    outcomes: list[Outcome],
    *,
    now: datetime,
    actor: str | None = None,
    rand: random.Random | None = None,
) -> OutcomeReport:
    """Store attempt outcomes. Outcomes whose claim no longer holds are refused (fencing)."""
    report = OutcomeReport()
    if not outcomes:
        return report
    tasks = {
        t["id"]: t
        for t in conn.fetch_all("lock_tasks", task_ids=sorted({o.task_id for o in outcomes}))
    }
    held = {
        row["id"]: row
        for row in conn.fetch_all(
            "lock_running_steps",
            rows=Json([{"id": o.step_id, "claim_token": o.claim_token} for o in outcomes]),
        )
    }
    report.freed = flow.freed_keys(held.values())
    history = HistoryWriter()
    finish_rows: list[dict[str, Any]] = []
    pending_changes: dict[int, tuple[Outcome, dict[str, Any]]] = {}
    # Steps with a workflow whose handler returned: they start their child task instead of
    # completing (the results are its context; None: the default one).
    spawning: list[Row] = []
    contexts: dict[int, Any] = {}
    for outcome in outcomes:
        step = held.get(outcome.step_id)
        if step is None:
            report.stale.append(outcome.step_id)
            continue
        outcome = checked_branch(outcome, step["name"], step["branches"] or [])
        if (
            outcome.ok
            and step["workflow"] is not None
            and tasks[outcome.task_id]["status"] != "cancelled"
        ):
            spawning.append({**step, "status": "in_progress"})
            if outcome.results is not None:
                contexts[step["id"]] = outcome.results
            report.recorded.append(step["id"])
            report.step_results[step["id"]] = "waiting"
            continue
        row, payload = _finish_row(outcome, step, tasks[outcome.task_id], now, rand)
        finish_rows.append(row)
        pending_changes[outcome.step_id] = (outcome, payload)
    if not finish_rows and not spawning:
        return report

    done_per_task: Counter[int] = Counter()
    retrying: set[int] = set()  # tasks with a step claimable again after its backoff
    completed_ids: list[int] = []
    not_taken: list[int] = []
    finished = (
        conn.fetch_all("finish_steps", rows=Json(finish_rows), now=now) if finish_rows else []
    )
    started = start_children(conn, history, spawning, now, actor=actor, contexts=contexts)
    for row in started.failed:
        report.step_results[row["id"]] = "failed"
    for row in finished:
        outcome, payload = pending_changes[row["id"]]
        report.recorded.append(row["id"])
        will_retry = row["status"] == "error" and payload.get("next_retry_at") is not None
        if will_retry:
            retrying.add(row["task_id"])
        report.step_results[row["id"]] = (
            ("retry" if will_retry else "failed") if row["status"] == "error" else row["status"]
        )
        history.change(
            Change(
                row["task_id"],
                "in_progress",
                row["status"],
                row["transition_count"],
                step_event(row["status"], will_retry=will_retry),
                step_id=row["id"],
                step_name=row["name"],
                actor=actor,
                reason="lease expired" if outcome.lease_expired else None,
                payload=payload,
            )
        )
        if outcome.lease_expired:
            history.event(
                Event(
                    "workflow.step_lease_expired",
                    row["task_id"],
                    {"attempt": row["attempts"]},
                    row["id"],
                    row["name"],
                )
            )
        if row["status"] == "complete":
            completed_ids.append(row["id"])
            done_per_task[row["task_id"]] += 1
            for name, event_payload in outcome.events:
                history.event(Event(name, row["task_id"], event_payload, row["id"], row["name"]))
            branches = held[row["id"]]["branches"]
            if branches and outcome.branch is not None:
                not_taken += _not_taken(conn, row["task_id"], branches, outcome.branch)

    # Map instances that finished change their group's derived state.
    groups = {
        row["group_id"]
        for row in [*finished, *started.failed]
        if row["group_id"] is not None and row["status"] in ("complete", "error")
    }
    settled = settle_groups(conn, history, groups, now, actor)
    completed_ids += [row["id"] for row in settled.completed]
    done_per_task.update(row["task_id"] for row in settled.completed)
    skipped = skip_steps(conn, history, not_taken, now, reason=BRANCH_NOT_TAKEN, actor=actor)
    released = release_children(
        conn, completed_ids, history, now, skipped_ids=[r["id"] for r in skipped], actor=actor
    )
    done_per_task.update(r["task_id"] for r in skipped)
    done_per_task.update(released.done)
    if done_per_task:
        conn.execute(
            "add_done_steps",
            rows=Json([{"task_id": t, "n": n} for t, n in done_per_task.items()]),
            now=now,
        )
    # The locked rows plus what this transaction completed are the tasks' current state.
    current = [
        {**task, "done_steps": task["done_steps"] + done_per_task[task_id]}
        for task_id, task in tasks.items()
    ]
    live = retrying | released.ready_tasks
    report.finalized = finalize(
        conn, list(tasks), history, now, actor=actor, tasks=current, live=live
    )
    report.task_durations = {
        task_id: (now - tasks[task_id]["created_at"]).total_seconds()
        for task_id in report.finalized
    }
    history.flush(conn, now)
    return report


def checked_branch(outcome: Outcome, step_name: str, branches: list[str]) -> Outcome:
    """A success whose ``tasker.Branch`` choice does not fit the step's ``branches``
    becomes a permanent failure naming the choices (running again would choose the same)."""
    if not outcome.ok:
        return outcome
    problem = branch_problem(step_name, branches, outcome.branch)
    if problem is None:
        return outcome
    return Outcome(
        outcome.step_id,
        outcome.task_id,
        outcome.claim_token,
        error={"class": "InvalidBranch", "message": problem, "traceback": None},
        permanent=True,
        duration_seconds=outcome.duration_seconds,
    )


def branch_problem(
    step_name: str, branches: list[str], chosen: tuple[str, ...] | None
) -> str | None:
    """What is wrong with ``chosen`` for a step with ``branches``, or None."""
    choices = ", ".join(branches)
    if not branches:
        if chosen is None:
            return None
        return f"step {step_name!r} returned tasker.Branch but declares no branches"
    if chosen is None:
        return (
            f"step {step_name!r} must return tasker.Branch choosing one or more of its "
            f"branches: {choices}"
        )
    if not chosen:
        return f"tasker.Branch chose no branch; step {step_name!r} must choose from: {choices}"
    unknown = [name for name in chosen if name not in branches]
    if unknown:
        return (
            f"tasker.Branch chose {', '.join(map(repr, unknown))}, not a branch of step "
            f"{step_name!r}; its branches: {choices}"
        )
    return None


def _not_taken(
    conn: Connection, task_id: int, branches: list[str], chosen: tuple[str, ...]
) -> list[int]:
    names = [name for name in branches if name not in chosen]
    if not names:
        return []
    return [row["id"] for row in conn.fetch_all("lock_task_steps", task_id=task_id, names=names)]


def _finish_row(
    outcome: Outcome, step: Row, task: Row, now: datetime, rand: random.Random | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    payload: dict[str, Any] = {
        "attempt": step["attempts"],
        "max_attempts": step["max_attempts"],
        "duration_seconds": _seconds(step["last_attempted_at"], now),
        **_identity(task),
    }
    if task["status"] == "cancelled":
        # The task was cancelled while this attempt ran: its result is discarded.
        payload["discarded"] = True
        return (
            {
                "id": step["id"],
                "status": "cancelled",
                "results": None,
                "error": None,
                "retryable": step["retryable"],
                "next_retry_at": None,
            },
            payload,
        )
    if outcome.ok:
        payload["results_size"] = len(_json_text(outcome.results))
        payload["queued_to_finished_seconds"] = _seconds(step["created_at"], now)
        if outcome.branch is not None:
            payload["branches_taken"] = list(outcome.branch)
        return (
            {
                "id": step["id"],
                "status": "complete",
                "results": outcome.results,
                "error": None,
                "retryable": step["retryable"],
                "next_retry_at": None,
            },
            payload,
        )
    assert outcome.error is not None
    retryable = bool(step["retryable"]) and not outcome.permanent
    retry_at = None
    if outcome.released:
        payload["released"] = True
        payload["error_class"] = outcome.error.get("class")
        payload["error_message"] = outcome.error.get("message")
        payload["next_retry_at"] = iso(now if retryable else None)
        return (
            {
                "id": step["id"],
                "status": "error",
                "results": None,
                "error": outcome.error,
                "retryable": retryable,
                "next_retry_at": now if retryable else None,
                "refund": 1,
            },
            payload,
        )
    if should_retry(step["attempts"], step["max_attempts"], retryable):
        backoff = Backoff(
            step["backoff_base_seconds"], step["backoff_max_seconds"], step["backoff_jitter"]
        )
        retry_at = next_retry_at(now, backoff, step["attempts"], outcome.retry_after, rand)
    payload["error_class"] = outcome.error.get("class")
    payload["error_message"] = outcome.error.get("message")
    payload["next_retry_at"] = iso(retry_at)
    return (
        {
            "id": step["id"],
            "status": "error",
            "results": None,
            "error": outcome.error,
            "retryable": retryable,
            "next_retry_at": retry_at,
        },
        payload,
    )


def _identity(task: Row) -> dict[str, Any]:
    return {"namespace": task["namespace"], "name": task["name"], "version": task["version"]}


def _seconds(start: datetime | None, end: datetime) -> float | None:
    return None if start is None else round((end - start).total_seconds(), 6)


def _json_text(value: Any) -> str:
    import json

    return json.dumps(value, default=str)


def reap_expired_leases(
    conn: Connection, *, now: datetime, limit: int = 100, rand: random.Random | None = None
) -> OutcomeReport:
    """Return steps whose lease ran out to the queue as failed attempts (one reaper at a time)."""
    lock = conn.fetch_one("try_reaper_lock")
    if not lock or not lock["acquired"]:
        return OutcomeReport()
    expired = conn.fetch_all("expired_leases", now=now, limit=limit)
    outcomes = [
        Outcome(
            step_id=row["id"],
            task_id=row["task_id"],
            claim_token=row["claim_token"],
            error={
                "class": "LeaseExpired",
                "message": f"worker {row['claimed_by']} stopped heartbeating; "
                f"lease expired at {row['lease_expires_at'].isoformat()}",
                "traceback": None,
            },
            lease_expired=True,
        )
        for row in expired
    ]
    return record_outcomes(conn, outcomes, now=now, actor="reaper", rand=rand)


def extend_leases(
    conn: Connection,
    *,
    worker_id: str,
    lease_seconds: float,
    now: datetime,
    abandoned_threads: int = 0,
) -> list[int]:
    rows = conn.fetch_all(
        "extend_leases",
        worker_id=worker_id,
        lease_expires_at=now + timedelta(seconds=lease_seconds),
    )
    conn.execute("worker_heartbeat", id=worker_id, now=now, abandoned_threads=abandoned_threads)
    return [row["id"] for row in rows]
