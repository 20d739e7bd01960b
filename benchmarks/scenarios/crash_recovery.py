"""crash_recovery: how long a step held by a ``kill -9``-ed worker stays stuck.

Worker A (lease L) claims a step whose handler sleeps 30 s on its first attempt; worker B
(same lease) is started and idle; A is SIGKILLed. Measured from the kill (wall clock) to
the step's second ``-> in_progress`` transition (database), split into kill -> lease
reaped (the ``in_progress -> error`` transition, reason "lease expired") and reaped ->
claimed again. B then completes the second attempt, which must be attempt 2.

Expectation: A heartbeats every L/3, so its lease runs out between 2L/3 and L after the
kill; B's reaper runs every L/3; the retry backoff of the template is 0.05 s (the
default, base 1 s, would add about 2 s after the first failure).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from benchmarks.harness import (
    NAMESPACE,
    SLEEP_ON_FIRST_ATTEMPT,
    Figure,
    Probe,
    Run,
    ScenarioResult,
    median,
    open_tasker,
    seconds_between,
    step,
    tasker_database,
    wait_for,
    write_template,
)
from benchmarks.processes import (
    start_worker,
)

NAME = "crash_recovery"
SUMMARY = "kill -9 of a worker mid-step: time until the step's second attempt starts, vs lease"


def one_crash(run: Run, url: str, template: str, lease: float) -> dict[str, Any]:
    from tasker import TaskRequest

    victim = start_worker(run, url, concurrency=1, batch_size=1, lease_seconds=lease, burst=False)
    rescuer = None
    tasker = open_tasker(run, url)
    probe = Probe(url)
    try:
        victim.wait_ready()
        task_id, _ = tasker.create_task(TaskRequest(template, namespace=NAMESPACE))
        wait_for(
            lambda: (
                probe.one("SELECT status FROM tasker.steps WHERE task_id = %s", [task_id]).get(
                    "status"
                )
                == "in_progress"
            ),
            30,
            "worker A to claim the step",
        )
        rescuer = start_worker(
            run, url, concurrency=1, batch_size=1, lease_seconds=lease, burst=False
        )
        rescuer.wait_ready()
        time.sleep(0.2)
        killed_at = datetime.now(UTC)
        victim.kill()

        def starts() -> list[dict[str, Any]]:
            return probe.rows(
                "SELECT st.to_state, st.reason, st.created_at FROM tasker.step_transitions st"
                " JOIN tasker.steps s ON s.id = st.step_id WHERE s.task_id = %s"
                " ORDER BY st.sort_key",
                [task_id],
            )

        wait_for(
            lambda: sum(r["to_state"] == "in_progress" for r in starts()) >= 2,
            3 * lease + 30,
            "the second attempt to start",
            interval=0.02,
        )
        history = starts()
        wait_for(lambda: probe.task_status(task_id) == "complete", 30, "the task to complete")
        attempts = probe.one("SELECT attempts FROM tasker.steps WHERE task_id = %s", [task_id])
    finally:
        probe.close()
        tasker.close()
        victim.kill()
        if rescuer is not None:
            rescuer.terminate()
    restarted = [r for r in history if r["to_state"] == "in_progress"][1]["created_at"]
    reaped = next((r["created_at"] for r in history if r["to_state"] == "error"), None)
    return {
        "lease_seconds": lease,
        "kill_to_second_start_seconds": seconds_between(killed_at, restarted),
        "kill_to_reaped_seconds": seconds_between(killed_at, reaped),
        "reaped_to_second_start_seconds": seconds_between(reaped, restarted),
        "attempts": attempts.get("attempts"),
        "history": [
            {"to_state": r["to_state"], "reason": r["reason"], "at": r["created_at"].isoformat()}
            for r in history
        ],
    }


def run(run: Run) -> ScenarioResult:
    result = ScenarioResult(NAME)
    leases = run.pick([2.0, 5.0], [1.0])
    repeats = run.pick(2, 1)
    backends = run.scenario_backends()
    if run.smoke:
        backends = backends[:1]  # each crash costs two worker start-ups and a lease
    result.sizes = {"lease_seconds": leases, "repeats": repeats, "step_sleep_seconds": 30}
    if not backends:
        result.skipped = "no backend available"
        return result
    template = write_template(
        run,
        "sleeper",
        [step("sleep", SLEEP_ON_FIRST_ATTEMPT, config={"sleep_seconds": 30})],
        timeout_seconds=120,
        backoff={"base_seconds": 0.025, "max_seconds": 0.05, "jitter": 0.0},
    )
    for backend in backends:
        with tasker_database(run, backend, f"{NAME}_{backend}") as url:
            for lease in leases:
                samples = [one_crash(run, url, template, lease) for _ in range(repeats)]
                for sample in samples:
                    if sample["attempts"] != 2:
                        raise RuntimeError(f"expected 2 attempts, got {sample}")
                result.samples[f"{backend}.lease_{lease:g}s"] = samples
                value = median([s["kill_to_second_start_seconds"] for s in samples])
                reaped = median([s["kill_to_reaped_seconds"] for s in samples])
                figure = result.add(
                    Figure(
                        NAME,
                        backend,
                        f"kill -9 -> second attempt started, lease {lease:g} s",
                        value,
                        "s",
                        better="lower",
                        key=f"crash_recovery.{backend}.lease_{lease:g}",
                        detail=f"kill -> lease reaped {reaped:.2f} s; "
                        f"expected {2 * lease / 3:.1f}-{4 * lease / 3:.1f} s",
                    )
                )
                figure.ratio_to("x lease", lease)
    return result
