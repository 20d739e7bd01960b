"""Concurrency and rate limits held by real worker processes (issue 14), on both backends.

Handlers append what they do to a ledger file opened with O_APPEND (one write per line,
so lines from many processes never mix): the limits are checked against what actually
ran, not against Tasker's bookkeeping. The test appends a line of its own for each worker
it kills with SIGKILL: a killed handler stopped running then.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tasker import Settings, Tasker, TaskRequest

pytestmark = pytest.mark.slow

HERE = Path(__file__).parent
STEP_LIMIT = 3

HANDLERS = textwrap.dedent(
    """
    import os, time

    def _write(line):
        fd = os.open(os.environ["FLOW_LEDGER"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        try:
            os.write(fd, (line + "\\n").encode())
        finally:
            os.close(fd)

    def work(step):
        key = step.config["key"].format(**step.context)
        _write(f"S {key} {step.task_id} {step.step_id} {step.attempt} {os.getpid()} {time.time()}")
        time.sleep(step.config.get("sleep_seconds", 0))
        _write(f"E {key} {step.task_id} {step.step_id} {step.attempt} {os.getpid()} {time.time()}")
        return {}
    """
)


def templates() -> list[dict[str, Any]]:
    work = "flow_handlers:work"
    return [
        {
            "name": "limited",
            "steps": [
                {
                    "name": "call",
                    "handler": work,
                    "concurrency": {"limit": STEP_LIMIT},
                    "config": {"key": "limited", "sleep_seconds": 0.3},
                }
            ],
        },
        {
            "name": "keyed",
            "concurrency": {"key": "customer", "limit": 1},
            "steps": [
                {"name": n, "handler": work, "depends_on": d,
                 "config": {"key": "customer={customer}", "sleep_seconds": 0.2}}
                for n, d in (("a", []), ("b", []), ("c", ["a", "b"]))
            ],
        },
        {
            "name": "rated",
            "steps": [
                {"name": "call", "handler": work, "rate_limit": "100/second",
                 "config": {"key": "rated"}}
            ],
        },
    ]  # fmt: skip


@pytest.fixture
def env(db_url: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    (tmp_path / "flow_handlers.py").write_text(HANDLERS)
    folder = tmp_path / "templates"
    folder.mkdir()
    for template in templates():
        (folder / f"{template['name']}.yaml").write_text(yaml.safe_dump(template))
    src = str(Path(__file__).parents[2] / "src")
    yield {
        **os.environ,
        "TASKER_DATABASE_URL": db_url,
        "TASKER_TEMPLATES": str(folder),
        "PYTHONPATH": os.pathsep.join([str(tmp_path), src]),
        "FLOW_LEDGER": str(tmp_path / "ledger.txt"),
    }


def library(env: dict[str, str]) -> Tasker:
    sys.path.insert(0, env["PYTHONPATH"].split(os.pathsep)[0])
    return Tasker.from_settings(Settings.from_env(env))


def start_worker(env: dict[str, str], concurrency: int = 6, lease: float = 2.0) -> Any:
    return subprocess.Popen(
        [sys.executable, str(HERE / "worker_process.py"), str(concurrency), str(lease), "0", "5"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def stop(workers: list[Any]) -> None:
    for worker in workers:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
    for worker in workers:
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


def ledger(env: dict[str, str]) -> list[list[str]]:
    path = Path(env["FLOW_LEDGER"])
    return [line.split() for line in path.read_text().splitlines()] if path.exists() else []


def note_kill(env: dict[str, str], pid: int) -> None:
    fd = os.open(env["FLOW_LEDGER"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, f"K - - - - {pid} {time.time()}\n".encode())
    finally:
        os.close(fd)


def intervals(lines: list[list[str]]) -> list[tuple[str, int, float, float]]:
    """(key, task id, start, end) of every handler run; one whose worker was killed ends
    at the kill."""
    killed = {int(pid): float(at) for kind, *_, pid, at in lines if kind == "K"}
    starts: dict[tuple[int, int], tuple[str, int, int, float]] = {}
    runs = []
    for kind, key, task, step, attempt, pid, at in lines:
        if kind == "S":
            starts[(int(step), int(attempt))] = (key, int(task), int(pid), float(at))
        elif kind == "E":
            key, task_id, _, began = starts.pop((int(step), int(attempt)))
            runs.append((key, task_id, began, float(at)))
    for key, task_id, worker, began in starts.values():  # never ended: its worker was killed
        runs.append((key, task_id, began, killed[worker]))
    return runs


def most_at_once(runs: list[tuple[str, int, float, float]], per_task: bool) -> dict[str, int]:
    """Per key, the most runs (or distinct tasks, ``per_task``) running at one moment."""
    best: dict[str, int] = defaultdict(int)
    for key, _, began, _ in runs:
        live = [r for r in runs if r[0] == key and r[2] <= began < r[3]]
        count = len({r[1] for r in live}) if per_task else len(live)
        best[key] = max(best[key], count)
    return dict(best)


def test_limits_hold_while_workers_kill_each_other(env: dict[str, str]) -> None:
    # Given 30 tasks of a step limited to 3 at once, and 4 tasks for each of 4 customers
    # with one task per customer at a time
    tasker = library(env)
    try:
        ids = [tasker.create_task(TaskRequest("limited"))[0] for _ in range(30)]
        ids += [
            tasker.create_task(TaskRequest("keyed", {"customer": c}))[0]
            for _ in range(4)
            for c in ("ann", "bob", "cy", "dee")
        ]
        # When 4 workers run them and one is killed with SIGKILL every second, mid-step,
        # and replaced
        rng = random.Random(14)
        workers = [start_worker(env) for _ in range(4)]
        try:
            for _ in range(6):
                time.sleep(1.0)
                victim = workers.pop(rng.randrange(len(workers)))
                victim.kill()
                note_kill(env, victim.pid)
                victim.wait()
                workers.append(start_worker(env))
            # Then every task completes: no slot was lost with the killed workers
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                if all(tasker.task_status(t) == "complete" for t in ids):
                    break
                time.sleep(0.3)
        finally:
            stop(workers)
        statuses = {t: tasker.task_status(t) for t in ids}
        assert set(statuses.values()) == {"complete"}, statuses
    finally:
        tasker.close()

    # And the limits held at every moment, by what the handlers did
    runs = intervals(ledger(env))
    step_runs = [r for r in runs if r[0] == "limited"]
    customer_runs = [r for r in runs if r[0].startswith("customer=")]
    assert len({r[1] for r in step_runs}) == 30
    peak = most_at_once(step_runs, per_task=False)["limited"]
    assert 2 <= peak <= STEP_LIMIT  # the limit was reached for, and never passed
    assert set(most_at_once(customer_runs, per_task=True).values()) == {1}


def test_a_rate_of_100_per_second_runs_about_1000_in_10_seconds(env: dict[str, str]) -> None:
    # Given 1,400 tasks of a step limited to 100 runs a second
    tasker = library(env)
    try:
        for _ in range(1400):
            tasker.create_task(TaskRequest("rated"))
        # When two workers run them for a while
        workers = [start_worker(env, concurrency=20, lease=30) for _ in range(2)]
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                starts = sorted(float(line[-1]) for line in ledger(env) if line[0] == "S")
                if starts and starts[-1] - starts[0] > 11:
                    break
                time.sleep(0.5)
        finally:
            stop(workers)
    finally:
        tasker.close()

    # Then the first 10 seconds saw between 900 and 1,100 runs (100/s plus a burst of 5)
    starts = sorted(float(line[-1]) for line in ledger(env) if line[0] == "S")
    assert starts, "nothing ran"
    in_ten_seconds = sum(1 for at in starts if at < starts[0] + 10)
    assert 900 <= in_ten_seconds <= 1100, in_ten_seconds
