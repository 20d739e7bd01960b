"""Child processes of a benchmark run: Tasker workers, their CPU, and one measured drain.

Every child is tracked (:data:`LIVE`) so a scenario that fails leaves none running; they
are ended by pid, one by one.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psycopg

from benchmarks.harness import (
    ADMIN_URL,
    REPO_ROOT,
    Probe,
    Run,
    dbname_of,
    seconds_between,
    transaction_counts,
    wait_until_unused,
)

# -- worker processes ------------------------------------------------------------------


LIVE: list[Process] = []  # every child started, so a failed scenario leaves none behind


def kill_leftovers() -> None:
    """SIGKILL the children this run started that are still alive (by pid, one by one)."""
    for process in LIVE:
        process.kill()
    LIVE.clear()


class Process:
    """A child process whose stdout and stderr are drained by threads (no pipe stalls)."""

    def __init__(self, argv: list[str], env: dict[str, str], ready_marker: str | None = None):
        self.argv = argv
        self.started = time.perf_counter()
        self.popen = subprocess.Popen(
            argv,
            env=env,
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # a Ctrl-C of the harness does not hit it twice
        )
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self._ready = threading.Event()
        self._marker = ready_marker
        self._threads = [
            threading.Thread(
                target=self._drain, args=(self.popen.stdout, self.stdout), daemon=True
            ),
            threading.Thread(
                target=self._drain, args=(self.popen.stderr, self.stderr), daemon=True
            ),
        ]
        for thread in self._threads:
            thread.start()
        LIVE.append(self)

    def _drain(self, stream: Any, sink: list[str]) -> None:
        for line in stream:
            sink.append(line.rstrip("\n"))
            if self._marker and self._marker in line:
                self._ready.set()

    @property
    def pid(self) -> int:
        return self.popen.pid

    def wait_ready(self, timeout_seconds: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_seconds
        while not self._ready.wait(0.05):
            if self.popen.poll() is not None:
                raise RuntimeError(f"{self.argv[2:]} exited early:\n{self.tail()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.argv[2:]} not ready after {timeout_seconds}s")

    def wait(self, timeout_seconds: float) -> int:
        try:
            code = self.popen.wait(timeout_seconds)
        except subprocess.TimeoutExpired:
            self.kill()
            raise TimeoutError(
                f"{self.argv[2:]} still running after {timeout_seconds:.0f}s:\n{self.tail()}"
            ) from None
        for thread in self._threads:
            thread.join(5)
        return code

    def kill(self) -> None:
        """SIGKILL this process (only it: never a group or a name)."""
        if self.popen.poll() is None:
            os.kill(self.popen.pid, signal.SIGKILL)
        self.popen.wait(10)

    def terminate(self, timeout_seconds: float = 15.0) -> int:
        if self.popen.poll() is None:
            os.kill(self.popen.pid, signal.SIGTERM)
        try:
            return self.wait(timeout_seconds)
        except TimeoutError:
            return -9

    def tail(self, lines: int = 20) -> str:
        return "\n".join((self.stdout + self.stderr)[-lines:])


def start_worker(
    run: Run,
    url: str,
    *,
    concurrency: int | None = 200,
    batch_size: int | None = 100,
    lease_seconds: float = 30.0,
    burst: bool = True,
    grace_seconds: float = 5.0,
    poll_seconds: float | None = None,
    pool: str = "thread",
) -> Process:
    """A Tasker worker process (``benchmarks/worker.py``)."""
    argv = [
        sys.executable,
        "-m",
        "benchmarks.worker",
        f"--lease-seconds={lease_seconds}",
        f"--grace-seconds={grace_seconds}",
        f"--pool={pool}",
    ]
    if concurrency is not None:  # None: the worker sizes itself, as with no flags
        argv.append(f"--concurrency={concurrency}")
    if batch_size is not None:
        argv.append(f"--batch-size={batch_size}")
    if burst:
        argv.append("--burst")
    if poll_seconds is not None:
        argv.append(f"--poll-seconds={poll_seconds}")
    return Process(argv, run.env(url), ready_marker="ready")


def cpu_seconds(workers: Sequence[Process]) -> float | None:
    """CPU (user + system) the workers reported when they stopped, summed."""
    total = 0.0
    for worker in workers:
        found = [ln for ln in worker.stdout if ln.startswith("cpu_seconds ")]
        if not found:
            return None
        total += float(found[-1].split()[1])
    return total


class BackendCpu:
    """CPU time used by the PostgreSQL backends serving one database, sampled from
    ``/proc/<pid>/stat`` every ``interval`` seconds (the server runs on this machine);
    what a backend uses after its last sample, at most one interval, is missed."""

    def __init__(self, dbname: str, interval: float = 0.05):
        self.dbname = dbname
        self.interval = interval
        self.ticks: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="backend-cpu", daemon=True)

    def __enter__(self) -> BackendCpu:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    @property
    def seconds(self) -> float:
        return sum(self.ticks.values()) / os.sysconf("SC_CLK_TCK")

    def _sample(self) -> None:
        try:
            conn = psycopg.connect(ADMIN_URL, autocommit=True)
        except psycopg.Error:
            return
        with conn:
            while not self._stop.is_set():
                try:
                    pids = [
                        row[0]
                        for row in conn.execute(
                            "SELECT pid FROM pg_stat_activity WHERE datname = %s",
                            [self.dbname],
                        )
                    ]
                except psycopg.Error:
                    return
                for pid in pids:
                    with contextlib.suppress(OSError, ValueError, IndexError):
                        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                        used = int(fields[11]) + int(fields[12])  # utime + stime, in ticks
                        self.ticks[pid] = max(used, self.ticks.get(pid, 0))
                self._stop.wait(self.interval)


def executed_counts(workers: Sequence[Process]) -> list[int | None]:
    counts: list[int | None] = []
    for worker in workers:
        found = [ln for ln in worker.stdout if ln.startswith("executed ")]
        counts.append(int(found[-1].split()[1]) if found else None)
    return counts


def rss_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of a live process, in KiB, and its thread count (``Threads``), from
    Linux /proc."""
    values: dict[str, int] = {}
    with contextlib.suppress(OSError), open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM", "Threads"):
                values[key] = int(rest.split()[0])
    return values


