"""Calling HTTP endpoints from a step, with the response mapped onto Tasker's retry rules.

======================================  =============================================
response                                outcome
======================================  =============================================
2xx                                     results: the JSON object (a non-object JSON
                                        body comes as ``{"status", "json"}``, a non-JSON
                                        one as ``{"status", "text"}``)
429, 503                                RetryableError, ``retry_after`` from the
                                        ``Retry-After`` header (seconds or HTTP date)
408, 425, any other 5xx                 RetryableError (computed backoff)
network error, timeout                  RetryableError (computed backoff)
400, 401, 403, 404, 422, any other 4xx  PermanentError: sending it again cannot help
anything else (e.g. an unfollowed 3xx)  PermanentError
======================================  =============================================

The request times out after the step's ``timeout_seconds`` (from the template; a
``config["timeout_seconds"]`` may set a shorter one for the request alone).

A step that calls an endpoint and does nothing else needs no code::

    - name: notify
      handler: tasker.handlers.http:request
      config: {method: POST, url: "https://hooks.example.com/orders", json: {event: paid}}
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from tasker.exceptions import PermanentError, RetryableError
from tasker.runtime.context import StepContext

RETRY_LATER_STATUSES = frozenset({429, 503})  # the server says when: honour Retry-After
RETRYABLE_CLIENT_STATUSES = frozenset({408, 425})  # request timeout, too early
BODY_EXCERPT_CHARS = 200


def http_request(
    step: StepContext,
    method: str,
    url: str,
    *,
    json: Any = None,
    headers: Mapping[str, str] | None = None,
    client: httpx.Client | None = None,
) -> dict[str, Any]:
    """Send one request and return the response body, or raise the error that tells Tasker
    whether to retry (see the module docstring). ``client`` reuses an ``httpx.Client``
    (connection pooling, auth, base URL); by default a new one is opened and closed."""
    timeout = step_timeout_seconds(step)
    kwargs: dict[str, Any] = {"headers": dict(headers) if headers else None}
    if json is not None:
        kwargs["json"] = json
    try:
        if client is None:
            with httpx.Client(timeout=timeout, follow_redirects=True) as own:
                response = own.request(method, url, **kwargs)
        else:
            response = client.request(
                method,
                url,
                timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT,
                **kwargs,
            )
    except httpx.TransportError as exc:  # connect/read errors and timeouts
        raise RetryableError(f"{method} {url}: {type(exc).__name__}: {exc}") from exc
    return response_results(response, now=datetime.now(UTC))


def request(step: StepContext) -> dict[str, Any]:
    """Handler ``tasker.handlers.http:request``: the call described by the step's config,
    ``method`` (default GET), ``url`` (required), ``json`` and ``headers``."""
    config = step.config
    url = config.get("url")
    if not isinstance(url, str) or not url:
        raise PermanentError(f"step {step.name!r}: config.url must be the URL to call")
    method = str(config.get("method", "GET")).upper()
    return http_request(step, method, url, json=config.get("json"), headers=config.get("headers"))


def response_results(response: httpx.Response, *, now: datetime) -> dict[str, Any]:
    """The step results of a response, or the RetryableError/PermanentError it means."""
    status = response.status_code
    if 200 <= status < 300:
        try:
            body = response.json()
        except ValueError:
            return {"status": status, "text": response.text}
        return body if isinstance(body, dict) else {"status": status, "json": body}
    what = f"{response.request.method} {response.request.url} returned {status}"
    excerpt = response.text[:BODY_EXCERPT_CHARS]
    message = f"{what}: {excerpt}" if excerpt else what
    if status in RETRY_LATER_STATUSES:
        retry_after = parse_retry_after(response.headers.get("Retry-After"), now)
        raise RetryableError(message, retry_after=retry_after)
    if status in RETRYABLE_CLIENT_STATUSES or 500 <= status < 600:
        raise RetryableError(message)
    raise PermanentError(message, status=status)


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delay-seconds or an HTTP date
    (relative to ``now``, never negative). None when absent or unreadable."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return max(seconds, 0.0) if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # HTTP dates are GMT by definition
        when = when.replace(tzinfo=UTC)
    return max((when - now).total_seconds(), 0.0)


def step_timeout_seconds(step: StepContext) -> float | None:
    """``config["timeout_seconds"]`` when given, else the step's per-attempt timeout."""
    value = step.config.get("timeout_seconds", step.timeout_seconds)
    return float(value) if value is not None else None
