"""Then: the invariants, judged on the facts (database + ledger) at the end of a run.

Exactly once, precisely. With ``kill -9`` the guarantee is *at-least-once execution and
exactly-once recorded completion*: a worker killed after its handler wrote the ledger's
``ok`` line, but before the result was recorded, has executed the step; the step's lease
then expires, the attempt counts as failed, and another attempt runs and writes a second
``ok`` line. So three things are checked, and the raw duplicates are reported apart:

1. ``recorded_once``: every complete step has exactly one ``→ complete`` history row and
   one ``step.completed`` event (fencing: a stale claim's result is refused).
2. ``completion_backed``: every complete step has exactly one ``ok`` line from its
   *completing claim*: the same attempt, the same worker pid, written between that
   claim and the completion. The database never records a result nobody returned.
3. ``executions_explained``: every ``ok`` line belongs to a claim in the history (same
   step, attempt and pid), and each one that is not the completing claim's ended in a way
   the handler did not cause: its worker was lost (``LeaseExpired``: kill -9, or a lease
   that lapsed), released at SIGTERM (``WorkerShutdown``), finished after its timeout
   (``TimeoutError``: a hung thread returning late), or its task was cancelled meanwhile.
   A second ``ok`` for one claim, or an ``ok`` whose claim ended in a handler's own
   error, has no explanation and fails the check.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from soak.facts import FINAL_TASK_STATES, Claim, Facts, worker_pid
from soak.workers import WorkerExit

TARGET_COMPLETION_RATE = 0.999
SLACK = timedelta(seconds=1)  # handler and database times come from the same clock
SAMPLE = 10  # examples kept per failed check

# How a claim that executed the step successfully may still have ended without its result.
EXPLAINED_ENDS = {
    "LeaseExpired": "worker lost (kill -9 or lapsed lease), result never recorded",
    "WorkerShutdown": "released at SIGTERM before its result was recorded",
    "TimeoutError": "hung past its timeout, returned later",
    "cancelled": "task cancelled while it ran, result discarded",
}


@dataclass
class Check:
    """One invariant: its rule in a sentence, whether it held (None: reported only),
    the figure as seen, and examples when it failed."""

    name: str
    rule: str
    passed: bool | None
    figure: str
    details: dict[str, Any] = field(default_factory=dict)


def judge_facts(facts: Facts, target_rate: float = TARGET_COMPLETION_RATE) -> list[Check]:
    return [
        tasks_finalized(facts),
        completion_rate(facts, target_rate),
        recorded_once(facts),
        completion_backed(facts),
        executions_explained(facts),
        events_match_history(facts),
        planned_failures_kept(facts),
        unstorable_refused(facts),
        cancelled_only_by_the_human(facts),
    ]


# -- tasks --------------------------------------------------------------------------------


def tasks_finalized(facts: Facts) -> Check:
    by_status = Counter(t["status"] for t in facts.tasks.values())
    unfinished = [t for t in facts.tasks.values() if t["status"] not in FINAL_TASK_STATES]
    missing = len(facts.plans) - len(facts.tasks)
    return Check(
        "tasks_finalized",
        "every planned task was created and reached a final state",
        not unfinished and missing == 0,
        f"{len(facts.tasks) - len(unfinished):,} of {len(facts.plans):,} tasks final "
        f"({_counts(by_status)})",
        {
            "by_status": dict(by_status),
            "not_created": missing,
            "unfinished": [_task_story(facts, t["id"]) for t in unfinished[:SAMPLE]],
        },
    )


def completion_rate(facts: Facts, target: float) -> Check:
    eligible = [
        task_id
        for task_id, plan in facts.plans.items()
        if plan.all_retryable and facts.tasks.get(task_id, {}).get("status") != "cancelled"
    ]
    failed = [t for t in eligible if facts.tasks.get(t, {}).get("status") != "complete"]
    rate = (len(eligible) - len(failed)) / len(eligible) if eligible else 1.0
    why = Counter(_first_failure(facts, t) for t in failed)
    return Check(
        "completion_rate",
        f"at least {target:.1%} of the all-retryable tasks the human did not cancel complete",
        rate >= target,
        f"{rate:.4%} ({len(eligible) - len(failed):,} of {len(eligible):,}; "
        f"{len(failed):,} did not complete)",
        {
            "rate": rate,
            "eligible": len(eligible),
            "failed": len(failed),
            "why": dict(why.most_common()),
            "examples": [_task_story(facts, t) for t in failed[:SAMPLE]],
        },
    )


def planned_failures_kept(facts: Facts) -> Check:
    """A step planned to fail for good never ends ``complete``: its failure was not lost."""
    wrong = []
    outcomes: Counter[str] = Counter()
    for task_id, plan in facts.plans.items():
        if plan.all_retryable:
            continue
        outcomes[facts.tasks.get(task_id, {}).get("status", "missing")] += 1
        steps = {s["name"]: s for s in facts.steps_of(task_id)}
        for name, behaviour in plan.steps.items():
            if behaviour.for_good and steps.get(name, {}).get("status") == "complete":
                wrong.append({"task": task_id, "step": name, "plan": behaviour.to_json()})
    return Check(
        "planned_failures_kept",
        "no step planned to fail for good (permanent, exhausted, unstorable) ends complete",
        not wrong,
        f"{len(wrong)} such steps complete; tasks planned to fail ended {_counts(outcomes)}",
        {"task_outcomes": dict(outcomes), "examples": wrong[:SAMPLE]},
    )


def unstorable_refused(facts: Facts) -> Check:
    """A result the database refuses fails its step for good, saying so."""
    returned = {line["step"] for line in facts.unstorable}
    seen: Counter[str] = Counter()
    wrong = []
    for step_id in sorted(returned):
        step = facts.steps.get(step_id)
        if step is None or step["status"] in ("cancelled", "resolved_manually"):
            seen["then resolved or cancelled by the human (not judged)"] += 1
            continue
        if step["status"] in ("pending", "in_progress"):
            # re-opened by the human's retry and not finished: tasks_finalized judges that
            seen[f"{step['status']} again after the human's retry (not judged)"] += 1
            continue
        error = step["error"] or {}
        message = str(error.get("message", ""))
        ok = (
            step["status"] == "error"
            and "result is not storable" in message
            and not step.get("retryable", True)
        )
        seen["refused as not storable" if ok else f"{step['status']}: {error.get('class')}"] += 1
        if not ok:
            wrong.append(
                {
                    "task": step["task_id"],
                    "step": step["name"],
                    "status": step["status"],
                    "attempts": step["attempts"],
                    "retryable": step.get("retryable"),
                    "error": f"{error.get('class')}: {message[:200]}",
                }
            )
    return Check(
        "unstorable_refused",
        "a step returning NaN, NUL, a lone surrogate or 5000-deep nesting fails for good "
        "with 'result is not storable'",
        not wrong,
        f"{len(returned)} steps returned one: {_counts(seen)}",
        {"outcomes": dict(seen), "examples": wrong[:SAMPLE]},
    )


def cancelled_only_by_the_human(facts: Facts) -> Check:
    cancels = {h["task"] for h in facts.human if h["action"] == "cancel" and h["code"] == 0}
    cancelled = {t for t, row in facts.tasks.items() if row["status"] == "cancelled"}
    return Check(
        "cancelled_only_by_the_human",
        "the tasks cancelled are exactly those the human's `tasker task cancel` succeeded on",
        cancels == cancelled,
        f"{len(cancelled)} cancelled, {len(cancels)} cancels succeeded",
        {
            "cancelled_without_a_cancel": sorted(cancelled - cancels)[:SAMPLE],
            "cancel_succeeded_not_cancelled": sorted(cancels - cancelled)[:SAMPLE],
        },
    )


# -- exactly once ---------------------------------------------------------------------------


def recorded_once(facts: Facts) -> Check:
    complete = [i for i, s in facts.steps.items() if s["status"] == "complete"]
    rows = [
        i
        for i, s in facts.steps.items()
        if facts.completions.get(i, 0) > (1 if s["status"] == "complete" else 0)
        or (s["status"] == "complete" and facts.completions.get(i, 0) != 1)
    ]
    events = [i for i in complete if facts.completed_events.get(i, 0) != 1]
    return Check(
        "recorded_once",
        "each complete step has exactly one → complete history row and one step.completed event",
        not rows and not events,
        f"{len(complete):,} complete steps; {len(rows)} with ≠ 1 completion row, "
        f"{len(events)} with ≠ 1 step.completed event",
        {"rows": rows[:SAMPLE], "events": events[:SAMPLE]},
    )


def _ok_lines_by_step(facts: Facts) -> dict[int, list[dict[str, Any]]]:
    found: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for line in facts.ok:
        found[line["step"]].append(line)
    return found


def _when(line: dict[str, Any]) -> datetime:
    return datetime.fromtimestamp(line["t"], UTC)


def completing_claim(facts: Facts, step_id: int) -> Claim | None:
    ends = [c for c in facts.claims.get(step_id, []) if c.end == "complete"]
    return ends[-1] if ends else None


def _ran_in(line: dict[str, Any], claim: Claim) -> bool:
    """The line was written in the claiming worker's process, or in a child of it (a
    worker running handlers in child processes: ``--pool process``)."""
    return claim.pid is not None and claim.pid in (line["pid"], line.get("ppid"))


def _executed_by(line: dict[str, Any], claim: Claim) -> bool:
    return (
        line["attempt"] == claim.attempt
        and _ran_in(line, claim)
        and claim.at - SLACK <= _when(line)
        and (claim.end_at is None or _when(line) <= claim.end_at + SLACK)
    )


def completion_backed(facts: Facts) -> Check:
    by_step = _ok_lines_by_step(facts)
    unstorable = Counter(line["step"] for line in facts.unstorable)
    wrong = []
    for step_id, step in facts.steps.items():
        if step["status"] != "complete":
            continue
        claim = completing_claim(facts, step_id)
        lines = [] if claim is None else [x for x in by_step[step_id] if _executed_by(x, claim)]
        if len(lines) != 1:
            wrong.append(
                {
                    "step": step_id,
                    "task": step["task_id"],
                    "name": step["name"],
                    "completing_claim": None if claim is None else _claim_json(claim),
                    "matching_ok_lines": len(lines),
                    "ok_lines": len(by_step[step_id]),
                    # the handler returned a result the database should have refused
                    "unstorable_returns": unstorable[step_id],
                }
            )
    complete = sum(s["status"] == "complete" for s in facts.steps.values())
    return Check(
        "completion_backed",
        "each complete step has exactly one ledger 'ok' line from its completing claim "
        "(same attempt, same worker pid, written between the claim and the completion)",
        not wrong,
        f"{complete - len(wrong):,} of {complete:,} complete steps backed by exactly one",
        {"examples": wrong[:SAMPLE], "count": len(wrong)},
    )


def executions_explained(facts: Facts) -> Check:
    by_step = _ok_lines_by_step(facts)
    categories: Counter[str] = Counter()
    unexplained = []
    for step_id, lines in by_step.items():
        claims = facts.claims.get(step_id, [])
        completing = completing_claim(facts, step_id)
        recorded = None
        if completing is not None:
            matched = [x for x in lines if _executed_by(x, completing)]
            recorded = matched[0] if len(matched) == 1 else None
        for line in lines:
            if line is recorded:
                categories["the recorded completion"] += 1
                continue
            claim = _claim_of(line, claims)
            category = _explain(claim)
            categories[category] += 1
            if category not in EXPLAINED_ENDS.values() and category != "claim still open":
                unexplained.append(
                    {
                        "line": line,
                        "claim": None if claim is None else _claim_json(claim),
                        "why": category,
                    }
                )
    duplicated = sum(len(lines) > 1 for lines in by_step.values())
    return Check(
        "executions_explained",
        "every ledger 'ok' line is the recorded completion, or its claim ended without a "
        "result for a reason outside the handler (lost worker, SIGTERM release, timeout, "
        "cancelled task)",
        not unexplained,
        f"{len(facts.ok):,} successful executions of {len(by_step):,} steps: "
        f"{len(facts.ok) - len(by_step):,} raw duplicates on {duplicated:,} steps; "
        f"{len(unexplained)} unexplained",
        {
            "by_category": dict(categories.most_common()),
            "raw_duplicate_executions": len(facts.ok) - len(by_step),
            "steps_executed_more_than_once": duplicated,
            "torn_ledger_lines": facts.torn_lines,
            "examples": unexplained[:SAMPLE],
        },
    )


def _claim_of(line: dict[str, Any], claims: list[Claim]) -> Claim | None:
    """The latest claim with the line's attempt and pid that began before it was written."""
    found = [
        c
        for c in claims
        if c.attempt == line["attempt"] and _ran_in(line, c) and c.at - SLACK <= _when(line)
    ]
    return found[-1] if found else None


