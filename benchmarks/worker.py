"""A Tasker worker process for the benchmarks, with every option on the command line.

    python -m benchmarks.worker --concurrency 200 --batch-size 100 [--burst] ...

Database and templates come from TASKER_DATABASE_URL and TASKER_TEMPLATES. Prints
``worker <id> ready`` once started, and ``executed <n>`` and ``cpu_seconds <s>`` (user +
system, all threads, start-up excluded) when it stops (SIGTERM/SIGINT, or by itself with
``--burst`` once no work is left).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import resource
import signal
import sys

from tasker import Settings, Tasker
from tasker.runtime.worker import Worker, WorkerOptions


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.worker")
    # Without them, the worker sizes itself as `tasker worker` does (tasker.runtime.sizing).
    parser.add_argument("--concurrency", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--lease-seconds", type=float, default=30.0)
    parser.add_argument("--grace-seconds", type=float, default=5.0)
    parser.add_argument("--poll-seconds", type=float, default=None)
    parser.add_argument("--burst", action="store_true")
    parser.add_argument("--pool", choices=["thread", "process"], default="thread")
    return parser.parse_args(argv)


async def main(args: argparse.Namespace) -> None:
    tasker = Tasker.from_settings(Settings.from_env())
    worker = Worker(
        tasker,
        WorkerOptions(
            concurrency=args.concurrency,
            batch_size=args.batch_size,
            lease_seconds=args.lease_seconds,
            grace_seconds=args.grace_seconds,
            poll_interval_seconds=args.poll_seconds,
            burst=args.burst,
            pool=args.pool,
        ),
    )
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, worker.stop)
    start_up = cpu_seconds()
    print(f"worker {worker.worker_id} ready", flush=True)
    try:
        await worker.run()
    finally:
        print(f"executed {worker.executed}", flush=True)
        tasker.close()
        print(f"cpu_seconds {cpu_seconds() - start_up:.3f}", flush=True)


def cpu_seconds() -> float:
    """User + system CPU of every thread of this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    asyncio.run(main(parse(sys.argv[1:])))
