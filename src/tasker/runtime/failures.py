"""A failed attempt as stored on its step: ``{"class", "message", "traceback"}``."""

from __future__ import annotations

import inspect
import traceback
from typing import Any

from tasker.exceptions import ValidationError
from tasker.payloads import check_storable, storable_text

TRACEBACK_LIMIT_CHARS = 4000
MESSAGE_LIMIT_CHARS = 2000


def error_info(exc: BaseException) -> dict[str, Any]:
    """Class, message and a trimmed traceback, as stored on the step. Never raises, and
    always storable: an exception's text may hold NULs or lone surrogates, or its
    ``__str__`` may itself raise."""
    try:
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    except BaseException:  # a hostile __str__ or __repr__: keep what is certain
        text = f"{type(exc).__qualname__} (its traceback could not be formatted)"
    if len(text) > TRACEBACK_LIMIT_CHARS:
        text = "…" + text[-TRACEBACK_LIMIT_CHARS:]
    try:
        message = str(exc)
    except BaseException:
        message = f"<{type(exc).__qualname__} whose message could not be read>"
    if len(message) > MESSAGE_LIMIT_CHARS:
        message = message[:MESSAGE_LIMIT_CHARS] + "…"
    return {
        "class": storable_text(type(exc).__name__),
        "message": storable_text(message),
        "traceback": storable_text(text),
    }


def unstorable_result(
    results: Any, published: list[tuple[str, dict[str, Any]]], max_bytes: int
) -> dict[str, Any] | None:
    """The error of a step whose results or published events cannot be stored
    faithfully (``UnstorableResult``, "result is not storable: …"), or None."""
    if inspect.isawaitable(results):
        if inspect.iscoroutine(results):
            results.close()  # never awaited: say so here, not in a warning at collection
        found = [
            f"$: the handler returned an awaitable ({type(results).__name__}); "
            "declare it `async def` so the worker awaits it"
        ]
    else:
        found = _problems(results, max_bytes)
        for name, payload in published:
            found += [f"event {name!r} {p}" for p in _problems(payload, max_bytes)]
    if not found:
        return None
    message = f"result is not storable: {'; '.join(found)}"
    return {"class": "UnstorableResult", "message": storable_text(message), "traceback": None}


def _problems(value: Any, max_bytes: int) -> list[str]:
    try:
        check_storable(value, "result", max_bytes=max_bytes)
    except ValidationError as exc:
        return exc.errors
    except BaseException as exc:  # a hostile container: its iteration or repr raised
        return [f"$: could not be read ({type(exc).__name__})"]
    return []
