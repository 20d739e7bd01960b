"""``tasker.client`` without a server (issue 17): the two clients offer the same methods,
every error code of the API maps back to its exception, ``wait``'s pacing, and the
client's imports stay light. tests/acceptance/test_client.py runs it against a server."""

from __future__ import annotations

import inspect
import subprocess
import sys
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

import tasker.client
from tasker.api.errors import _HTTP_CODES, _STATUS
from tasker.client import ApiError, AsyncClient, Client, Forbidden, Task, Unauthorized, WaitTimeout
from tasker.client._calls import pause_before_next_poll
from tasker.client._errors import CODES, error_from_response
from tasker.exceptions import (
    IdempotencyConflict,
    InvalidTransition,
    NotFound,
    SignalConflict,
    TemplateNotFound,
    TransientStoreError,
    ValidationError,
)


def public_methods(cls: type) -> dict[str, Any]:
    return {
        name: member
        for name, member in inspect.getmembers(cls, inspect.isfunction)
        if not name.startswith("_")
    }


def test_the_async_client_has_every_method_of_the_sync_one_with_its_signature() -> None:
    sync, aio = public_methods(Client), public_methods(AsyncClient)
    assert sorted(sync) == sorted(aio)
    for name, method in sync.items():
        mirrored = aio[name]
        assert inspect.iscoroutinefunction(mirrored) or inspect.isasyncgenfunction(mirrored), name
        # the same parameters, defaults and kinds (return types differ by Async… only)
        assert list(inspect.signature(method).parameters.values()) == list(
            inspect.signature(mirrored).parameters.values()
        ), name
    assert inspect.isasyncgenfunction(aio["iter_tasks"])


def test_all_is_sorted() -> None:
    assert tasker.client.__all__ == sorted(tasker.client.__all__)
    assert all(hasattr(tasker.client, name) for name in tasker.client.__all__)


def test_every_error_code_of_the_api_maps_back_to_an_exception() -> None:
    server_codes = {code for _, _, code in _STATUS}
    assert server_codes <= set(CODES), server_codes - set(CODES)


def answer(status: int, code: str, message: str = "boom", details: Any = None) -> httpx.Response:
    body = {"error": {"code": code, "message": message, "details": details}}
    return httpx.Response(status, json=body)


def test_error_bodies_become_the_local_exceptions_with_their_attributes() -> None:
    conflict = error_from_response(
        answer(409, "idempotency_conflict", details={"idempotency_key": "k", "task_id": 5})
    )
    assert isinstance(conflict, IdempotencyConflict) and (conflict.key, conflict.task_id) == (
        "k",
        5,
    )
    signal = error_from_response(
        answer(409, "signal_conflict", details={"task_id": 5, "signal": "approval"})
    )
    assert isinstance(signal, SignalConflict) and signal.name == "approval"
    transition = error_from_response(
        answer(
            409,
            "invalid_transition",
            "task 5 cannot go from 'complete' to 'pending'",
            {"entity": "task 5", "from_state": "complete", "to_state": "pending"},
        )
    )
    assert isinstance(transition, InvalidTransition)
    assert str(transition) == "task 5 cannot go from 'complete' to 'pending'"
    invalid = error_from_response(
        answer(422, "invalid_request", "the request is invalid", ["body.name: Field required"])
    )
    assert isinstance(invalid, ValidationError)
    assert invalid.errors == ["body.name: Field required"]
    assert "Field required" in str(invalid)
    assert isinstance(error_from_response(answer(404, "template_not_found")), TemplateNotFound)
    assert type(error_from_response(answer(404, "not_found"))) is NotFound
    assert isinstance(error_from_response(answer(503, "database_busy")), TransientStoreError)


@pytest.mark.parametrize(
    ("response", "kind", "status", "code"),
    [
        (answer(401, "unauthorized"), Unauthorized, 401, "unauthorized"),
        (answer(403, "forbidden", details={"required_scope": "x"}), Forbidden, 403, "forbidden"),
        (answer(413, "payload_too_large"), ApiError, 413, "payload_too_large"),
        (answer(500, "internal_error"), ApiError, 500, "internal_error"),
        (httpx.Response(502, text="<html>Bad Gateway</html>"), ApiError, 502, "http_502"),
        (httpx.Response(504), ApiError, 504, "http_504"),
    ],
)
def test_what_only_http_has_is_an_api_error(
    response: httpx.Response, kind: type[ApiError], status: int, code: str
) -> None:
    error = error_from_response(response)
    assert type(error) is kind and (error.status, error.code) == (status, code)


def test_the_client_knows_every_plain_http_code_of_the_api() -> None:
    # 401 and 403 have classes; the rest are ApiErrors with the server's code
    for status, code in _HTTP_CODES.items():
        error = error_from_response(answer(status, code))
        assert isinstance(error, ApiError if status not in (404,) else NotFound), code


def a_task(status: str) -> Task:
    return Task(1, "ns", "t", "1", status, {}, datetime(2026, 1, 1, tzinfo=UTC))


@pytest.mark.parametrize(
    ("status", "now", "timeout", "pause"),
    [
        ("complete", 0.0, None, None),  # settled: stop
        ("error", 99.0, 1.0, None),  # settled wins over a passed deadline
        ("cancelled", 0.0, 1.0, None),
        ("resolved_manually", 0.0, 1.0, None),
        ("in_progress", 5.0, None, 0.5),  # no deadline: the poll interval
        ("pending", 0.0, 10.0, 0.5),
        ("pending", 9.8, 10.0, pytest.approx(0.2)),  # cut short at the deadline
    ],
)
def test_wait_polls_until_settled_and_stops_at_the_deadline(
    status: str, now: float, timeout: float | None, pause: float | None
) -> None:
    got = pause_before_next_poll(
        a_task(status), started=0.0, now=now, timeout_seconds=timeout, poll_seconds=0.5
    )
    assert got == pause


def test_wait_raises_wait_timeout_with_the_last_task_past_the_deadline() -> None:
    with pytest.raises(WaitTimeout) as timed_out:
        pause_before_next_poll(
            a_task("pending"), started=0.0, now=10.0, timeout_seconds=10.0, poll_seconds=0.5
        )
    assert timed_out.value.task.status == "pending" and isinstance(timed_out.value, TimeoutError)


def test_the_client_imports_neither_the_api_nor_a_database_driver_nor_the_engine() -> None:
    # A program that only talks to a server pays for httpx and the client alone.
    code = (
        "import sys, tasker.client\n"
        "heavy = ('fastapi', 'starlette', 'uvicorn', 'psycopg', 'sqlite3', 'tasker.facade',"
        " 'tasker.engine', 'tasker.api', 'jsonschema', 'yaml')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy or"
        " any(m.startswith(h) for h in heavy)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]", result.stdout
