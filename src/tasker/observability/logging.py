"""Structured logs: text or JSON lines, with task, step, attempt and worker on each record,
and secrets in logged mappings masked by key pattern."""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

DEFAULT_SECRET_PATTERNS = ("password", "token", "secret", "authorization")
CONTEXT_FIELDS = ("task_id", "step", "attempt", "worker_id")
MASK = "***"


class SecretMasker:
    def __init__(self, patterns: Iterable[str] = DEFAULT_SECRET_PATTERNS):
        self.pattern = re.compile("|".join(re.escape(p) for p in patterns), re.IGNORECASE)

    def mask(self, value: Any) -> Any:
        """A copy of ``value`` with every mapping entry whose key matches replaced."""
        if isinstance(value, Mapping):
            return {
                k: MASK if self.pattern.search(str(k)) else self.mask(v) for k, v in value.items()
            }
        if isinstance(value, list | tuple):
            return [self.mask(v) for v in value]
        return value


class JsonFormatter(logging.Formatter):
    def __init__(self, masker: SecretMasker):
        super().__init__()
        self.masker = masker

    def format(self, record: logging.LogRecord) -> str:
        body: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in (*CONTEXT_FIELDS, "context"):
            if hasattr(record, name):
                body[name] = self.masker.mask(getattr(record, name))
        if record.exc_info:
            body["exception"] = self.formatException(record.exc_info)
        return json.dumps(body, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self, masker: SecretMasker):
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self.masker = masker

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        extras = [
            f"{name}={self.masker.mask(getattr(record, name))}"
            for name in (*CONTEXT_FIELDS, "context")
            if hasattr(record, name)
        ]
        return f"{text} [{' '.join(extras)}]" if extras else text


class _StaticFields(logging.Filter):
    """Adds fields such as the worker id to every record that lacks them."""

    def __init__(self, fields: Mapping[str, Any]):
        super().__init__()
        self.fields = dict(fields)

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in self.fields.items():
            if not hasattr(record, name):
                setattr(record, name, value)
        return True


def configure_logging(
    fmt: str = "text",
    level: int = logging.INFO,
    secret_patterns: Iterable[str] = DEFAULT_SECRET_PATTERNS,
    **static_fields: Any,
) -> None:
    """Send Tasker's logs (and psycopg's warnings) to stderr as text or JSON lines
    (``TASKER_LOG_FORMAT``); ``static_fields`` (e.g. ``worker_id``) go on every record."""
    masker = SecretMasker(secret_patterns)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(masker) if fmt == "json" else TextFormatter(masker))
    if static_fields:
        handler.addFilter(_StaticFields(static_fields))
    for name, logger_level in (("tasker", level), ("psycopg", logging.WARNING)):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(logger_level)
        logger.propagate = False
