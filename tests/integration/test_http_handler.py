"""tasker.handlers.http against a real HTTP server on 127.0.0.1, run through the engine."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import httpx
import pytest

from tasker import PermanentError, RetryableError, StepContext, TemplateDefinition
from tasker.definitions.parse import parse_template
from tasker.handlers.http import http_request, parse_retry_after
from tasker.testing import TaskRun, assert_attempts, assert_complete, assert_status, run_task

NOW = datetime(2026, 1, 1, tzinfo=UTC)


class _Handler(BaseHTTPRequestHandler):
    """Routes: /ok (echo as JSON), /text, /list, /status/CODE, /flaky/NAME (503 with
    Retry-After: 3 on the first two calls), /busy-date (429 with an HTTP-date), /slow."""

    calls: ClassVar[Counter[str]] = Counter()

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    def do_GET(self) -> None:
        self._route()

    def do_POST(self) -> None:
        self._route()

    def _route(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else None
        path = self.path
        self.calls[path] += 1
        if path == "/ok":
            echo = {
                "method": self.command,
                "body": json.loads(body) if body else None,
                "header": self.headers.get("X-Test"),
            }
            self._send(200, json.dumps(echo), "application/json")
        elif path == "/text":
            self._send(200, "plain words", "text/plain")
        elif path == "/list":
            self._send(200, "[1, 2]", "application/json")
        elif path.startswith("/status/"):
            self._send(int(path.rsplit("/", 1)[1]), "nope", "text/plain")
        elif path.startswith("/flaky/"):
            if self.calls[path] <= 2:
                self._send(503, "maintenance", "text/plain", {"Retry-After": "3"})
            else:
                self._send(200, json.dumps({"served_on_call": self.calls[path]}))
        elif path == "/busy-date":
            when = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
            self._send(429, "slow down", "text/plain", {"Retry-After": when})
        elif path == "/slow":
            time.sleep(1.0)
            self._send(200, "{}")
        else:
            self._send(404, "no such route", "text/plain")

    def _send(
        self,
        status: int,
        text: str,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> None:
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def step(config: dict[str, Any] | None = None) -> StepContext:
    return StepContext(
        task_id=1, step_id=1, name="call", attempt=1, max_attempts=3, context={}, results={},
        config=config or {},
    )  # fmt: skip


def http_template(config: dict[str, Any], max_attempts: int = 3) -> TemplateDefinition:
    return parse_template(
        {
            "namespace": "http_test",
            "name": "call",
            "defaults": {"max_attempts": max_attempts, "backoff": {"jitter": 0.0}},
            "steps": [
                {"name": "call", "handler": "tasker.handlers.http:request", "config": config}
            ],
        },
        check_handlers=True,
    )


def retry_delays(run: TaskRun) -> list[float]:
    def parse(text: str) -> datetime:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))

    return [
        (parse(e["payload"]["next_retry_at"]) - parse(e["created_at"])).total_seconds()
        for e in run.events_named("step.retry_scheduled")
    ]


# -- the helper, called directly ------------------------------------------------------


def test_2xx_returns_the_json_body_with_method_body_and_headers_sent(server: str) -> None:
    results = http_request(
        step(), "POST", f"{server}/ok", json={"order": 7}, headers={"X-Test": "yes"}
    )

    assert results == {"method": "POST", "body": {"order": 7}, "header": "yes"}


def test_2xx_without_a_json_object_is_wrapped(server: str) -> None:
    assert http_request(step(), "GET", f"{server}/text") == {"status": 200, "text": "plain words"}
    assert http_request(step(), "GET", f"{server}/list") == {"status": 200, "json": [1, 2]}


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422])
def test_client_errors_are_permanent(server: str, status: int) -> None:
    with pytest.raises(PermanentError, match=rf"GET .*/status/{status} returned {status}: nope"):
        http_request(step(), "GET", f"{server}/status/{status}")


@pytest.mark.parametrize("status", [500, 502, 504, 408])
def test_server_errors_are_retryable_with_computed_backoff(server: str, status: int) -> None:
    with pytest.raises(RetryableError, match=f"returned {status}") as caught:
        http_request(step(), "GET", f"{server}/status/{status}")
    assert caught.value.retry_after is None


def test_503_with_retry_after_seconds_asks_for_that_delay(server: str) -> None:
    with pytest.raises(RetryableError) as caught:
        http_request(step(), "GET", f"{server}/flaky/direct")
    assert caught.value.retry_after == 3.0


def test_429_with_an_http_date_asks_for_the_time_until_then(server: str) -> None:
    with pytest.raises(RetryableError) as caught:
        http_request(step(), "GET", f"{server}/busy-date")
    assert caught.value.retry_after is not None
    assert 110 <= caught.value.retry_after <= 121


def test_connection_refused_is_retryable() -> None:
    with pytest.raises(RetryableError, match="ConnectError"):
        http_request(step(), "GET", f"http://127.0.0.1:{unused_port()}/")


def test_the_step_timeout_bounds_the_request(server: str) -> None:
    started = time.monotonic()
    with pytest.raises(RetryableError, match="ReadTimeout"):
        http_request(step({"timeout_seconds": 0.2}), "GET", f"{server}/slow")
    assert time.monotonic() - started < 0.9


def test_a_given_client_is_used(server: str) -> None:
    with httpx.Client(base_url=server, headers={"X-Test": "from-client"}) as client:
        assert http_request(step(), "GET", "/ok", client=client)["header"] == "from-client"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ("120", 120.0),
        ("-5", 0.0),
        ("Thu, 01 Jan 2026 00:00:30 GMT", 30.0),
        ("Wed, 31 Dec 2025 23:00:00 GMT", 0.0),
        ("soon", None),
        ("nan", None),
    ],
)
def test_parse_retry_after(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header, NOW) == expected


# -- the ready-made handler, through the engine ---------------------------------------


def test_request_handler_completes_with_the_response(server: str) -> None:
    run = run_task(http_template({"method": "post", "url": f"{server}/ok", "json": {"a": 1}}))

    assert_complete(run)
    assert run.results("call") == {"method": "POST", "body": {"a": 1}, "header": None}


def test_request_handler_retries_503_after_the_requested_delay(server: str) -> None:
    run = run_task(http_template({"url": f"{server}/flaky/engine"}, max_attempts=5))

    assert_complete(run)
    assert_attempts(run, {"call": 3})
    assert run.results("call") == {"served_on_call": 3}
    assert retry_delays(run) == [3.0, 3.0]


def test_request_handler_stops_at_once_on_404(server: str) -> None:
    run = run_task(http_template({"url": f"{server}/status/404"}, max_attempts=5))

    assert_status(run, "error")
    assert_attempts(run, {"call": 1})
    assert run.steps["call"]["error"]["class"] == "PermanentError"


def test_request_handler_retries_network_errors_until_attempts_run_out() -> None:
    run = run_task(http_template({"url": f"http://127.0.0.1:{unused_port()}/"}))

    assert_status(run, "error")
    assert_attempts(run, {"call": 3})
    assert run.steps["call"]["error"]["message"].startswith("GET http://127.0.0.1")


def test_request_handler_without_a_url_fails_permanently() -> None:
    run = run_task(http_template({"method": "GET"}))

    assert_status(run, "error")
    assert_attempts(run, {"call": 1})
    assert "config.url" in run.steps["call"]["error"]["message"]
