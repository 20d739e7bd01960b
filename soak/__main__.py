"""``python -m soak``: the soak and chaos suite (issue 11).

    python -m soak                              # the full run on PostgreSQL (make soak)
    python -m soak --backend sqlite             # the full run on SQLite (2 workers)
    python -m soak --smoke --backend all        # about 60 s per backend: invariants only
    python -m soak --seed 7 --tasks 2000 --feed-seconds 60 --no-db-restart
    python -m soak --without crash unstorable   # switch misbehaviours off (a control run)

Exit code 0 when every invariant held on every backend (and at least 99.9 % of the
all-retryable tasks completed), 1 when one failed, 2 on bad usage. PostgreSQL comes from
TASKER_BENCH_POSTGRES_URL (default postgresql://postgres@127.0.0.1:5432/postgres, a
superuser: the run creates and drops a database named tasker_soak_<seed>_<random>).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import psycopg
from benchmarks.harness import ADMIN_URL, REPO_ROOT, Run, admin
from benchmarks.processes import kill_leftovers
from benchmarks.summary import machine_info

from soak import report
from soak.plan import DEFAULT_MIX, plan_workload
from soak.run import FULL, SMOKE, git_commit, soak_backend

RESULTS = REPO_ROOT / "soak" / "results"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def postgres_available() -> bool:
    try:
        admin("SELECT 1", wait_seconds=0)
    except psycopg.Error:
        return False
    return True


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m soak", description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=["postgres", "sqlite", "all"], default="postgres")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--smoke", action="store_true", help="about 60 s per backend")
    parser.add_argument("--tasks", type=int, help="tasks to create (full: 10,000)")
    parser.add_argument("--feed-seconds", type=float, help="window the tasks are created in")
    parser.add_argument("--drain-seconds", type=float, help="longest wait after the feed")
    parser.add_argument(
        "--no-db-restart",
        action="store_true",
        help="do not restart PostgreSQL (it disturbs other users of the server)",
    )
    parser.add_argument(
        "--without",
        nargs="+",
        default=[],
        metavar="MISBEHAVIOUR",
        choices=list(DEFAULT_MIX),
        help="switch misbehaviours off: " + ", ".join(DEFAULT_MIX),
    )
    parser.add_argument("--out", type=Path, help="directory for soak-<backend>.json")
    parser.add_argument("--docs", type=Path, help="rewrite this backend's section of FILE")
    parser.add_argument("--keep-db", action="store_true", help="keep the database afterwards")
    parser.add_argument(
        "--no-housekeeping",
        action="store_true",
        help="on a server with autovacuum off, do not vacuum and analyze in its place",
    )
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse(argv)
    profile = SMOKE if args.smoke else FULL
    profile = replace(
        profile,
        tasks=args.tasks or profile.tasks,
        feed_seconds=args.feed_seconds or profile.feed_seconds,
        drain_seconds=args.drain_seconds or profile.drain_seconds,
    )
    backends = ["postgres", "sqlite"] if args.backend == "all" else [args.backend]
    if "postgres" in backends and not postgres_available():
        message = f"PostgreSQL is not reachable at {ADMIN_URL}"
        if IN_CI or args.backend == "postgres":
            print(f"{message}: the PostgreSQL soak cannot run", file=sys.stderr)
            return 1
        print(f"{message}: SKIPPING the PostgreSQL run", file=sys.stderr)
        backends.remove("postgres")
    workdir = Path(tempfile.mkdtemp(prefix="tasker-soak-"))
    out = args.out or (workdir / "results" if args.smoke else RESULTS)
    out.mkdir(parents=True, exist_ok=True)
    command = ("python -m soak " + shlex.join(argv)).strip()
    plans = plan_workload(args.seed, profile.tasks, DEFAULT_MIX, off=args.without)
    machine = machine_info(
        Run(smoke=args.smoke, backends=tuple(backends), out=out, workdir=workdir)
    )
    commit = git_commit()
    failed: list[str] = []
    for backend in backends:
        print(f"== soak on {backend}: {profile.name} profile, seed {args.seed}", flush=True)
        began = time.perf_counter()
        try:
            result = soak_backend(
                backend,
                profile,
                seed=args.seed,
                plans=plans,
                workdir=workdir,
                restart_db=not args.no_db_restart,
                keep_db=args.keep_db,
                housekeeping=not args.no_housekeeping,
            )
        finally:
            kill_leftovers()
        result.update(command=command, commit=commit, machine=machine)
        result["mix"] = {"shares": DEFAULT_MIX, "off": args.without}
        result["seconds"]["with_checks"] = round(time.perf_counter() - began, 1)
        path = out / f"soak-{backend}.json"
        path.write_text(json.dumps(result, indent=1, default=str) + "\n")
        report.print_result(result)
        print(f"  results: {path}  (ledger: {workdir / f'ledger-{backend}.jsonl'})", flush=True)
        if args.docs:
            report.update_docs(args.docs, backend, report.markdown(result, command, commit))
        if not result["passed"]:
            failed.append(backend)
    if failed:
        print(f"\nsoak FAILED on {', '.join(failed)}", file=sys.stderr)
        return 1
    print(f"\nsoak: every invariant held ({', '.join(backends)})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
