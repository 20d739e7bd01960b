"""HandlerThreads: every job starts at once on a thread of its own when none is idle, idle
threads are reused, and a hung job never holds up the others."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from concurrent.futures import Future

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


def hold(pool: HandlerThreads) -> tuple[Future[bool], threading.Event]:
    """A job running on the pool's only thread until released."""
    running, release = threading.Event(), threading.Event()

    def job() -> bool:
        running.set()
        return release.wait(10)

    busy = pool.submit(job)
    assert running.wait(5)
    return busy, release


def test_submit_does_not_wait_for_a_new_thread_to_start(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # Given a pool whose one thread is busy, and thread starts that stall until released
    # (a busy process: up to the switch interval each)
    pool = HandlerThreads("test")
    busy, release = hold(pool)
    start = threading.Thread.start
    in_start, finished, gate = threading.Event(), threading.Event(), threading.Event()

    def stalled(thread: threading.Thread) -> None:
        in_start.set()
        gate.wait(10)
        start(thread)
        finished.set()

    monkeypatch.setattr(threading.Thread, "start", stalled)
    # When a job comes that needs a new thread
    future = pool.submit(lambda: "ran")
    # Then submit returned while that thread's start is still stalled (on the starter)
    assert in_start.wait(5)
    assert not finished.is_set()
    gate.set()
    assert future.result(timeout=5) == "ran"
    release.set()
    assert busy.result(timeout=5) is True
    pool.shutdown()


def test_a_thread_that_cannot_start_fails_one_job_and_the_pool_goes_on(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    pool = HandlerThreads("test")
    busy, release = hold(pool)
    start = threading.Thread.start
    refuse = threading.Event()
    refuse.set()

    def out_of_threads(thread: threading.Thread) -> None:
        if refuse.is_set():
            raise RuntimeError("can't start new thread")
        start(thread)

    monkeypatch.setattr(threading.Thread, "start", out_of_threads)
    # When the system cannot start the thread a job needs
    refused = pool.submit(lambda: "never")
    # Then that job fails with the reason, and nothing else does
    error = refused.exception(timeout=5)
    assert isinstance(error, RuntimeError)
    assert "cannot start a thread" in str(error)
    assert not busy.done()
    # And once threads can start again, jobs run, on the freed thread or a new one
    refuse.clear()
    assert pool.submit(lambda: "later").result(timeout=5) == "later"
    release.set()
    assert busy.result(timeout=5) is True
    assert [pool.submit(lambda v: v, n).result(timeout=5) for n in range(5)] == list(range(5))
    pool.shutdown()
