"""physical: what the database itself can do here, and Tasker's share of it.

* PostgreSQL: ``pgbench -i`` then ``pgbench -b simple-update -c 2 -j 2 -T 20`` on a
  scratch database. Tasker's transactions per step come from ``pg_stat_database``
  (``xact_commit`` delta over the throughput scenario's PostgreSQL run with 2 processes,
  divided by steps; measured here when that scenario did not run). The implied ceiling
  is ``pgbench_tps / commits_per_step`` steps/s and Tasker's achieved fraction is its
  steps/s over that ceiling. One pgbench transaction (UPDATE, SELECT, INSERT) is lighter
  than one of Tasker's, which batch up to 100 steps, so the ceiling is an upper bound.
* SQLite: the same idea with a one-row UPDATE per ``BEGIN IMMEDIATE`` transaction
  (WAL, ``synchronous=NORMAL`` as Tasker's store sets them), from one Python process.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

from benchmarks.harness import (
    ADMIN_URL,
    Figure,
    Run,
    ScenarioResult,
    clone,
    create_tasks,
    dbname_of,
    scratch_postgres,
    single,
    tasker_database,
    write_template,
)
from benchmarks.processes import (
    burst_run,
)

NAME = "physical"
SUMMARY = "pgbench simple-update TPS vs Tasker transactions/step: the implied ceiling"


def find_pgbench() -> str | None:
    found = shutil.which("pgbench")
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/pgbench"), reverse=True)
    return str(candidates[0]) if candidates else None


def connection_args(url: str) -> list[str]:
    """pgbench's -h/-p/-U for the server of ``url`` (its database name comes last)."""
    from psycopg.conninfo import conninfo_to_dict

    info = conninfo_to_dict(url)
    args = []
    for key, flag in (("host", "-h"), ("port", "-p"), ("user", "-U")):
        if info.get(key):
            args += [flag, str(info[key])]
    return args


def pgbench(binary: str, dbname: str, seconds: int) -> dict[str, Any]:
    base = [binary, *connection_args(ADMIN_URL)]
    subprocess.run(
        [*base, "-i", "-q", "-s", "1", dbname], check=True, capture_output=True, text=True
    )
    done = subprocess.run(
        [*base, "-b", "simple-update", "-c", "2", "-j", "2", "-T", str(seconds), dbname],
        check=True,
        capture_output=True,
        text=True,
    )
    tps = re.search(r"tps = ([\d.]+)", done.stdout)
    latency = re.search(r"latency average = ([\d.]+) ms", done.stdout)
    if not tps:
        raise RuntimeError(f"cannot read pgbench output:\n{done.stdout}\n{done.stderr}")
    return {
        "tps": float(tps.group(1)),
        "latency_average_ms": float(latency.group(1)) if latency else None,
        "output": done.stdout.strip().splitlines()[-6:],
    }


def sqlite_tps(path: Path, seconds: float) -> float:
    conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, n INTEGER)")
    conn.execute("INSERT OR IGNORE INTO t VALUES (1, 0)")
    done, deadline = 0, time.perf_counter() + seconds
    started = time.perf_counter()
    while time.perf_counter() < deadline:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("UPDATE t SET n = n + 1 WHERE id = 1")
        conn.execute("COMMIT")
        done += 1
    elapsed = time.perf_counter() - started
    conn.close()
    return done / elapsed


def tasker_reading(run: Run) -> tuple[dict[str, Any] | None, str]:
    """Tasker's 2-process PostgreSQL throughput sample: from this run, else measured now."""
    earlier = run.results.get("throughput")
    if earlier and earlier.samples.get("cases", {}).get("throughput.postgres.independent.2p"):
        samples = earlier.samples["cases"]["throughput.postgres.independent.2p"]
        best = max(samples, key=lambda s: s["steps_per_second"] or 0)
        return best, "throughput scenario of this run (its faster repeat)"
    tasks = run.pick(2000, 40)
    template = write_template(run, "single", single())
    with tasker_database(run, "postgres", f"{NAME}_seed") as seed:
        create_tasks(run, seed, template, tasks)
        with clone(run, seed, f"{NAME}_run") as url:
            return burst_run(run, url, processes=2), f"measured here ({tasks} tasks, 2 proc)"


