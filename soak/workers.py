"""The worker processes, and the chaos done to them: a pool that keeps N workers running,
the chaos monkey that signals them (and restarts PostgreSQL), and an RSS sampler.

Workers are the benchmarks' worker process (``benchmarks.worker``, started by
:func:`benchmarks.processes.start_worker`); every child is ended by its own pid.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from benchmarks.harness import Run
from benchmarks.processes import Process, rss_kib, start_worker

from soak.plan import ChaosEvent

SIGTERM_EXIT_BOUND_SECONDS = 5.0  # a SIGTERM'd worker must be gone by grace + this


@dataclass(frozen=True)
class WorkerOptions:
    concurrency: int
    batch_size: int
    lease_seconds: float
    grace_seconds: float


@dataclass
class WorkerExit:
    """How one worker process ended. ``cause``: ``kill`` (SIGKILL from the chaos),
    ``term`` (SIGTERM from the chaos), ``stop`` (SIGTERM at the end of the run), or
    ``unexpected`` (it exited without being signalled after it was ready: a handler or
    the database took it down), or ``start_failed`` (it exited before it was ready, e.g.
    it could not reach the database while PostgreSQL restarted: the documented exit)."""

    slot: int
    pid: int
    cause: str
    at_seconds: float
    lived_seconds: float
    exit_code: int | None
    exit_seconds: float | None = None  # SIGTERM: signal -> exit
    late: bool = False  # SIGTERM: not gone after grace + bound, so it was killed
    stderr_tail: list[str] = field(default_factory=list)


class WorkerPool:
    """``size`` worker processes in numbered slots; a worker that dies is replaced."""

    def __init__(self, run: Run, url: str, size: int, options: WorkerOptions, started: float):
        self.run = run
        self.url = url
        self.options = options
        self.started = started  # the run's time origin (perf_counter)
        self.slots: list[Process | None] = [None] * size
        self.born: dict[int, float] = {}  # pid -> perf_counter at start
        self.exits: list[WorkerExit] = []
        self.starts = 0
        self._lock = threading.RLock()
        self._signalled: set[int] = set()  # pids the suite signalled

    def start(self) -> None:
        for slot in range(len(self.slots)):
            self._spawn(slot)
        for process in self.live():
            process.wait_ready(60)

    def _spawn(self, slot: int) -> Process:
        process = start_worker(
            self.run,
            self.url,
            concurrency=self.options.concurrency,
            batch_size=self.options.batch_size,
            lease_seconds=self.options.lease_seconds,
            grace_seconds=self.options.grace_seconds,
            burst=False,
        )
        with self._lock:
            self.slots[slot] = process
            self.born[process.pid] = time.perf_counter()
            self.starts += 1
        return process

    def live(self) -> list[Process]:
        with self._lock:
            return [p for p in self.slots if p is not None and p.popen.poll() is None]

    def live_pids(self) -> set[int]:
        return {p.pid for p in self.live()}

    def replace_exited(self) -> None:
        """Record and replace workers that exited without being signalled."""
        with self._lock:
            for slot, process in enumerate(self.slots):
                if process is None or process.popen.poll() is None:
                    continue
                if process.pid in self._signalled:
                    continue
                cause = "unexpected" if was_ready(process) else "start_failed"
                self._record(slot, process, cause, process.popen.returncode)
                self._spawn(slot)

    def kill(self, slot: int) -> WorkerExit | None:
        """SIGKILL the worker in ``slot`` and start a new one there."""
        with self._lock:
            process = self.slots[slot]
            if process is None or process.popen.poll() is not None:
                return None
            self._signalled.add(process.pid)
        process.kill()
        exit_ = self._record(slot, process, "kill", process.popen.returncode)
        self._spawn(slot)
        return exit_

    def terminate(self, slot: int, cause: str = "term", respawn: bool = True) -> WorkerExit | None:
        """SIGTERM the worker in ``slot``; it must exit (code 0) within grace + bound,
        else it is killed and the exit marked late. Then a new one starts there."""
        with self._lock:
            process = self.slots[slot]
            if process is None or process.popen.poll() is not None:
                return None
            self._signalled.add(process.pid)
        sent = time.perf_counter()
        os.kill(process.pid, signal.SIGTERM)
        limit = self.options.grace_seconds + SIGTERM_EXIT_BOUND_SECONDS
        late = False
        try:
            code: int | None = process.popen.wait(limit)
        except subprocess.TimeoutExpired:
            late = True
            process.kill()
            code = process.popen.returncode
        exit_ = self._record(slot, process, cause, code)
        exit_.exit_seconds = round(time.perf_counter() - sent, 3)
        exit_.late = late
        if respawn:
            self._spawn(slot)
        return exit_

    def stop_all(self) -> list[WorkerExit]:
        """SIGTERM every worker at once (the end of the run); wait for each."""
        with self._lock:
            slots = [
                s for s, p in enumerate(self.slots) if p is not None and p.popen.poll() is None
            ]
        threads: list[threading.Thread] = []
        exits: list[WorkerExit] = []
        for slot in slots:

            def stop(slot: int = slot) -> None:
                found = self.terminate(slot, cause="stop", respawn=False)
                if found is not None:
                    exits.append(found)

            thread = threading.Thread(target=stop, name=f"stop-{slot}")
            thread.start()
            threads.append(thread)
        for thread in threads:
            thread.join()
        return exits

    def _record(self, slot: int, process: Process, cause: str, code: int | None) -> WorkerExit:
        now = time.perf_counter()
        process.wait(5)  # it has exited: this collects the last lines of its stderr
        exit_ = WorkerExit(
            slot=slot,
            pid=process.pid,
            cause=cause,
            at_seconds=round(now - self.started, 3),
            lived_seconds=round(now - self.born.get(process.pid, now), 3),
            exit_code=code,
            stderr_tail=process.stderr[-8:] if cause != "kill" else [],
        )
        with self._lock:
            self.exits.append(exit_)
        return exit_

    def exits_json(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(e) for e in self.exits]


def was_ready(process: Process) -> bool:
    """Whether the worker printed ``worker <id> ready`` (its start-up was over)."""
    return any(line.startswith("worker ") and line.endswith(" ready") for line in process.stdout)


class ChaosMonkey(threading.Thread):
    """Plays the chaos schedule against the pool (and the database), and replaces
    workers that died by themselves; ``log`` says what it did, when."""

    def __init__(
        self,
        pool: WorkerPool,
        schedule: list[ChaosEvent],
        *,
        restart_delay_seconds: float = 1.0,
    ):
        super().__init__(name="chaos", daemon=True)
        self.pool = pool
        self.schedule = schedule
        self.restart_delay_seconds = restart_delay_seconds
        self.log: list[dict[str, Any]] = []
        self.last_disruption: float | None = None  # perf_counter of the latest one
        self.stopping = threading.Event()

    def elapsed(self) -> float:
        return time.perf_counter() - self.pool.started

    def run(self) -> None:
        pending = list(self.schedule)
        while not self.stopping.is_set():
            self.pool.replace_exited()
            if pending and self.elapsed() >= pending[0].at_seconds:
                self._play(pending.pop(0))
                continue
            self.stopping.wait(0.2)

    def _play(self, event: ChaosEvent) -> None:
        entry: dict[str, Any] = {"at_seconds": round(self.elapsed(), 3), "action": event.action}
        self.last_disruption = time.perf_counter()
        if event.action == "restart_db":
            entry.update(restart_postgres())
        elif event.slot is not None:
            entry["slot"] = event.slot
            if event.action == "kill":
                found = self.pool.kill(event.slot)
            else:
                found = self.pool.terminate(event.slot)
            if found is not None:
                entry.update(pid=found.pid, exit_code=found.exit_code, late=found.late)
                entry["exit_seconds"] = found.exit_seconds
        self.last_disruption = time.perf_counter()
        self.log.append(entry)


def restart_postgres() -> dict[str, Any]:
    """``pg_ctlcluster … restart -m fast`` (every connection is cut), then wait until it
    answers again; returns how long that took."""
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    began = time.perf_counter()
    done = subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart", "-m", "fast"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    while time.perf_counter() - began < 60:
        if subprocess.run(["pg_isready", "-h", "127.0.0.1", "-q"]).returncode == 0:
            break
        time.sleep(0.2)
    return {
        "returncode": done.returncode,
        "stderr": done.stderr.strip()[-300:],
        "down_seconds": round(time.perf_counter() - began, 3),
    }


class RssSampler(threading.Thread):
    """VmRSS of every live worker every ``interval`` seconds: ``[seconds, slot, pid, KiB]``;
    and the machine's 1-minute load average (the machine is shared: it says how much
    else was running)."""

    def __init__(self, pool: WorkerPool, interval: float = 2.0):
        super().__init__(name="rss", daemon=True)
        self.pool = pool
        self.interval = interval
        self.samples: list[tuple[float, int, int, int]] = []
        self.load: list[float] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(self.interval):
            self.load.append(os.getloadavg()[0])
            with self.pool._lock:
                slots = list(enumerate(self.pool.slots))
            now = round(time.perf_counter() - self.pool.started, 1)
            for slot, process in slots:
                if process is None or process.popen.poll() is not None:
                    continue
                rss = rss_kib(process.pid).get("VmRSS")
                if rss is not None:
                    self.samples.append((now, slot, process.pid, rss))
