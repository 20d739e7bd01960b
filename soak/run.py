"""When: one soak run on one backend.

1. Plan the workload from the seed; start the workers (4 on PostgreSQL, 2 on SQLite),
   the human, the chaos monkey and the RSS sampler.
2. Feed: create the tasks at an even rate over the feed window, each with its plan in
   its context and a ``plan`` line in the ledger. The chaos plays during that window
   (kills, SIGTERMs, one PostgreSQL restart halfway).
3. Drain: wait until every task is final and the human is done (or the drain limit).
4. Settle a lease period after the last disruption, check leases while the workers run,
   then SIGTERM every worker, and judge the facts (:mod:`soak.checks`).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.harness import Run
from benchmarks.processes import Process

from soak import checks, report
from soak.database import Housekeeper, in_progress_steps, soak_database, task_counts
from soak.facts import FINAL_TASK_STATES, read_facts
from soak.ledger import LEDGER_ENV, Ledger
from soak.plan import TaskPlan, chaos_schedule
from soak.shapes import NAMESPACE
from soak.workers import (
    SIGTERM_EXIT_BOUND_SECONDS,
    ChaosMonkey,
    RssSampler,
    WorkerOptions,
    WorkerPool,
)


@dataclass(frozen=True)
class Profile:
    """The sizes of a run. Seconds are wall-clock seconds of this run."""

    name: str
    tasks: int
    feed_seconds: float  # tasks are created evenly over this window; the chaos plays in it
    drain_seconds: float  # longest wait after the feed for every task to be final
    chaos_every_seconds: tuple[float, float]  # interval between two signals, drawn in this
    lease_seconds: float
    concurrency: int  # per worker
    batch_size: int
    grace_seconds: float  # the workers' --grace-seconds
    cancel_share: float  # lingering tasks the human cancels (a twentieth of this of the rest)
    recover_share: float  # tasks planned to fail that the human retries, then resolves
    restart_db_at_share: float  # when in the feed window PostgreSQL restarts


FULL = Profile(
    "full",
    tasks=10_000,
    feed_seconds=420.0,
    drain_seconds=300.0,
    chaos_every_seconds=(8.0, 20.0),
    lease_seconds=8.0,
    concurrency=16,
    batch_size=16,
    grace_seconds=5.0,
    cancel_share=0.08,
    recover_share=0.06,
    restart_db_at_share=0.45,
)
SMOKE = Profile(
    "smoke",
    tasks=300,
    feed_seconds=25.0,
    drain_seconds=60.0,
    chaos_every_seconds=(5.0, 9.0),
    lease_seconds=5.0,
    concurrency=16,
    batch_size=16,
    grace_seconds=3.0,
    cancel_share=0.3,
    recover_share=0.4,
    restart_db_at_share=0.4,
)
WORKERS = {"postgres": 4, "sqlite": 2}


class SoakRun(Run):
    """The benchmarks' run settings, with the soak templates and the ledger in the
    workers' (and the human's) environment."""

    ledger_path: Path = Path()

    def env(self, database_url: str, **extra: str) -> dict[str, str]:
        return super().env(
            database_url,
            TASKER_TEMPLATES="soak.shapes",
            **{LEDGER_ENV: str(self.ledger_path)},
            **extra,
        )


class Feeder(threading.Thread):
    """Creates the tasks evenly over the window; a database that is away (restarting) is
    waited for, and the idempotency key makes a retried creation return the same task."""

    def __init__(self, url: str, plans: list[TaskPlan], ledger: Ledger, seed: int, window: float):
        super().__init__(name="feeder", daemon=True)
        self.url = url
        self.plans = plans
        self.ledger = ledger
        self.seed = seed
        self.window = window
        self.created = 0
        self.retries = 0
        self.seconds = 0.0

    def run(self) -> None:
        from tasker import Settings, Tasker, TaskRequest, TemplateRegistry
        from tasker.store import open_database

        tasker = Tasker(
            open_database(self.url),
            TemplateRegistry.from_paths(["soak.shapes"]),
            settings=Settings(database_url=self.url),
        )
        began = time.perf_counter()
        step = self.window / max(1, len(self.plans))
        try:
            for plan in self.plans:
                delay = began + plan.index * step - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                request = TaskRequest(
                    plan.shape,
                    context=plan.context(),
                    namespace=NAMESPACE,
                    idempotency_key=f"soak:{self.seed}:{plan.index}",
                )
                while True:
                    try:
                        task_id, _ = tasker.create_task(request)
                        break
                    except Exception:  # the database restarting: try again shortly
                        self.retries += 1
                        time.sleep(0.5)
                self.ledger.append(
                    {
                        "k": "plan",
                        "i": plan.index,
                        "task": task_id,
                        "shape": plan.shape,
                        "class": plan.label,
                        "steps": plan.steps_json(),
                        "t": round(time.time(), 3),
                    }
                )
                self.created += 1
        finally:
            self.seconds = time.perf_counter() - began
            tasker.close()


def soak_backend(
    backend: str,
    profile: Profile,
    *,
    seed: int,
    plans: list[TaskPlan],
    workdir: Path,
    restart_db: bool,
    keep_db: bool,
    housekeeping: bool = True,
) -> dict[str, Any]:
    """Run the soak on ``backend``; returns the result document (checks included)."""
    workers = WORKERS[backend]
    ledger = Ledger(workdir / f"ledger-{backend}.jsonl")
    run = SoakRun(smoke=profile.name == "smoke", backends=(backend,), out=workdir, workdir=workdir)
    run.ledger_path = ledger.path
    options = WorkerOptions(
        profile.concurrency, profile.batch_size, profile.lease_seconds, profile.grace_seconds
    )
    restart_at = (
        profile.feed_seconds * profile.restart_db_at_share
        if backend == "postgres" and restart_db and restart_unavailable() is None
        else None
    )
    schedule = chaos_schedule(
        seed,
        window_seconds=profile.feed_seconds,
        every_seconds=profile.chaos_every_seconds,
        workers=workers,
        restart_db_at=restart_at,
    )
    began_at = datetime.now(UTC)
    with soak_database(backend, workdir, seed, keep_db) as url:
        started = time.perf_counter()
        pool = WorkerPool(run, url, workers, options, started)
        pool.start()
        human = Process(
            [
                sys.executable,
                "-m",
                "soak.human",
                f"--seed={seed}",
                f"--cancel-share={profile.cancel_share}",
                f"--recover-share={profile.recover_share}",
            ],
            run.env(url),
            ready_marker="human ready",
        )
        monkey = ChaosMonkey(pool, schedule)
        rss = RssSampler(pool)
        feeder = Feeder(url, plans, ledger, seed, profile.feed_seconds)
        housekeeper = Housekeeper(url) if housekeeping and Housekeeper.needed(url) else None
        try:
            human.wait_ready(60)
            for thread in (monkey, rss, feeder, housekeeper):
                if thread is not None:
                    thread.start()
            progress = Progress(url, pool, monkey, feeder, started, len(plans))
            while feeder.is_alive():
                progress.maybe_print()
                feeder.join(1.0)
            ledger.append({"k": "fed", "t": round(time.time(), 3)})
            fed_at = time.perf_counter()
            drained = False
            while time.perf_counter() - fed_at < profile.drain_seconds:
                progress.maybe_print()
                counts = task_counts(url)
                if (
                    counts is not None
                    and sum(counts.values()) == len(plans)
                    and all(status in FINAL_TASK_STATES for status in counts)
                    and human.popen.poll() is not None
                    and len(monkey.log) >= len(schedule)
                ):
                    drained = True
                    break
                time.sleep(1.0)
            drained_seconds = time.perf_counter() - started
            # A lease period after the last kill, every lost step has been reaped.
            settle = (monkey.last_disruption or started) + profile.lease_seconds * 4 / 3 + 2
            time.sleep(max(0.0, settle - time.perf_counter()))
            monkey.stopping.set()
            monkey.join(30)
            live = in_progress_steps(url)
            lease_check = checks.leases_live(
                live, pool.live_pids(), datetime.now(UTC), profile.lease_seconds
            )
            rss.stopping.set()
            stops = pool.stop_all()
            left = in_progress_steps(url)
        finally:
            monkey.stopping.set()
            if housekeeper is not None:
                housekeeper.stopping.set()
            human.terminate(10)
            for process in pool.live():
                process.kill()
        elapsed = time.perf_counter() - started
        facts = read_facts(url, ledger)
    checks_done = checks.judge_facts(facts)
    checks_done += [
        lease_check,
        checks.released_on_stop(left),
        checks.workers_survived(pool.exits),
        checks.sigterm_in_time(pool.exits, profile.grace_seconds, SIGTERM_EXIT_BOUND_SECONDS),
    ]
    return {
        "backend": backend,
        "profile": asdict(profile),
        "seed": seed,
        "workers": workers,
        "began_at": began_at.isoformat(timespec="seconds"),
        "seconds": {
            "total": round(elapsed, 1),
            "feed": round(feeder.seconds, 1),
            "until_drained": round(drained_seconds, 1),
            "drained": drained,
        },
        "passed": all(c.passed is not False for c in checks_done),
        "checks": [asdict(c) for c in checks_done],
        "workload": report.workload_figures(plans, facts),
        "chaos": monkey.log,
        "worker_exits": pool.exits_json(),
        "final_stop": [asdict(e) for e in stops],
        "worker_starts": pool.starts,
        "feeder_retries": feeder.retries,
        "human": report.human_figures(facts.human),
        "rss": report.rss_figures(rss.samples),
        "load_average": {
            "mean": round(sum(rss.load) / len(rss.load), 2) if rss.load else None,
            "max": max(rss.load, default=None),
            "cpus": os.cpu_count(),
        },
        "human_stderr": human.stderr[-10:],
        "db_restart": "played" if restart_at is not None else _no_restart(backend, restart_db),
        "housekeeping": None
        if housekeeper is None
        else {
            "why": "the server runs with autovacuum off: the suite vacuums and analyzes",
            "runs": housekeeper.runs,
            "seconds": round(housekeeper.seconds, 1),
        },
        "worktree_changes": worktree_changes(),
    }


def _no_restart(backend: str, asked: bool) -> str:
    if backend != "postgres":
        return "not applicable (SQLite)"
    if not asked:
        return "switched off (--no-db-restart)"
    return f"skipped: {restart_unavailable()}"


class Progress:
    """A line every 15 seconds: what has been created, finished, signalled."""

    def __init__(
        self,
        url: str,
        pool: WorkerPool,
        monkey: ChaosMonkey,
        feeder: Feeder,
        started: float,
        total: int,
    ):
        self.url, self.pool, self.monkey, self.feeder = url, pool, monkey, feeder
        self.started, self.total = started, total
        self.last = 0.0

    def maybe_print(self) -> None:
        now = time.perf_counter()
        if now - self.last < 15:
            return
        self.last = now
        counts = task_counts(self.url) or {}
        final = sum(n for s, n in counts.items() if s in FINAL_TASK_STATES)
        exits = self.pool.exits_json()
        unexpected = sum(e["cause"] == "unexpected" for e in exits)
        print(
            f"  [{now - self.started:5.0f} s] created {self.feeder.created:,}/{self.total:,}, "
            f"final {final:,}, chaos events {len(self.monkey.log)}, "
            f"worker exits {len(exits)} ({unexpected} unexpected)",
            flush=True,
        )


def restart_unavailable() -> str | None:
    """Why this machine cannot restart PostgreSQL, or None when it can."""
    if not os.path.isdir("/etc/postgresql"):
        return "no local cluster in /etc/postgresql"
    if os.geteuid() != 0:
        return "pg_ctlcluster needs root"
    return None


def worktree_changes() -> list[str]:
    """Uncommitted changes to the package, as ``git status --short`` lines: the run
    measured the working tree, which other engineers may be editing."""
    done = subprocess.run(
        ["git", "status", "--short", "--", "src"],
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.splitlines()


def git_commit() -> str:
    done = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip() or "unknown"
