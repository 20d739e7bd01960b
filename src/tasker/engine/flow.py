"""Flow control at claim time: concurrency slots and rate-limit tokens, in the database.

A slot is a claimed step: a step row with a claim token, so held under its lease. Nothing
else records a slot, so none can leak: a dead worker's slot frees when the reaper expires
its lease. A claim takes steps in one statement as always; only when a claimed step is
under a limit does :func:`admit` run, in the same transaction:

1. it takes a lock per key involved (PostgreSQL advisory locks, sorted; SQLite writers
   hold the database lock anyway), so claimers of the same key go one at a time;
2. it counts the slots in use and, in claim order, admits each step whose keys have room
   and whose rate limit has a token now;
3. the others go back, unclaimed, as if never taken: *parked* for a slot (claimable at the
   end of time, ``flow_wait = 'concurrency_limit'``) or for a token (claimable at the
   token's time, which they have reserved, ``flow_wait = 'rate_limited'``). Claims skip
   them until then, without a loop of claims and releases.

When steps give their slots back (their outcome recorded, or their lease reaped), the
recorder calls :func:`unpark` in a transaction of its own, after its commit, under the same
locks: as many parked steps as there are free slots become claimable. A worker that dies
between the two leaves the parked steps to :func:`sweep`, which the reaper runs.

Rate limits are a GCRA (generic cell rate algorithm): one token per ``period / count``
seconds, with a burst of ``max(1, count // 20)``; ``rate_limits.arrival_at`` is the key's
theoretical arrival time.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tasker.definitions.flow import PERIODS, key_label
from tasker.serialization import iso
from tasker.store.database import Connection, Json, Row

PARKED_UNTIL = datetime(9999, 12, 31, tzinfo=UTC)  # claimable_at of a step waiting for a slot
SWEEP_KEYS = 100  # keys the reaper's sweep looks at per run
PERIOD_NAMES = {seconds: name for name, seconds in PERIODS.items()}


@dataclass(frozen=True)
class FreedKey:
    """A key whose slot a step gave back: 'step' or 'task' kind."""

    kind: str
    key: str


def freed_keys(rows: Iterable[Row]) -> set[FreedKey]:
    """The keys of steps (rows with concurrency_key, task_key) that leave their claim."""
    found: set[FreedKey] = set()
    for row in rows:
        if row.get("concurrency_key"):
            found.add(FreedKey("step", row["concurrency_key"]))
        if row.get("task_key"):
            found.add(FreedKey("task", row["task_key"]))
    return found


def limited(row: Row) -> bool:
    return bool(row["concurrency_key"] or row["task_key"] or row["rate_key"])


def admit(conn: Connection, rows: Sequence[Row], now: datetime) -> list[Row]:
    """The claimed ``rows`` that may run now; the others are parked (see the module doc)."""
    if not any(limited(row) for row in rows):
        return list(rows)
    ordered = sorted(rows, key=lambda r: (-r["priority"], r["id"]))
    step_keys = sorted({r["concurrency_key"] for r in ordered if r["concurrency_key"]})
    task_keys = sorted({r["task_key"] for r in ordered if r["task_key"]})
    rate_keys = sorted({r["rate_key"] for r in ordered if r["rate_key"]})
    conn.fetch_one("lock_flow_keys", keys=Json(sorted({*step_keys, *task_keys, *rate_keys})))

    # Slots others hold: the counts include this claim's own rows, which are decided below.
    mine_per_key = Counter(r["concurrency_key"] for r in ordered if r["concurrency_key"])
    mine_per_task = Counter((r["task_key"], r["task_id"]) for r in ordered if r["task_key"])
    busy: Counter[str] = Counter()
    running_tasks: dict[str, set[int]] = defaultdict(set)
    if step_keys or task_keys:
        for held in conn.fetch_all("flow_running", step_keys=step_keys, task_keys=task_keys):
            if held["kind"] == "step":
                busy[held["key"]] = held["n"] - mine_per_key[held["key"]]
            elif held["n"] > mine_per_task[(held["key"], held["task_id"])]:
                running_tasks[held["key"]].add(held["task_id"])
    arrivals: dict[str, datetime] = {}
    if rate_keys:
        arrivals = {r["key"]: r["arrival_at"] for r in conn.fetch_all("rate_state", keys=rate_keys)}
    rate_changed: set[str] = set()

    admitted: list[Row] = []
    parked: list[dict[str, object]] = []
    for row in ordered:
        key, tkey = row["concurrency_key"], row["task_key"]
        full = key is not None and busy[key] >= row["concurrency_limit"]
        if tkey is not None and row["task_id"] not in running_tasks[tkey]:
            full = full or len(running_tasks[tkey]) >= row["task_key_limit"]
        if full:
            parked.append(_park(row, "concurrency_limit", PARKED_UNTIL, row["rate_reserved"]))
            continue
        rkey = row["rate_key"]
        if rkey is not None and not row["rate_reserved"]:
            slot, arrivals[rkey] = _token(arrivals.get(rkey), row, now)
            rate_changed.add(rkey)
            if slot > now:  # reserved: it runs at its token's time
                parked.append(_park(row, "rate_limited", slot, True))
                continue
        admitted.append(row)
        if key is not None:
            busy[key] += 1
        if tkey is not None:
            running_tasks[tkey].add(row["task_id"])

    if parked:
        conn.execute("park_steps", rows=Json(parked), now=now)
    start = [r["id"] for r in admitted if limited(r)]
    if start:
        conn.execute("admit_steps", ids=start, now=now)
    started_tasks = sorted({r["task_id"] for r in admitted if r["task_key"]})
    if started_tasks and any(p["flow_wait"] == "concurrency_limit" for p in parked):
        conn.execute("unpark_task_steps", task_ids=started_tasks, now=now)
    if rate_changed:
        conn.execute(
            "save_rate_state",
            rows=Json([{"key": k, "arrival_at": arrivals[k]} for k in sorted(rate_changed)]),
        )
    return sorted(admitted, key=lambda r: r["id"])


def unpark(conn: Connection, keys: Iterable[FreedKey], now: datetime) -> list[int]:
    """Make as many parked steps of ``keys`` claimable as the keys have free slots."""
    wanted = sorted(keys, key=lambda k: (k.kind, k.key))
    if not wanted:
        return []
    conn.fetch_one("lock_flow_keys", keys=Json(sorted({k.key for k in wanted})))
    step_keys = [k.key for k in wanted if k.kind == "step"]
    task_keys = [k.key for k in wanted if k.kind == "task"]
    waiting = conn.fetch_all(
        "parked_keys", step_keys=step_keys, task_keys=task_keys, limit=len(wanted)
    )
    return _unpark_waiting(conn, waiting, now)


def sweep(conn: Connection, now: datetime) -> list[int]:
    """The safety net: unpark parked steps whose keys have free slots, whoever freed them
    (a recorder that died before its unpark, a manual change)."""
    waiting = conn.fetch_all("parked_keys", step_keys=None, task_keys=None, limit=SWEEP_KEYS)
    if not waiting:
        return []
    conn.fetch_one("lock_flow_keys", keys=Json(sorted({row["key"] for row in waiting})))
    return _unpark_waiting(conn, waiting, now)


def _unpark_waiting(conn: Connection, waiting: Sequence[Row], now: datetime) -> list[int]:
    limits: dict[tuple[str, str], int] = {}
    for row in waiting:  # versions of a template may declare different limits: the largest
        slot = (row["kind"], row["key"])
        limits[slot] = max(limits.get(slot, 0), row["lim"])
    unparked: list[int] = []
    for (kind, key), lim in sorted(limits.items()):
        query = "unpark_step_key" if kind == "step" else "unpark_task_key"
        unparked += [r["id"] for r in conn.fetch_all(query, key=key, lim=lim, now=now)]
    if unparked:
        conn.execute("notify_steps_ready")
    return unparked


def waits(conn: Connection, task_id: int) -> list[dict[str, Any]]:
    """What each of a task's held-back steps waits for, as a person reads it: the key, its
    limit and the slots in use (with the tasks holding a task key), or the rate and the time
    of its reserved token."""
    rows = conn.fetch_all("flow_waits", task_id=task_id)
    if not rows:
        return []
    step_keys = sorted({r["concurrency_key"] for r in rows if r["concurrency_key"]})
    task_keys = sorted({r["task_key"] for r in rows if r["task_key"]})
    busy: Counter[str] = Counter()
    holders: dict[str, set[int]] = defaultdict(set)
    if step_keys or task_keys:
        for held in conn.fetch_all("flow_running", step_keys=step_keys, task_keys=task_keys):
            if held["kind"] == "step":
                busy[held["key"]] = held["n"]
            else:
                holders[held["key"]].add(held["task_id"])
    found: list[dict[str, Any]] = []
    for row in rows:
        wait: dict[str, Any] = {"step": row["name"], "reason": row["flow_wait"]}
        if row["flow_wait"] == "rate_limited":
            per = PERIOD_NAMES.get(row["rate_period_seconds"], f"{row['rate_period_seconds']}s")
            wait.update(rate=f"{row['rate_count']}/{per}", next_token_at=iso(row["claimable_at"]))
        else:
            key, tkey = row["concurrency_key"], row["task_key"]
            task_full = tkey is not None and len(holders[tkey]) >= row["task_key_limit"]
            if tkey is not None and (task_full or key is None):
                wait.update(
                    key=key_label(tkey),
                    limit=row["task_key_limit"],
                    running=len(holders[tkey]),
                    running_tasks=sorted(holders[tkey]),
                )
            else:
                wait.update(key=key_label(key), limit=row["concurrency_limit"], running=busy[key])
        found.append(wait)
    return found


def describe(wait: dict[str, Any]) -> str:
    """One wait of :func:`waits` in words: ``customer_id=42 has 1/1 running (task 812)``."""
    if wait["reason"] == "rate_limited":
        return f"rate limit {wait['rate']}, next token at {wait['next_token_at']}"
    text = f"{wait['key']} has {wait['running']}/{wait['limit']} running"
    tasks = wait.get("running_tasks")
    if tasks:
        label = "task" if len(tasks) == 1 else "tasks"
        text += f" ({label} {', '.join(map(str, tasks))})"
    return text


def _token(arrival: datetime | None, row: Row, now: datetime) -> tuple[datetime, datetime]:
    """GCRA: when the next token of a key is due, and the key's arrival time after it."""
    interval = timedelta(seconds=row["rate_period_seconds"] / row["rate_count"])
    burst = max(1, row["rate_count"] // 20)
    arrival = max(arrival or now, now)
    slot = max(now, arrival - interval * (burst - 1))
    return slot, max(arrival, slot) + interval


def _park(row: Row, reason: str, until: datetime, reserved: bool) -> dict[str, object]:
    return {
        "id": row["id"],
        "from_state": row["from_state"],
        "claimable_at": until,
        "flow_wait": reason,
        "rate_reserved": bool(reserved),
    }
