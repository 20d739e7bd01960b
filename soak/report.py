"""The outcome of a run: printed, as JSON, and as the figures section of
docs/reliability.md (between ``<!-- soak:<backend>:begin -->`` and ``…:end -->``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from soak.facts import Facts
from soak.plan import TaskPlan


def mark(passed: bool | None) -> str:
    return {True: "ok", False: "FAILED", None: "info"}[passed]


def print_result(result: dict[str, Any]) -> None:
    seconds = result["seconds"]
    workload = result["workload"]
    print(
        f"\n== {result['backend']}: {workload['tasks']:,} tasks, {workload['steps']:,} steps, "
        f"{result['workers']} workers, seed {result['seed']}, {seconds['total']:.0f} s "
        f"(feed {seconds['feed']:.0f} s, all final after {seconds['until_drained']:.0f} s"
        f"{'' if seconds['drained'] else ', NOT drained'})"
    )
    for check in result["checks"]:
        print(f"  {mark(check['passed']):6} {check['name']:28} {check['figure']}")
    for line in figure_lines(result):
        print(f"  {'':6} {line}")
    failed = [c for c in result["checks"] if c["passed"] is False]
    for check in failed:
        print(f"\n  {check['name']}: {check['rule']}")
        print("    " + json.dumps(check["details"], default=str)[:1500])


def figure_lines(result: dict[str, Any]) -> list[str]:
    chaos = result["chaos"]
    kinds: dict[str, int] = {}
    for event in chaos:
        kinds[event["action"]] = kinds.get(event["action"], 0) + 1
    rss = result["rss"]
    spared = rss.get("spared_worker", {})
    restart = next((e for e in chaos if e["action"] == "restart_db"), None)
    lines = [
        f"chaos: {', '.join(f'{k} {v}' for k, v in sorted(kinds.items())) or 'none'}"
        + (f" (PostgreSQL down {restart['down_seconds']:.1f} s)" if restart else "")
        + f"; {result['worker_starts']} worker processes started in all",
        "human: "
        + (", ".join(f"{k}: {v}" for k, v in result["human"]["actions"].items()) or "nothing"),
        f"worker RSS: peak {rss['peak_mib']} MiB over {rss['processes']} processes",
    ]
    if spared:
        lines[-1] += (
            f"; the spared worker over {spared['seconds']:.0f} s: "
            f"{spared['rss_mib_at_10%']} → {spared['rss_mib_at_50%']} → "
            f"{spared['rss_mib_at_100%']} MiB (10/50/100 %)"
        )
    load = result.get("load_average") or {}
    if load.get("mean") is not None:
        lines.append(
            f"machine: load average {load['mean']:.1f} on average, {load['max']:.1f} at most, "
            f"on {load['cpus']} CPUs (shared with other engineers' runs)"
        )
    housekeeping = result.get("housekeeping")
    if housekeeping:
        lines.append(
            f"autovacuum is off on this server: the suite ran VACUUM (ANALYZE) "
            f"{housekeeping['runs']} times ({housekeeping['seconds']:.0f} s in all)"
        )
    return lines


def markdown(result: dict[str, Any], command: str, commit: str) -> str:
    seconds = result["seconds"]
    workload = result["workload"]
    rows = "\n".join(
        f"| {c['name']} | {mark(c['passed'])} | {c['figure']} |" for c in result["checks"]
    )
    extra = "\n".join(f"- {line}" for line in figure_lines(result))
    verdict = "all invariants held" if result["passed"] else "**invariants failed**"
    changes = len(result.get("worktree_changes") or [])
    tree = f" + {changes} uncommitted files in src/" if changes else ""
    return (
        f"`{command}` — {result['began_at']}, commit {commit}{tree}: {verdict}.\n\n"
        f"{workload['tasks']:,} tasks ({workload['all_retryable_tasks']:,} all-retryable, "
        f"{workload['fails_for_good_tasks']:,} planned to fail for good), "
        f"{workload['steps']:,} steps, {result['workers']} worker processes, "
        f"{seconds['total']:.0f} s in all (feed {seconds['feed']:.0f} s; every task final "
        f"after {seconds['until_drained']:.0f} s{'' if seconds['drained'] else ': NOT drained'})."
        f"\n\n| invariant | result | as seen |\n|---|---|---|\n{rows}\n\n{extra}\n"
    )


def update_docs(path: Path, backend: str, body: str) -> None:
    """Replace the text between this backend's markers (append the section if absent)."""
    begin, end = f"<!-- soak:{backend}:begin -->", f"<!-- soak:{backend}:end -->"
    text = path.read_text() if path.exists() else "# Reliability\n"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        _, tail = rest.split(end, 1)
    else:
        head, tail = text.rstrip("\n") + "\n\n", "\n"
    path.write_text(f"{head}{begin}\n{body}{end}{tail}")