def _explain(claim: Claim | None) -> str:
    if claim is None:
        return "no claim in the history for this attempt and pid"
    if claim.end is None:
        return "claim still open"
    if claim.end == "cancelled":
        return EXPLAINED_ENDS["cancelled"]
    if claim.end == "complete":
        return "a second 'ok' for the completing claim"
    if claim.end_class in EXPLAINED_ENDS:
        return EXPLAINED_ENDS[claim.end_class]
    return f"claim ended {claim.end} with the handler-side class {claim.end_class}"


def _claim_json(claim: Claim) -> dict[str, Any]:
    return {
        "attempt": claim.attempt,
        "worker": claim.worker_id,
        "at": claim.at.isoformat(),
        "end": claim.end,
        "end_class": claim.end_class,
        "end_at": claim.end_at.isoformat() if claim.end_at else None,
    }


# -- events ---------------------------------------------------------------------------------


def events_match_history(facts: Facts) -> Check:
    keys = set(facts.history) | set(facts.events)
    differ = [k for k in keys if facts.history.get(k, []) != facts.events.get(k, [])]
    rows = sum(len(v) for v in facts.history.values())
    events = sum(len(v) for v in facts.events.values())
    return Check(
        "events_match_history",
        "every task and step has one state event per history row, in the same order "
        "(event payload from_state → to_state = the row's)",
        not differ,
        f"{rows:,} history rows, {events:,} state events, {len(differ)} entities differ",
        {
            "examples": [
                {
                    "entity": f"{kind} {ident}",
                    "history": facts.history.get((kind, ident), []),
                    "events": facts.events.get((kind, ident), []),
                }
                for kind, ident in differ[:SAMPLE]
            ]
        },
    )


