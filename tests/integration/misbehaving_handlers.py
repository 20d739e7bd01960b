"""Handlers that behave as hostile user code would, for test_misbehaving_handlers.py and
its worker subprocesses (importable as ``misbehaving_handlers:NAME``). Not a test module.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from typing import Any

from tasker.runtime.context import StepContext

RELEASE = threading.Event()  # set by a test to let hung handlers of its process return


class Escape(BaseException):
    """A BaseException subclass of the user's own, like gevent's or trio's."""


def ok(step: StepContext) -> dict[str, Any]:
    return {"step": step.name}


def nan(step: StepContext) -> dict[str, Any]:
    return {"ratio": float("nan")}


def infinity(step: StepContext) -> dict[str, Any]:
    return {"ratio": float("inf")}


def nul(step: StepContext) -> dict[str, Any]:
    return {"text": "a\x00b"}


def surrogate(step: StepContext) -> dict[str, Any]:
    return {"text": "\ud800"}


def deep(step: StepContext) -> dict[str, Any]:
    value: list[Any] = []
    for _ in range(5000):
        value = [value]
    return {"deep": value}


def too_big(step: StepContext) -> dict[str, Any]:
    return {"blob": "x" * 5000}


def not_json(step: StepContext) -> Any:
    return {"when": object()}


def system_exit(step: StepContext) -> None:
    raise SystemExit(0)


def keyboard_interrupt(step: StepContext) -> None:
    raise KeyboardInterrupt


def escape(step: StepContext) -> None:
    raise Escape("out of here")


def stop_iteration(step: StepContext) -> None:
    raise StopIteration("no more")  # an asyncio future refuses to carry this one


def unstorable_error(step: StepContext) -> None:
    raise ValueError("bad \x00 and \ud800 in the message")


class _HostileMessage(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no message for you")


def hostile_message(step: StepContext) -> None:
    raise _HostileMessage


async def async_system_exit(step: StepContext) -> None:
    raise SystemExit(1)


async def async_keyboard_interrupt(step: StepContext) -> None:
    raise KeyboardInterrupt


async def async_escape(step: StepContext) -> None:
    raise Escape("async, out of here")


async def async_cancelled(step: StepContext) -> None:
    raise asyncio.CancelledError


def exits_process(step: StepContext) -> None:
    os._exit(3)


def hang(step: StepContext) -> None:
    """Never returns on its own (until the test sets RELEASE, or the process ends)."""
    RELEASE.wait(600)


def hang_forever(step: StepContext) -> None:
    while True:
        time.sleep(3600)
