"""Flow control declared by a template: concurrency limits and rate limits.

- ``concurrency: {key: FIELD, limit: N}`` on a template: at most N tasks whose context has
  the same value of the top-level field FIELD have claimed steps at once.
- ``concurrency: {limit: N}`` on a step: at most N claims of that step at once, across all
  workers and all versions of the template.
- ``rate_limit: "N/second|minute|hour"`` on a step: at most N claims of it per period, with
  a burst of N/20 (at least 1).

The engine enforces them when it claims (``tasker.engine.flow``); these are the declared
values and the names of the keys they count under.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

PERIODS = {"second": 1.0, "minute": 60.0, "hour": 3600.0}
RATE_PATTERN = re.compile(r"^\s*(\d+)\s*/\s*(second|minute|hour)\s*$")
FIELD_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
MAX_LIMIT = 1_000_000
MAX_KEY_VALUE_CHARS = 200  # longer values are keyed by their hash


@dataclass(frozen=True)
class TaskConcurrency:
    """``concurrency`` of a template: at most ``limit`` tasks per value of context[key]."""

    key: str
    limit: int

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "limit": self.limit}


@dataclass(frozen=True)
class RateLimit:
    """``rate_limit`` of a step: ``count`` claims per ``per`` (second, minute or hour)."""

    count: int
    per: str

    @property
    def period_seconds(self) -> float:
        return PERIODS[self.per]

    @property
    def burst(self) -> int:
        """Claims that may start at once after a quiet spell."""
        return max(1, self.count // 20)

    def __str__(self) -> str:
        return f"{self.count}/{self.per}"


def parse_rate_limit(value: Any) -> RateLimit:
    """``"100/minute"`` as a RateLimit; ValueError saying what is wrong otherwise."""
    match = RATE_PATTERN.match(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(
            f"rate_limit must look like N/second, N/minute or N/hour (e.g. 100/minute), "
            f"got {value!r}"
        )
    count = int(match.group(1))
    if not 1 <= count <= MAX_LIMIT:
        raise ValueError(f"rate_limit: N must be from 1 to {MAX_LIMIT}, got {count}")
    return RateLimit(count, match.group(2))


def check_limit(value: Any, where: str) -> int:
    """``value`` as a concurrency limit (a positive integer); ValueError otherwise."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_LIMIT:
        raise ValueError(f"{where} must be an integer from 1 to {MAX_LIMIT}, got {value!r}")
    return value


def check_key_field(value: Any) -> str:
    """``value`` as the name of a top-level context field; ValueError otherwise."""
    if not isinstance(value, str) or not FIELD_PATTERN.match(value):
        raise ValueError(
            f"concurrency.key must name a top-level context field (letters, digits, '_', '.' "
            f"and '-'), got {value!r}"
        )
    return value


def step_key(namespace: str, template: str, step: str) -> str:
    """The key a step's concurrency slots are counted under (shared by all versions)."""
    return f"step:{namespace}/{template}.{step}"


def rate_key(namespace: str, template: str, step: str) -> str:
    """The key a step's rate-limit tokens are counted under (shared by all versions)."""
    return f"rate:{namespace}/{template}.{step}"


def task_key(namespace: str, template: str, field: str, value: Any) -> str:
    """The key tasks with the same ``context[field]`` share; the value as canonical JSON,
    hashed when long."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    if len(text) > MAX_KEY_VALUE_CHARS:
        text = "sha256:" + hashlib.sha256(text.encode()).hexdigest()
    return f"task:{namespace}/{template}:{field}={text}"


def key_label(key: str) -> str:
    """A key as a person reads it: ``customer_id=42``, ``step payments/charge.call``."""
    kind, _, rest = key.partition(":")
    if kind == "task":
        return rest.partition(":")[2]
    return f"step {rest}"