# -- leases and workers ------------------------------------------------------------------------


def leases_live(
    in_progress: list[dict[str, Any]], live_pids: set[int], now: datetime, lease_seconds: float
) -> Check:
    """Read while the workers still run, a lease period after the last disruption: a step
    in progress must be held by a live worker whose lease has not lapsed (beyond one
    reaper interval, a third of the lease)."""
    lapse = timedelta(seconds=lease_seconds / 3 + 2)
    wrong = []
    for row in in_progress:
        holder_alive = worker_pid(row["claimed_by"]) in live_pids
        lapsed = row["lease_expires_at"] is None or row["lease_expires_at"] < now - lapse
        if not holder_alive or lapsed:
            wrong.append(
                {
                    "step": row["id"],
                    "task": row["task_id"],
                    "claimed_by": row["claimed_by"],
                    "holder_alive": holder_alive,
                    "lease_expires_at": str(row["lease_expires_at"]),
                }
            )
    return Check(
        "leases_live",
        "at the end, no step is in progress without a live lease (live holder, lease not lapsed)",
        not wrong,
        f"{len(in_progress)} steps in progress, {len(wrong)} without a live lease",
        {"examples": wrong[:SAMPLE]},
    )


def released_on_stop(in_progress: list[dict[str, Any]]) -> Check:
    return Check(
        "released_on_stop",
        "after every worker got SIGTERM and exited, no step is left in progress",
        not in_progress,
        f"{len(in_progress)} steps left in progress",
        {"examples": in_progress[:SAMPLE]},
    )