# -- one measured drain ------------------------------------------------------------------


def burst_run(
    run: Run,
    url: str,
    *,
    processes: int,
    concurrency: int | None = 200,
    batch_size: int | None = 100,
    timeout_seconds: float = 300.0,
    task_ids: Sequence[int] | None = None,
    pool: str = "thread",
) -> dict[str, Any]:
    """Start ``processes`` burst workers on a database full of work, wait until they exit,
    and read what happened: steps/s between the first start and the last completion (from
    the database), wall time including process start-up, transactions (PostgreSQL), how
    the work split between processes, and lock errors in their logs. ``task_ids`` limits
    the step window to those tasks (earlier samples' tasks stay in the database)."""
    postgres = not url.startswith("sqlite:")
    dbname = dbname_of(url)
    before: dict[str, int] = {}
    if postgres:
        wait_until_unused(dbname)
        before = transaction_counts(dbname)
    backends = BackendCpu(dbname) if postgres else contextlib.nullcontext()
    started = time.perf_counter()
    with backends:
        workers = [
            start_worker(
                run, url, concurrency=concurrency, batch_size=batch_size, burst=True, pool=pool
            )
            for _ in range(processes)
        ]
        try:
            codes = [w.wait(timeout_seconds) for w in workers]
        finally:
            for worker in workers:
                worker.kill()
        wall = time.perf_counter() - started
        if postgres:
            wait_until_unused(dbname)
    sample: dict[str, Any] = {}
    if postgres:
        wait_until_unused(dbname)
        after = transaction_counts(dbname)
        sample["transactions"] = {k: after[k] - before[k] for k in before}
    with Probe(url) as probe:
        window = probe.step_window(task_ids)
    db_seconds = seconds_between(window["first_started_at"], window["last_completed_at"])
    stderr = [line for w in workers for line in w.stderr]
    completed = int(window["completed"] or 0)
    sample.update(
        steps=int(window["steps"]),
        completed=completed,
        db_seconds=db_seconds,
        wall_seconds=wall,
        steps_per_second=completed / db_seconds if db_seconds else None,
        wall_steps_per_second=completed / wall if wall else None,
        executed_per_process=executed_counts(workers),
        exit_codes=codes,
        locked_messages=sum("locked" in line or "busy" in line for line in stderr),
        failure_logs=sum("failed" in line for line in stderr),
        stderr_tail=stderr[-6:],
    )
    if postgres and completed:
        sample["commits_per_step"] = sample["transactions"]["commit"] / completed
        sample["rollbacks_per_step"] = sample["transactions"]["rollback"] / completed
    worker_cpu = cpu_seconds(workers)
    if completed and worker_cpu is not None:
        # CPU per step, in ms: with 2 cores, 2000 / (worker + postgres) bounds steps/s.
        sample["worker_cpu_ms_per_step"] = worker_cpu * 1000 / completed
        if isinstance(backends, BackendCpu):
            sample["postgres_cpu_ms_per_step"] = backends.seconds * 1000 / completed
    if completed != sample["steps"] or any(codes):
        raise RuntimeError(
            f"{completed} of {sample['steps']} steps completed, exit codes {codes}:\n"
            + "\n".join(stderr[-20:])
        )
    return sample
