"""HandlerThreads: every job starts at once on a thread of its own when none is idle, idle
threads are reused, and a hung job never holds up the others."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time

from tasker.runtime.handler_threads import HandlerThreads


def test_jobs_that_need_each_other_all_run_at_once() -> None:
    pool = HandlerThreads("test")
    together = threading.Barrier(30, timeout=10)
    futures = [pool.submit(together.wait) for _ in range(30)]
    # Each job waits for all 30 to be running: only 30 threads at once get them through.
    assert sorted(f.result(timeout=15) for f in futures) == list(range(30))
    assert pool.threads == 30
    pool.shutdown()


def test_an_idle_thread_is_reused_rather_than_a_new_one_started() -> None:
    pool = HandlerThreads("test")
    for value in range(20):
        assert pool.submit(lambda v: v * 2, value).result(timeout=5) == value * 2
    # A thread counts itself idle just after it hands its result over, so the next job can
    # come first and start a second thread now and then; never a thread per job.
    assert pool.threads <= 3
    pool.shutdown()


def test_a_hung_job_does_not_hold_up_the_next() -> None:
    pool = HandlerThreads("test")
    release = threading.Event()
    hung = pool.submit(release.wait)
    assert pool.submit(lambda: "ran").result(timeout=5) == "ran"
    assert not hung.done()
    release.set()
    assert hung.result(timeout=5) is True
    pool.shutdown()


def test_what_a_job_raises_is_its_future_s() -> None:
    pool = HandlerThreads("test")

    def boom() -> None:
        raise SystemExit(3)

    future = pool.submit(boom)
    assert isinstance(future.exception(timeout=5), SystemExit)
    assert pool.submit(lambda: 1).result(timeout=5) == 1
    pool.shutdown()


def test_submit_to_hands_every_outcome_to_the_loop_even_a_refused_exception() -> None:
    pool = HandlerThreads("test")

    def stop() -> None:
        raise StopIteration("no more")

    async def main() -> list[object]:
        loop = asyncio.get_running_loop()
        together = threading.Barrier(20, timeout=10)
        futures = [pool.submit_to(loop, together.wait) for _ in range(20)]
        futures.append(pool.submit_to(loop, stop))
        futures.append(pool.submit_to(loop, lambda: 7))
        return await asyncio.wait_for(asyncio.gather(*futures, return_exceptions=True), timeout=15)

    outcomes = asyncio.run(main())
    # Twenty jobs finishing together each reach their own future, in whatever batches
    assert sorted(outcomes[:20]) == list(range(20))  # type: ignore[type-var]
    # A future cannot carry StopIteration: it arrives as a RuntimeError caused by it
    assert isinstance(outcomes[20], RuntimeError)
    assert isinstance(outcomes[20].__cause__, StopIteration)
    assert outcomes[21] == 7
    pool.shutdown()


def test_a_given_up_future_ignores_its_late_result_and_others_still_arrive() -> None:
    pool = HandlerThreads("test")
    release = threading.Event()

    async def main() -> tuple[asyncio.Future[object], object]:
        loop = asyncio.get_running_loop()
        hung = pool.submit_to(loop, release.wait)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(hung, timeout=0.05)  # cancels the future
        assert pool.abandon(hung) and pool.abandoned == 1
        release.set()  # the abandoned job returns into a cancelled future
        later = await asyncio.wait_for(pool.submit_to(loop, lambda: "next"), timeout=5)
        return hung, later

    hung, later = asyncio.run(main())
    assert hung.cancelled() and later == "next"
    deadline = time.monotonic() + 5
    while pool.abandoned and time.monotonic() < deadline:
        time.sleep(0.01)
    assert pool.abandoned == 0  # counted until its handler returned
    pool.shutdown()