def workers_survived(exits: list[WorkerExit]) -> Check:
    """A worker that could not start (it exits, as documented, when the database cannot be
    reached: a replacement started while PostgreSQL restarted) is reported, not judged;
    one that was running must never exit by itself."""
    unexpected = [e for e in exits if e.cause == "unexpected"]
    start_failed = [e for e in exits if e.cause == "start_failed"]
    return Check(
        "workers_survived_handlers",
        "no running worker exits unless the suite signals it (a handler never takes one down)",
        not unexpected,
        f"{len(unexpected)} unexpected exits "
        f"(exit codes {_counts(Counter(str(e.exit_code) for e in unexpected))}); "
        f"{len(start_failed)} workers failed to start",
        {
            "examples": [
                {"pid": e.pid, "exit_code": e.exit_code, "stderr": e.stderr_tail[-4:]}
                for e in unexpected[:SAMPLE]
            ],
            "start_failed": [
                {"pid": e.pid, "exit_code": e.exit_code, "stderr": e.stderr_tail[-2:]}
                for e in start_failed[:SAMPLE]
            ],
        },
    )


def sigterm_in_time(exits: list[WorkerExit], grace_seconds: float, bound_seconds: float) -> Check:
    termed = [e for e in exits if e.cause in ("term", "stop")]
    wrong = [e for e in termed if e.late or e.exit_code != 0]
    slowest = max((e.exit_seconds or 0.0 for e in termed), default=0.0)
    return Check(
        "sigterm_exits_in_time",
        f"a worker given SIGTERM exits with code 0 within grace ({grace_seconds:g} s) "
        f"+ {bound_seconds:g} s",
        not wrong,
        f"{len(termed)} SIGTERMs, {len(wrong)} late or non-zero; slowest exit {slowest:.1f} s",
        {
            "examples": [
                {
                    "pid": e.pid,
                    "exit_code": e.exit_code,
                    "exit_seconds": e.exit_seconds,
                    "late": e.late,
                    "stderr": e.stderr_tail[-4:],
                }
                for e in wrong[:SAMPLE]
            ]
        },
    )


