"""A worker process for the multi-process tests (the CLI's `tasker worker` is tested
separately; this keeps these tests about the engine). Not a test module.

Usage: python worker_process.py CONCURRENCY LEASE_SECONDS BURST(0|1) GRACE_SECONDS
Database and templates come from TASKER_DATABASE_URL and TASKER_TEMPLATES.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from tasker import Settings, Tasker
from tasker.runtime.worker import Worker, WorkerOptions


async def main() -> None:
    concurrency, lease, burst, grace = sys.argv[1:5]
    tasker = Tasker.from_settings(Settings.from_env())
    worker = Worker(
        tasker,
        WorkerOptions(
            concurrency=int(concurrency),
            lease_seconds=float(lease),
            burst=burst == "1",
            grace_seconds=float(grace),
            poll_interval_seconds=0.2,
        ),
    )
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, worker.stop)
    print(f"worker {worker.worker_id} ready", flush=True)
    await worker.run()
    print(f"worker {worker.worker_id} executed {worker.executed}", flush=True)
    tasker.close()


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    asyncio.run(main())