def add_cpu_ceiling(result: ScenarioResult, sample: dict[str, Any]) -> None:
    """The bound that binds on a small machine: all cores busy with the worker's and the
    backends' CPU time per step (other processes on the machine get none of it)."""
    worker = sample.get("worker_cpu_ms_per_step")
    backend = sample.get("postgres_cpu_ms_per_step")
    if not worker or backend is None:
        return
    cores = os.cpu_count() or 1
    ceiling = cores * 1000 / (worker + backend)
    result.add(
        Figure(
            NAME,
            "postgres",
            f"CPU ceiling = {cores} cores / (worker + PostgreSQL CPU per step)",
            ceiling,
            "steps/s",
            key="physical.postgres.cpu_ceiling",
            detail=f"worker {worker * 1000:.0f} us + PostgreSQL {backend * 1000:.0f} us per step",
        )
    )
    figure = result.figure("physical.postgres.achieved")
    if figure is not None:
        figure.ratio_to("of CPU ceiling", ceiling)


def run(run: Run) -> ScenarioResult:
    result = ScenarioResult(NAME)
    seconds = run.pick(20, 2)
    result.sizes = {"pgbench": f"-b simple-update -c 2 -j 2 -T {seconds} (scale 1)"}
    if run.uses("postgres"):
        binary = find_pgbench()
        if binary is None:
            result.notes.append("pgbench not found (PATH, /usr/lib/postgresql/*/bin): skipped")
        else:
            with scratch_postgres(f"{NAME}_pgbench") as url:
                bench = pgbench(binary, dbname_of(url), seconds)
            result.samples["pgbench"] = bench
            tps = result.add(
                Figure(
                    NAME,
                    "postgres",
                    "pgbench simple-update, 2 clients",
                    bench["tps"],
                    "tx/s",
                    key="physical.postgres.pgbench_tps",
                    detail=f"latency average {bench['latency_average_ms']} ms",
                )
            )
            sample, source = tasker_reading(run)
            result.samples["tasker"] = {"source": source, "sample": sample}
            if sample and sample.get("commits_per_step"):
                per_step = sample["commits_per_step"]
                ceiling = bench["tps"] / per_step
                result.add(
                    Figure(
                        NAME,
                        "postgres",
                        "Tasker commits per step (2 proc, conc 200, batch 100)",
                        per_step,
                        "tx/step",
                        better="lower",
                        key="physical.postgres.commits_per_step",
                        detail=f"+{sample['rollbacks_per_step']:.3f} read-only tx/step; {source}",
                    )
                )
                result.add(
                    Figure(
                        NAME,
                        "postgres",
                        "implied ceiling = pgbench TPS / commits per step",
                        ceiling,
                        "steps/s",
                        key="physical.postgres.ceiling",
                    )
                )
                fraction = result.add(
                    Figure(
                        NAME,
                        "postgres",
                        "Tasker steps/s achieved, as a fraction of the ceiling",
                        sample["steps_per_second"],
                        "steps/s",
                        key="physical.postgres.achieved",
                    )
                )
                fraction.ratio_to("of ceiling", ceiling)
                fraction.ratio_to("x pgbench TPS", tps.value)
                add_cpu_ceiling(result, sample)
    if run.uses("sqlite"):
        path = run.workdir / "physical_sqlite.db"
        value = sqlite_tps(path, run.pick(3.0, 0.25))
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        result.samples["sqlite_tps"] = value
        figure = result.add(
            Figure(
                NAME,
                "sqlite",
                "one-row UPDATE transactions, 1 process (WAL, synchronous=NORMAL)",
                value,
                "tx/s",
                key="physical.sqlite.tps",
            )
        )
        earlier = run.results.get("throughput")
        tasker = earlier.figure("throughput.sqlite.independent.1p") if earlier else None
        if tasker is not None and tasker.value:
            tasker.ratio_to("x raw SQLite tx/s", value)
            figure.detail = f"Tasker 1 proc = {tasker.value / value:.3f} x this"
    if not result.figures and not result.notes:
        result.skipped = "no backend available"
    return result