# -- stories -------------------------------------------------------------------------------


def _first_failure(facts: Facts, task_id: int) -> str:
    task = facts.tasks.get(task_id)
    if task is None:
        return "not created"
    for step in facts.steps_of(task_id):
        if step["status"] == "error":
            error = step["error"] or {}
            return f"{task['status']}: step {step['status']} with {error.get('class')}"
    for step in facts.steps_of(task_id):
        if step["status"] == "in_progress":
            return f"{task['status']}: a step still in progress"
    return f"{task['status']}"


def _task_story(facts: Facts, task_id: int) -> dict[str, Any]:
    """A failed or unfinished task: its plan and its steps that did not complete."""
    plan = facts.plans.get(task_id)
    task = facts.tasks.get(task_id, {})
    steps = []
    for step in facts.steps_of(task_id):
        if step["status"] == "complete":
            continue
        error = step["error"] or {}
        steps.append(
            {
                "name": step["name"],
                "status": step["status"],
                "attempts": f"{step['attempts']}/{step['max_attempts']}",
                "plan": plan.steps[step["name"]].to_json()
                if plan and step["name"] in plan.steps
                else None,
                "error": f"{error.get('class')}: {str(error.get('message', ''))[:160]}"
                if error
                else None,
                "claims": [
                    f"#{c.attempt} pid {c.pid} -> {c.end}{'/' + c.end_class if c.end_class else ''}"
                    for c in facts.claims.get(step["id"], [])
                ],
            }
        )
    return {
        "task": task_id,
        "shape": plan.shape if plan else None,
        "status": task.get("status"),
        "steps": steps,
    }


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{k} {v:,}" for k, v in counter.most_common()) or "none"
