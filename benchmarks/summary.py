"""After the scenarios: ratios across scenarios, the targets, the table, the JSON files.

Ratios relate a Tasker figure to a baseline measured in the same run, so that a machine
busy with other work moves both and the ratio stays readable. For throughput a ratio
above 1 favours Tasker; for times (``better == "lower"``) a ratio below 1 does.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import sqlite3
import subprocess
import sys
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from benchmarks.harness import REPO_ROOT, Figure, Run, admin, rounded

# (Tasker figure, baseline figure, ratio label)
CROSS_RATIOS = [
    ("throughput.postgres.independent.1p", "baselines.pgqueuer.noop.1p", "x pgqueuer 1p"),
    ("throughput.postgres.independent.1p", "baselines.procrastinate.noop.1p", "x procrastinate 1p"),
    ("throughput.postgres.independent.2p", "baselines.pgqueuer.noop.2p", "x pgqueuer 2p"),
    ("throughput.postgres.independent.2p", "baselines.procrastinate.noop.2p", "x procrastinate 2p"),
    ("throughput.postgres.diamond.1p", "baselines.pgqueuer.noop.1p", "x pgqueuer 1p"),
    ("throughput.postgres.diamond.2p", "baselines.pgqueuer.noop.2p", "x pgqueuer 2p"),
    ("dag.postgres.fan", "baselines.pgqueuer.fan", "x pgqueuer"),
    ("dag.postgres.fan", "baselines.procrastinate.fan", "x procrastinate"),
    ("throughput.postgres.create.independent", "physical.postgres.pgbench_tps", "x pgbench TPS"),
]


@dataclass
class Target:
    name: str
    value: float | None
    unit: str
    threshold: float
    better: str  # "higher" or "lower"
    met: bool | None
    margin: str


# (name, figure key or (figure key, ratio label), threshold, better, unit)
TARGETS: list[tuple[str, Any, float, str, str]] = [
    ("PostgreSQL independent no-op steps/s, 2 processes",
     "throughput.postgres.independent.2p", 5000.0, "higher", "steps/s"),
    ("... and at least 0.5 x PgQueuer (2 processes)",
     ("throughput.postgres.independent.2p", "x pgqueuer 2p"), 0.5, "higher", "x"),
    ("PostgreSQL 1->1000->1 fan-out/fan-in", "dag.postgres.fan", 0.4, "lower", "s"),
    ("... and no slower than PgQueuer's emulation", ("dag.postgres.fan", "x pgqueuer"),
     1.0, "lower", "x"),
    ("PostgreSQL parent completed -> child started, p50",
     "latency.postgres.parent_to_child", 5.0, "lower", "ms"),
    ("SQLite independent no-op steps/s, 1 process",
     "throughput.sqlite.independent.1p", 1000.0, "higher", "steps/s"),
    ("Worker RSS growth 50 % -> 100 % of 100k steps (flat)", "memory.postgres.growth",
     5.0, "lower", "%"),
]  # fmt: skip


def all_figures(run: Run) -> dict[str, Figure]:
    return {f.key: f for r in run.results.values() for f in r.figures if f.key}


def add_cross_ratios(run: Run) -> None:
    figures = all_figures(run)
    for tasker_key, baseline_key, label in CROSS_RATIOS:
        tasker, baseline = figures.get(tasker_key), figures.get(baseline_key)
        if tasker is not None and baseline is not None:
            tasker.ratio_to(label, baseline.value)


def judge(run: Run) -> list[Target]:
    figures = all_figures(run)
    targets = []
    for name, source, threshold, better, unit in TARGETS:
        if isinstance(source, tuple):
            figure = figures.get(source[0])
            value = figure.ratios.get(source[1]) if figure else None
        else:
            figure = figures.get(source)
            value = figure.value if figure else None
        met: bool | None = None
        margin = "not measured in this run"
        if value is not None and run.smoke:
            margin = "smoke sizes: not judged"
        elif value is not None:
            met = value >= threshold if better == "higher" else value <= threshold
            if unit == "%":
                margin = f"{value - threshold:+.1f} points vs the limit"
            elif value > 0:
                factor = value / threshold if better == "higher" else threshold / value
                margin = f"{factor:.2f}x headroom" if met else f"missed by {1 / factor:.2f}x"
        targets.append(Target(name, value, unit, threshold, better, met, margin))
    return targets


def machine_info(run: Run) -> dict[str, Any]:
    info: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average_at_start": os.getloadavg(),
        "sqlite": sqlite3.sqlite_version,
    }
    try:
        model = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
        info["cpu_model"] = model
        mem = Path("/proc/meminfo").read_text().splitlines()[0].split()[1]
        info["memory_gib"] = round(int(mem) / 1024 / 1024, 1)
    except (OSError, StopIteration, IndexError, ValueError):
        pass
    with contextlib.suppress(OSError):
        info["git_commit"] = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
    if run.uses("postgres"):
        with contextlib.suppress(psycopg.Error):
            rows = admin(
                "SELECT name, setting FROM pg_settings WHERE name IN ('server_version', "
                "'synchronous_commit', 'fsync', 'shared_buffers', 'max_connections')"
            )
            info["postgres"] = {r["name"]: r["setting"] for r in rows}
    for library in ("tasker", "psycopg", "pgqueuer", "procrastinate"):
        try:
            from importlib.metadata import version

            info[f"{library}_version"] = version(
                library if library != "tasker" else "tasker-workflows"
            )
        except Exception:  # not installed: the baselines were skipped
            info[f"{library}_version"] = None
    return info


def write_json(run: Run, command: str, machine: dict[str, Any], targets: list[Target]) -> None:
    run.out.mkdir(parents=True, exist_ok=True)
    for result in run.results.values():
        if not result.write_json:
            continue
        document = {"command": command, "smoke": run.smoke, "machine": machine}
        document.update(result.to_json())
        path = run.out / f"{result.scenario}.json"
        path.write_text(json.dumps(rounded(document), indent=2, default=str) + "\n")
    summary = {
        "command": command,
        "smoke": run.smoke,
        "machine": machine,
        "targets": [asdict(t) for t in targets],
        "figures": [asdict(f) for r in run.results.values() for f in r.figures],
        "skipped": {r.scenario: r.skipped for r in run.results.values() if r.skipped},
    }
    (run.out / "summary.json").write_text(
        json.dumps(rounded(summary), indent=2, default=str) + "\n"
    )


# -- rendering ---------------------------------------------------------------------------


def fmt_value(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit in ("steps/s", "jobs/s", "tx/s", "tasks/s"):
        text = f"{value:,.0f}"
    elif unit == "ms" and abs(value) < 1:
        text = f"{value:.3f}"
    elif unit in ("ms", "MiB", "%"):
        text = f"{value:,.1f}"
    elif unit == "s":
        text = f"{value:.3f}" if value < 10 else f"{value:.1f}"
    else:
        text = f"{value:.3f}"
    return f"{text} {unit}"


def fmt_ratios(figure: Figure) -> str:
    return ", ".join(f"{v:.2f} {k}" for k, v in figure.ratios.items())


def table_rows(run: Run) -> list[list[str]]:
    rows = []
    for result in run.results.values():
        if result.skipped:
            rows.append([result.scenario, "-", f"skipped: {result.skipped}", "", "", ""])
            continue
        for f in result.figures:
            value = fmt_value(f.value, f.unit) + (f" ({f.detail})" if f.detail else "")
            verdict = "" if f.met is None or run.smoke else ("met" if f.met else "MISSED")
            target = f"{f.target} {verdict}".strip() if f.target else ""
            rows.append([f.scenario, f.backend, f.measure, value, fmt_ratios(f), target])
    return rows


def scenario_notes(run: Run) -> list[str]:
    """The scenarios' remarks (sizes changed, libraries missing); failures say FAILED."""
    return [
        f"{r.scenario}: {note.splitlines()[0] if note.startswith('FAILED') else note}"
        for r in run.results.values()
        for note in r.notes
    ]


