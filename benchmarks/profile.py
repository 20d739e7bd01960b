"""Where a Tasker worker spends its time: py-spy over one burst worker draining no-ops.

    python -m benchmarks.profile [--tasks 6000] [--backend postgres] [--out DIR]

Seeds ``--tasks`` single-step no-op tasks, runs one burst worker (concurrency 200, batch
100) under ``py-spy record --idle --threads -f raw``, then prints, per thread group (the
event loop, the database threads, the handler threads), the functions with the most
samples, on-CPU or waiting (``--idle``), by self time and including callees. The raw
profile stays in ``--out`` (default: a temporary directory) for flame-graph tools.
Not part of ``python -m benchmarks``: a profile costs CPU that would skew the figures.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from benchmarks.harness import (
    Run,
    create_tasks,
    single,
    tasker_database,
    write_template,
)

THREAD_GROUPS = (("loop", "MainThread"), ("db", "tasker-db"), ("handlers", "tasker-step"))


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile")
    parser.add_argument("--tasks", type=int, default=6000)
    parser.add_argument("--backend", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--rate", type=int, default=200, help="py-spy samples per second")
    parser.add_argument("--top", type=int, default=18)
    parser.add_argument("--out", type=Path, default=None)
    return parser.parse_args(argv)


def frame_name(frame: str) -> str:
    """``function (path/to/module.py:123)`` -> ``function (module.py)``."""
    match = re.match(r"(.+?) \((?:.*/)?([^/]+?):\d+\)$", frame)
    return f"{match.group(1)} ({match.group(2)})" if match else frame


def summarise(raw: Path, top: int) -> str:
    groups: dict[str, tuple[Counter[str], Counter[str], list[int]]] = {
        name: (Counter(), Counter(), [0]) for name, _ in THREAD_GROUPS
    }
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        thread = frames[0]
        group = next((name for name, marker in THREAD_GROUPS if marker in thread), None)
        if group is None:
            continue
        own, inclusive, total = groups[group]
        names = [frame_name(f) for f in frames[1:]]
        if not names:
            continue
        total[0] += count
        own[names[-1]] += count
        for name in set(names):
            inclusive[name] += count
    lines = []
    for group, (own, inclusive, total) in groups.items():
        if not total[0]:
            continue
        lines.append(f"\n== {group} threads: {total[0]} samples (on-CPU and idle)")
        lines.append("  self:")
        for name, count in own.most_common(top):
            lines.append(f"    {count / total[0]:6.1%}  {name}")
        lines.append("  including callees:")
        for name, count in inclusive.most_common(top):
            lines.append(f"    {count / total[0]:6.1%}  {name}")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    args = parse(argv)
    pyspy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    workdir = Path(tempfile.mkdtemp(prefix="tasker-profile-"))
    out = args.out or workdir
    out.mkdir(parents=True, exist_ok=True)
    run = Run(smoke=False, backends=(args.backend,), out=out, workdir=workdir)
    template = write_template(run, "single", single())
    raw = out / "worker.raw.txt"
    with tasker_database(run, args.backend, "profile") as url:
        _, seconds = create_tasks(run, url, template, args.tasks)
        print(f"seeded {args.tasks} tasks in {seconds:.1f} s", flush=True)
        argv_worker = [
            sys.executable,
            "-m",
            "benchmarks.worker",
            "--concurrency=200",
            "--batch-size=100",
            "--burst",
        ]
        started = time.perf_counter()
        subprocess.run(
            [pyspy, "record", "--idle", "--threads", "-f", "raw", "-r", str(args.rate),
             "-o", str(raw), "--", *argv_worker],
            env=run.env(url),
            check=True,
            capture_output=True,
        )  # fmt: skip
        print(f"worker ran {time.perf_counter() - started:.1f} s under py-spy", flush=True)
    print(summarise(raw, args.top))
    print(f"\nraw profile: {raw}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
