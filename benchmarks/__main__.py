"""``python -m benchmarks``: run the benchmark scenarios, write JSON, print the table.

    python -m benchmarks                        # every scenario, both backends
    python -m benchmarks --smoke                # tiny sizes, <= 30 s: does the suite work?
    python -m benchmarks --only throughput dag  # some scenarios
    python -m benchmarks --backend postgres     # one backend
    python -m benchmarks --docs docs/performance.md  # also rewrite our section there

Exit code 0 when every selected scenario ran (or was skipped with a reason), 1 when one
failed, 2 on bad usage. PostgreSQL comes from TASKER_BENCH_POSTGRES_URL (default
postgresql://postgres@127.0.0.1:5432/postgres); without a server the PostgreSQL parts
are skipped, except with CI=true, where that is a failure.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
import time
import traceback
from pathlib import Path

from benchmarks import summary
from benchmarks.harness import (
    ADMIN_URL,
    DROPPER,
    REPO_ROOT,
    Run,
    ScenarioResult,
    server_started_at,
)
from benchmarks.processes import (
    kill_leftovers,
)
from benchmarks.scenarios import SCENARIOS

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Tasker benchmarks. Scenarios: "
        + "; ".join(f"{name}: {module.SUMMARY}" for name, module in SCENARIOS.items()),
    )
    parser.add_argument("--backend", choices=["postgres", "sqlite", "all"], default="all")
    parser.add_argument("--only", nargs="+", metavar="NAME", choices=list(SCENARIOS))
    parser.add_argument(
        "--smoke", action="store_true", help="tiny sizes, about 30 s; judges no timing"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="directory for <scenario>.json and summary.json (default benchmarks/results/; "
        "with --smoke a temporary directory, so a smoke run never overwrites real results)",
    )
    parser.add_argument(
        "--docs",
        type=Path,
        default=None,
        metavar="FILE",
        help="rewrite the benchmarks section (between its markers) of FILE with the table",
    )
    return parser.parse_args(argv)


def run_scenario(run: Run, name: str) -> ScenarioResult:
    """Run one scenario; again, once, when PostgreSQL restarted under it (the integration
    tests of this repository restart the shared cluster), since that failure says nothing
    about Tasker."""
    module = SCENARIOS[name]
    for attempt in (1, 2):
        print(f"== {name}: {module.SUMMARY}", flush=True)
        began = time.perf_counter()
        server = server_started_at() if run.uses("postgres") else None
        try:
            result: ScenarioResult = module.run(run)
        except Exception:
            result = ScenarioResult(name)
            result.notes.append("FAILED:\n" + traceback.format_exc())
            print(traceback.format_exc(), file=sys.stderr, flush=True)
        finally:
            kill_leftovers()
        result.duration_seconds = time.perf_counter() - began
        failed = bool(result.notes) and result.notes[-1].startswith("FAILED")
        state = f"skipped: {result.skipped}" if result.skipped else "failed" if failed else "ok"
        print(f"   {state} ({result.duration_seconds:.1f} s)", flush=True)
        restarted = server is not None and server_started_at() != server
        if not (failed and restarted and attempt == 1):
            return result
        print("   PostgreSQL restarted during the scenario: running it again", flush=True)
    return result


def main(argv: list[str]) -> int:
    args = parse(argv)
    started = time.perf_counter()
    backends = ("postgres", "sqlite") if args.backend == "all" else (args.backend,)
    workdir = Path(tempfile.mkdtemp(prefix="tasker-bench-"))
    out = args.out or (workdir / "results" if args.smoke else REPO_ROOT / "benchmarks" / "results")
    run = Run(smoke=args.smoke, backends=backends, out=out, workdir=workdir)
    if "postgres" in backends and not run.postgres_available():
        message = f"PostgreSQL is not reachable at {ADMIN_URL}"
        if IN_CI:
            print(f"{message} (CI=true: the PostgreSQL benchmarks are required)", file=sys.stderr)
            return 1
        print(f"{message}: SKIPPING the PostgreSQL parts", file=sys.stderr)
    command = ("python -m benchmarks " + shlex.join(argv)).strip()
    if run.uses("postgres"):
        DROPPER.sweep()
        DROPPER.background = run.smoke
    failed: list[str] = []
    selected = [n for n in SCENARIOS if not args.only or n in args.only]
    for name in selected:
        # A scenario may start slow, timing-free preparation early (readiness's collection
        # subprocess in a smoke run) so it overlaps the other scenarios.
        prestart = getattr(SCENARIOS[name], "prestart", None)
        if prestart is not None:
            prestart(run)
    machine = summary.machine_info(run)
    for name in selected:
        result = run_scenario(run, name)
        if result.notes and result.notes[-1].startswith("FAILED"):
            failed.append(name)
        run.results[name] = result
        # Written now and again at the end (with cross-scenario ratios), so an interrupted
        # run keeps what it measured.
        summary.write_json(run, command, machine, [])
    DROPPER.finish()
    summary.add_cross_ratios(run)
    targets = summary.judge(run)
    machine["load_average_at_end"] = os.getloadavg()
    summary.write_json(run, command, machine, targets)
    print()
    summary.print_table(run, targets)
    if args.docs:
        summary.update_docs(args.docs, summary.markdown(run, command, machine, targets))
        print(f"\nupdated the benchmarks section of {args.docs}")
    total = time.perf_counter() - started
    print(f"\nresults: {run.out}  ({total:.1f} s in all)")
    if failed:
        print(f"FAILED scenarios: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
