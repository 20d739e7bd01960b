"""The human operator: a process that cancels tasks and recovers failed ones with the CLI.

    python -m soak.human --seed 1 --cancel-share 0.004 --recover-share 0.05

It follows the ledger: for each task the suite creates (a ``plan`` line) it looks up its
:class:`~soak.plan.HumanChoice`. It cancels with ``tasker task cancel``; it watches the
tasks it will recover (through the facade) and, when one fails, runs ``tasker task retry``
the first time and ``tasker step resolve`` on each failed step after that (three rounds
at most). A CLI command takes a second or two to start, so it runs up to four at once.
Every command, with its exit code, goes into the ledger. It exits once the suite has
created every task (the ``fed`` line) and nothing it planned is left, or on SIGTERM. The
database being away (exit code 3) makes it try again a second later.
"""

from __future__ import annotations

import argparse
import heapq
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from soak.ledger import Ledger
from soak.plan import TaskPlan, human_choice
from tasker import Settings, Tasker

CLI = [sys.executable, "-m", "tasker.cli"]
EXIT_UNAVAILABLE = 3
RECOVERY_ROUNDS = 3
POLL_SECONDS = 2.0
TERMINALS = 4  # commands the human runs at once


@dataclass
class Recovery:
    task_id: int
    rounds: int = 0


class Human:
    """Follows the ledger, and acts through ``TERMINALS`` CLI commands at a time, never two
    on one task at once."""

    def __init__(self, seed: int, cancel_share: float, recover_share: float):
        self.seed = seed
        self.cancel_share = cancel_share
        self.recover_share = recover_share
        ledger = Ledger.from_env()
        if ledger is None:
            raise SystemExit("SOAK_LEDGER is not set")
        self.ledger = ledger
        self.offset = 0
        self.fed = False
        self.cancels: list[tuple[float, int]] = []  # (due, task id), a heap
        self.recoveries: dict[int, Recovery] = {}
        self.busy: set[int] = set()  # tasks with a command running
        self.lock = threading.Lock()
        self.terminals = ThreadPoolExecutor(TERMINALS, thread_name_prefix="terminal")
        self.stopping = False
        self.tasker = Tasker.from_settings(Settings.from_env())

    def run(self) -> None:
        last_poll = 0.0
        while not self.stopping:
            self.follow_ledger()
            self.cancel_due()
            if time.monotonic() - last_poll >= POLL_SECONDS:
                self.recover_failed()
                last_poll = time.monotonic()
            with self.lock:
                idle = not self.cancels and not self.recoveries and not self.busy
            if self.fed and idle:
                break
            time.sleep(0.2)
        self.terminals.shutdown(wait=True, cancel_futures=True)

    def follow_ledger(self) -> None:
        lines = self.ledger.read(self.offset)
        self.offset = lines.offset
        for record in lines.records:
            if record["k"] == "fed":
                self.fed = True
            if record["k"] != "plan":
                continue
            plan = TaskPlan.from_json(record["i"], record["shape"], record["steps"])
            choice = human_choice(self.seed, plan, self.cancel_share, self.recover_share)
            with self.lock:
                if choice.cancel_after is not None:
                    due = record["t"] + choice.cancel_after
                    heapq.heappush(self.cancels, (due, record["task"]))
                if choice.recover:
                    self.recoveries[record["task"]] = Recovery(record["task"])

    def cancel_due(self) -> None:
        with self.lock:
            while self.cancels and self.cancels[0][0] <= time.time():
                _due, task_id = heapq.heappop(self.cancels)
                self.busy.add(task_id)
                self.terminals.submit(self.cancel, task_id)

    def cancel(self, task_id: int) -> None:
        code = self.cli("cancel", task_id, None, ["task", "cancel", str(task_id)])
        with self.lock:
            if code == EXIT_UNAVAILABLE:  # the database is restarting: again in a second
                heapq.heappush(self.cancels, (time.time() + 1.0, task_id))
            self.busy.discard(task_id)

    def recover_failed(self) -> None:
        with self.lock:
            watched = [r for r in self.recoveries.values() if r.task_id not in self.busy]
        for recovery in watched:
            try:
                # The status alone (one row) is cheap; the steps only once it failed.
                status = self.tasker.task_status(recovery.task_id)
                task = self.tasker.get_task(recovery.task_id) if status == "error" else None
            except Exception:  # the database is restarting: look again next time
                return
            with self.lock:
                if status in ("complete", "cancelled", "resolved_manually") or (
                    status == "error" and recovery.rounds >= RECOVERY_ROUNDS
                ):
                    del self.recoveries[recovery.task_id]
                    continue
                if task is None:
                    continue
                self.busy.add(recovery.task_id)
            failed = [s["name"] for s in task["steps"] if s["status"] == "error"]
            self.terminals.submit(self.recover, recovery, failed)

    def recover(self, recovery: Recovery, failed: list[str]) -> None:
        """Round 0: ``tasker task retry``; later rounds: ``tasker step resolve`` each."""
        task = str(recovery.task_id)
        if recovery.rounds == 0:
            codes = [self.cli("retry_task", recovery.task_id, None, ["task", "retry", task])]
        else:
            codes = [
                self.cli("resolve_step", recovery.task_id, name, ["step", "resolve", task, name])
                for name in failed
            ]
        with self.lock:
            if EXIT_UNAVAILABLE not in codes:
                recovery.rounds += 1
            self.busy.discard(recovery.task_id)

    def cli(self, action: str, task_id: int, step: str | None, argv: list[str]) -> int:
        """Run one CLI command as an operator would; note it and its exit code."""
        done = subprocess.run(
            [*CLI, *argv, "--reason", f"soak: the human's {action.replace('_', ' ')}"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        said = (done.stdout.strip() or done.stderr.strip()).splitlines()
        record: dict[str, Any] = {
            "k": "human",
            "action": action,
            "task": task_id,
            "code": done.returncode,
            "said": said[-1][:200] if said else "",
            "t": round(time.time(), 3),
        }
        if step is not None:
            record["step"] = step
        self.ledger.append(record)
        return done.returncode

    def stop(self, *_: object) -> None:
        self.stopping = True


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m soak.human")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--cancel-share", type=float, required=True)
    parser.add_argument("--recover-share", type=float, required=True)
    args = parser.parse_args(argv)
    human = Human(args.seed, args.cancel_share, args.recover_share)
    signal.signal(signal.SIGTERM, human.stop)
    print("human ready", flush=True)
    try:
        human.run()
    finally:
        human.tasker.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
