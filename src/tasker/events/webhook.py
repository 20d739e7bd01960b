"""A subscriber that POSTs each event as JSON to a URL, signed with HMAC-SHA256.

The receiver checks ``X-Tasker-Signature: sha256=<hex>`` against the raw body with
the shared secret. A non-2xx answer or a network error raises, so the event bus
retries it with backoff.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

SIGNATURE_HEADER = "X-Tasker-Signature"


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, signature: str) -> bool:
    return hmac.compare_digest(sign(secret, body), signature)


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
