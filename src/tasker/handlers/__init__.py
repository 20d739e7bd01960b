"""Ready-made step handlers and helpers for writing your own.

``tasker.handlers.http:request`` calls an HTTP endpoint configured in the step's
``config``; ``http_request`` is the helper behind it, for handlers that build the call
themselves.
"""

from __future__ import annotations

from tasker.handlers.http import http_request, parse_retry_after, request

__all__ = ["http_request", "parse_retry_after", "request"]
