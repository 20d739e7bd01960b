"""The outcome of a run: printed, as JSON, and as the figures section of
docs/reliability.md (between ``<!-- soak:<backend>:begin -->`` and ``…:end -->``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


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
    return (
        f"`{command}` — {result['began_at']}, commit {commit}: {verdict}.\n\n"
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
