"""A subscriber that POSTs each event as JSON to a URL, signed with HMAC-SHA256.

Each request carries ``Tasker-Signature: t=<unix seconds>,v1=<hex>``, where the hex is
HMAC-SHA256, keyed with the shared secret, of ``"<t>."`` followed by the raw body. The
timestamp is signed with the body, so a receiver that checks it (:func:`verify`, within
``tolerance_seconds``) refuses a request recorded and replayed later. A receiver may see
several ``v1=`` entries (a secret being rotated); one matching is enough. A non-2xx answer
or a network error raises, so the event bus retries it with backoff, signed anew.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

SIGNATURE_HEADER = "Tasker-Signature"
DEFAULT_TOLERANCE_SECONDS = 300.0


def _digest(secret: str, timestamp: int, body: bytes) -> str:
    signed = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, *, timestamp: int | None = None) -> str:
    """The ``Tasker-Signature`` value for ``body`` sent at ``timestamp`` (unix seconds,
    default now): ``t=<timestamp>,v1=<hex HMAC-SHA256 of "<timestamp>." + body>``."""
    at = int(time.time()) if timestamp is None else timestamp
    return f"t={at},v1={_digest(secret, at, body)}"


def verify(
    secret: str,
    body: bytes,
    signature: str | None,
    *,
    tolerance_seconds: float = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> bool:
    """Whether ``signature`` (the ``Tasker-Signature`` header) signs the raw ``body`` with
    ``secret`` at a time within ``tolerance_seconds`` of ``now`` (unix seconds, default the
    current time), in either direction. False for a missing, malformed, wrong or stale one.
    """
    if not signature:
        return False
    timestamp: int | None = None
    candidates: list[str] = []
    for part in signature.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isascii() and value.isdigit():
            timestamp = int(value)
        elif key == "v1":
            candidates.append(value)
    if timestamp is None or not candidates:
        return False
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_seconds:
        return False
    expected = _digest(secret, timestamp, body).encode()
    # Every candidate is compared (no early exit), each in constant time.
    matches = [hmac.compare_digest(expected, c.encode("utf-8", "replace")) for c in candidates]
    return any(matches)


class WebhookSubscriber:
    def __init__(self, url: str, secret: str, *, timeout_seconds: float = 10.0):
        self.url = url
        self.secret = secret
        self.timeout_seconds = timeout_seconds

    def __call__(self, event: dict[str, Any]) -> None:
        import httpx  # only when sending: it costs every CLI command ~80 ms at import

        body = json.dumps(event, separators=(",", ":")).encode()
        response = httpx.post(
            self.url,
            content=body,
            headers={
                "Content-Type": "application/json",
                SIGNATURE_HEADER: sign(self.secret, body),
                "X-Tasker-Event": event["name"],
            },
            timeout=self.timeout_seconds,
        )
        response.raise_for_status()