def workload_figures(plans: list[TaskPlan], facts: Facts) -> dict[str, Any]:
    behaviours: dict[str, int] = {}
    for plan in plans:
        for behaviour in plan.steps.values():
            key = behaviour.do + (f":{behaviour.kind}" if behaviour.kind else "")
            behaviours[key] = behaviours.get(key, 0) + 1
    shapes: dict[str, int] = {}
    for plan in plans:
        shapes[plan.shape] = shapes.get(plan.shape, 0) + 1
    return {
        "tasks": len(plans),
        "steps": len(facts.steps),
        "all_retryable_tasks": sum(p.all_retryable for p in plans),
        "fails_for_good_tasks": sum(not p.all_retryable for p in plans),
        "shapes": shapes,
        "planned_misbehaviours": dict(sorted(behaviours.items())),
        "steps_complete": sum(s["status"] == "complete" for s in facts.steps.values()),
        "claims": sum(len(c) for c in facts.claims.values()),
    }


def human_figures(actions: list[dict[str, Any]]) -> dict[str, Any]:
    counts: dict[str, int] = {}
    for action in actions:
        key = f"{action['action']} exit {action['code']}"
        counts[key] = counts.get(key, 0) + 1
    return {"actions": dict(sorted(counts.items())), "log": actions[:200]}


def rss_figures(samples: list[tuple[float, int, int, int]]) -> dict[str, Any]:
    """Peak RSS, and the spared worker (slot 0, never signalled by the chaos) over the run:
    its RSS at 10 %, 50 % and 100 % of its life, and the growth from 50 % to 100 %."""
    by_pid: dict[int, list[tuple[float, int]]] = {}
    for seconds, _slot, pid, kib in samples:
        by_pid.setdefault(pid, []).append((seconds, kib))
    spared_pids = [pid for seconds, slot, pid, kib in samples if slot == 0]
    result: dict[str, Any] = {
        "peak_mib": round(max((s[3] for s in samples), default=0) / 1024, 1),
        "processes": len(by_pid),
        "samples": [list(s) for s in samples],
    }
    if spared_pids:
        series = by_pid[spared_pids[-1]]

        def at(fraction: float) -> float:
            index = min(len(series) - 1, max(0, round(fraction * (len(series) - 1))))
            return round(series[index][1] / 1024, 1)

        result["spared_worker"] = {
            "pid": spared_pids[-1],
            "seconds": round(series[-1][0] - series[0][0], 1),
            "rss_mib_at_10%": at(0.1),
            "rss_mib_at_50%": at(0.5),
            "rss_mib_at_100%": at(1.0),
            "growth_50_to_100": round((at(1.0) - at(0.5)) / at(0.5), 4) if at(0.5) else None,
        }
    return result


def main(argv: list[str]) -> int:
    """``python -m soak.report RESULT.json DOC.md``: rewrite DOC's section for the run in
    RESULT (after editing the report's wording, without running the soak again)."""
    result = json.loads(Path(argv[0]).read_text())
    update_docs(
        Path(argv[1]), result["backend"], markdown(result, result["command"], result["commit"])
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
