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

import contextlib
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from benchmarks.harness import Probe, Run, admin, drop_database, remove_sqlite, server_url
from benchmarks.processes import Process

from soak import checks
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


@contextlib.contextmanager
def soak_database(backend: str, workdir: Path, seed: int, keep: bool) -> Iterator[str]:
    """A fresh, migrated database (``tasker_soak_<seed>_<random>``), dropped afterwards."""
    from tasker.store.database import open_database
    from tasker.store.migrations import upgrade

    name = f"tasker_soak_{seed}_{uuid.uuid4().hex[:6]}"
    if backend == "postgres":
        admin(f'CREATE DATABASE "{name}"')
        url = server_url(name)
    else:
        url = f"sqlite:///{workdir / (name + '.db')}"
    db = open_database(url)
    try:
        upgrade(db)
    finally:
        db.close()
    try:
        yield url
    finally:
        if keep:
            print(f"kept the database: {url}", flush=True)
        elif backend == "postgres":
            drop_database(name)
        else:
            remove_sqlite(workdir / f"{name}.db")


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
        from tasker.store.database import open_database

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


class Housekeeper(threading.Thread):
    """What autovacuum does, for a server that has it switched off (this development
    machine's has: ``SHOW autovacuum`` is ``off``). Without statistics the planner
    hash-joins the whole steps table to fetch parent results (measured: 0.6 s per claim
    at 95,000 steps, throughput down fivefold), which no production server would show.
    Every ``interval`` seconds: ``VACUUM (ANALYZE)`` the tables the workers update,
    ``ANALYZE`` the ones they append to. Reported in the result (``housekeeping``)."""

    TABLES = ("tasks", "steps", "step_edges", "step_transitions", "task_transitions", "events")

    def __init__(self, url: str, interval: float = 30.0):
        super().__init__(name="housekeeper", daemon=True)
        self.url = url
        self.interval = interval
        self.runs = 0
        self.seconds = 0.0
        self.stopping = threading.Event()

    @staticmethod
    def needed(url: str) -> bool:
        if url.startswith("sqlite:"):
            return False
        with psycopg.connect(url, autocommit=True) as conn:
            row = conn.execute("SHOW autovacuum").fetchone()
        return row is not None and row[0] == "off"

    def run(self) -> None:
        while not self.stopping.wait(self.interval):
            began = time.perf_counter()
            try:
                with psycopg.connect(self.url, autocommit=True, connect_timeout=5) as conn:
                    conn.execute("VACUUM (ANALYZE) tasker.tasks, tasker.steps")
                    others = ", ".join(f"tasker.{t}" for t in self.TABLES[2:])
                    conn.execute(f"ANALYZE {others}")
            except psycopg.Error:
                continue  # the server restarting: next time
            self.runs += 1
            self.seconds += time.perf_counter() - began


def task_counts(url: str) -> dict[str, int] | None:
    """Tasks by status, or None while the database cannot be reached."""
    try:
        with Probe(url) as probe:
            rows = probe.rows("SELECT status, count(*) AS n FROM tasker.tasks GROUP BY status")
    except Exception:
        return None
    return {row["status"]: int(row["n"]) for row in rows}


def in_progress_steps(url: str) -> list[dict[str, Any]]:
    for _ in range(30):
        try:
            with Probe(url) as probe:
                return probe.rows(
                    "SELECT id, task_id, claimed_by, lease_expires_at FROM tasker.steps"
                    " WHERE status = 'in_progress'"
                )
        except Exception:
            time.sleep(1)
    raise RuntimeError("cannot read the database")


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
        "workload": workload_figures(plans, facts),
        "chaos": monkey.log,
        "worker_exits": pool.exits_json(),
        "final_stop": [asdict(e) for e in stops],
        "worker_starts": pool.starts,
        "feeder_retries": feeder.retries,
        "human": human_figures(facts.human),
        "rss": rss_figures(rss.samples, elapsed),
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


def workload_figures(plans: list[TaskPlan], facts: Any) -> dict[str, Any]:
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


def rss_figures(samples: list[tuple[float, int, int, int]], elapsed: float) -> dict[str, Any]:
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
