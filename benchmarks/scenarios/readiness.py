"""readiness: runs tests/benchmarks/bench_readiness.py (written and owned elsewhere).

That file writes its own ``benchmarks/results/readiness.json``; this scenario only runs
it as a subprocess (``pytest -m benchmark ... -s``) and reports whether it passed, so
nothing here writes readiness.json. With ``--smoke`` it is only collected, which proves
it imports without spending the smoke run's 30 seconds on timings.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time

from benchmarks.harness import REPO_ROOT, Figure, Run, ScenarioResult

NAME = "readiness"
SUMMARY = "SQL readiness functions (tests/benchmarks/bench_readiness.py, run as a subprocess)"

TEST_FILE = REPO_ROOT / "tests" / "benchmarks" / "bench_readiness.py"
RESULTS_FILE = REPO_ROOT / "benchmarks" / "results" / "readiness.json"


_started: dict[int, tuple[subprocess.Popen[str], float, float | None]] = {}


def command(run: Run) -> list[str]:
    argv = [
        sys.executable,
        "-m",
        "pytest",
        "-m",
        "benchmark",
        str(TEST_FILE.relative_to(REPO_ROOT)),
        "-s",
        "-q",
        "-p",
        "no:cacheprovider",
    ]
    return [*argv, "--collect-only"] if run.smoke else argv


def _start(run: Run) -> None:
    before = RESULTS_FILE.stat().st_mtime if RESULTS_FILE.exists() else None
    process = subprocess.Popen(
        command(run),
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    _started[id(run)] = (process, time.perf_counter(), before)


def prestart(run: Run) -> None:
    """Smoke runs collect the file while the other scenarios run (it takes seconds of
    pytest start-up and measures nothing)."""
    if run.smoke and TEST_FILE.exists():
        _start(run)


def run(run: Run) -> ScenarioResult:
    result = ScenarioResult(NAME, write_json=False)
    if not TEST_FILE.exists():
        result.skipped = f"{TEST_FILE.relative_to(REPO_ROOT)} does not exist (yet): skipped"
        return result
    if id(run) not in _started:
        _start(run)
    process, started, before = _started.pop(id(run))
    try:
        out, _ = process.communicate(timeout=run.pick(420, 60))
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise
    seconds = time.perf_counter() - started
    output = out.strip().splitlines()
    result.sizes = {"command": " ".join(["python", *command(run)[1:]]), "collect_only": run.smoke}
    result.samples = {
        "exit_code": process.returncode,
        "seconds": seconds,
        "output_tail": output[-15:],
    }
    if process.returncode != 0:
        raise RuntimeError(
            f"bench_readiness.py exited {process.returncode}:\n" + "\n".join(output[-30:])
        )
    if RESULTS_FILE.exists() and RESULTS_FILE.stat().st_mtime != before:
        result.notes.append(f"results written by the test: {RESULTS_FILE.relative_to(REPO_ROOT)}")
        with contextlib.suppress(ValueError, TypeError, AttributeError):
            result.samples["readiness_json_keys"] = sorted(json.loads(RESULTS_FILE.read_text()))
    result.add(
        Figure(
            NAME,
            "postgres/sqlite",
            "bench_readiness.py " + ("collected" if run.smoke else "ran and passed"),
            seconds,
            "s",
            better="lower",
            key="readiness.subprocess",
            detail=output[-1] if output else "",
        )
    )
    return result
