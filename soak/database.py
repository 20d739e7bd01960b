"""The run's database: created fresh and dropped, read while the run goes on, and kept
in shape on a server without autovacuum."""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
from benchmarks.harness import Probe, admin, drop_database, remove_sqlite, server_url


@contextlib.contextmanager
def soak_database(backend: str, workdir: Path, seed: int, keep: bool) -> Iterator[str]:
    """A fresh, migrated database (``tasker_soak_<seed>_<random>``), dropped afterwards."""
    from tasker.store import open_database
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