HEADERS = ["scenario", "backend", "measure", "value", "ratio to same-run baseline", "target"]


def print_table(run: Run, targets: list[Target]) -> None:
    rows = table_rows(run)
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:  # plain text: rich is a dependency, but the table must not need it
        print(" | ".join(HEADERS))
        for row in rows:
            print(" | ".join(row))
    else:
        table = Table(title="Tasker benchmarks" + (" (smoke sizes)" if run.smoke else ""))
        for header in HEADERS:
            table.add_column(header, overflow="fold")
        for row in rows:
            table.add_row(*row)
        Console(width=200).print(table)
    notes = scenario_notes(run)
    if notes:
        print("\nNotes:")
        for note in notes:
            print(f"  - {note}")
    print("\nTargets:")
    for t in targets:
        state = {True: "met", False: "MISSED", None: "-"}[t.met]
        print(f"  [{state:>6}] {t.name}: {fmt_value(t.value, t.unit)} ({t.margin})")


def markdown(run: Run, command: str, machine: dict[str, Any], targets: list[Target]) -> str:
    lines = [
        f"Command: `{command}` (run {machine['when']}, commit {machine.get('git_commit', '?')}).",
        "",
        f"Machine: {machine.get('cpu_model', '?')}, {machine['cpus']} CPUs, "
        f"{machine.get('memory_gib', '?')} GiB; Python {machine['python']}; "
        f"PostgreSQL {machine.get('postgres', {}).get('server_version', '-')} "
        f"(synchronous_commit={machine.get('postgres', {}).get('synchronous_commit', '-')}); "
        f"SQLite {machine['sqlite']}; load average (1, 5, 15 min) at the start "
        f"{', '.join(f'{x:.2f}' for x in machine['load_average_at_start'])}, at the end "
        f"{', '.join(f'{x:.2f}' for x in machine.get('load_average_at_end', ()))}.",
        "",
        "| " + " | ".join(HEADERS) + " |",
        "|" + "---|" * len(HEADERS),
    ]
    for row in table_rows(run):
        lines.append("| " + " | ".join(cell.replace("|", "/") for cell in row) + " |")
    notes = scenario_notes(run)
    if notes:
        lines += ["", "Notes:", ""] + [f"- {note}" for note in notes]
    lines += ["", "| target | measured | verdict |", "|---|---|---|"]
    for t in targets:
        state = {True: "met", False: "**missed**", None: "-"}[t.met]
        lines.append(f"| {t.name} | {fmt_value(t.value, t.unit)} | {state} ({t.margin}) |")
    return "\n".join(lines) + "\n"


BEGIN, END, NOTES = (
    "<!-- benchmarks:begin -->",
    "<!-- benchmarks:end -->",
    "<!-- benchmarks:notes -->",
)


def update_docs(path: Path, body: str) -> None:
    """Replace the text between the benchmarks markers of ``path`` (appending the section
    when absent). Text after a ``benchmarks:notes`` marker inside it is kept; everything
    outside the markers (other engineers' sections) is never touched."""
    text = path.read_text() if path.exists() else "# Performance\n"
    notes = ""
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        inside, tail = rest.split(END, 1)
        if NOTES in inside:
            notes = NOTES + inside.split(NOTES, 1)[1]
    else:
        head, tail = text.rstrip("\n") + "\n\n", "\n"
    section = f"{BEGIN}\n## Benchmarks (`python -m benchmarks`)\n\n{body}\n{notes}"
    if not section.endswith("\n"):
        section += "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(head + section + END + tail)
