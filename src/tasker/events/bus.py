"""Subscribers: plain callables registered for event names or patterns (``step.*``)."""

from __future__ import annotations

import asyncio
import fnmatch
import inspect
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from tasker.definitions.handler_paths import import_handler
from tasker.exceptions import ConfigurationError
from tasker.retry import Backoff, retry_delay_seconds

log = logging.getLogger("tasker.events")

Event = dict[str, Any]
Subscriber = Callable[[Event], Any]


@dataclass(frozen=True)
class Subscription:
    pattern: str
    subscriber: Subscriber

    def matches(self, name: str) -> bool:
        return fnmatch.fnmatchcase(name, self.pattern)

    @property
    def label(self) -> str:
        return f"{getattr(self.subscriber, '__qualname__', self.subscriber)!s} ({self.pattern})"


@dataclass(frozen=True)
class RetryPolicy:
    """How a failing subscriber is retried before the event is given up for it, by the
    steps' own rule (``tasker.retry``), without jitter.

    attempts: calls per event, the first included (default 4).
    base_seconds: the retry rule's base: the first retry waits twice this (default 0.1 s,
        so 0.2, 0.4, 0.8 s).
    max_seconds: cap on one delay (default 5 s).
    """

    attempts: int = 4
    base_seconds: float = 0.1
    max_seconds: float = 5.0

    def delay(self, failed: int) -> float:
        """Seconds before the next call, after ``failed`` failed calls (>= 1)."""
        return retry_delay_seconds(Backoff(self.base_seconds, self.max_seconds, 0.0), failed)


class EventBus:
    """Subscriptions of one process. Delivery is done by an ``EventDispatcher``."""

    def __init__(self, retry: RetryPolicy | None = None) -> None:
        self.subscriptions: list[Subscription] = []
        self.retry = retry or RetryPolicy()

    def subscribe(self, pattern: str, subscriber: Subscriber | None = None) -> Any:
        """Register ``subscriber`` for ``pattern``; without one, works as a decorator."""
        if subscriber is None:

            def register(function: Subscriber) -> Subscriber:
                self.subscriptions.append(Subscription(pattern, function))
                return function

            return register
        self.subscriptions.append(Subscription(pattern, subscriber))
        return subscriber

    def subscribe_paths(self, specs: Iterable[str]) -> None:
        """Register from configuration: ``"pattern=module:callable"`` entries."""
        for spec in specs:
            pattern, sep, path = spec.partition("=")
            if not sep or not pattern.strip() or not path.strip():
                raise ConfigurationError(
                    f"subscriber {spec!r} must look like 'step.*=package.module:function'"
                )
            self.subscribe(pattern.strip(), import_handler(path.strip()))

    def matching(self, name: str) -> list[Subscription]:
        return [s for s in self.subscriptions if s.matches(name)]

    async def deliver(self, event: Event) -> None:
        """Call every matching subscriber; each failure is retried with backoff, then
        logged and given up, without affecting the other subscribers."""
        await asyncio.gather(*(self._deliver_one(s, event) for s in self.matching(event["name"])))

    async def _deliver_one(self, subscription: Subscription, event: Event) -> None:
        for attempt in range(1, self.retry.attempts + 1):
            try:
                if inspect.iscoroutinefunction(subscription.subscriber):
                    await subscription.subscriber(event)
                else:
                    await asyncio.to_thread(subscription.subscriber, event)
                return
            except Exception:
                if attempt == self.retry.attempts:
                    log.exception(
                        "subscriber %s gave up on event %s (%s) after %d attempts",
                        subscription.label,
                        event["id"],
                        event["name"],
                        attempt,
                    )
                    return
                log.warning(
                    "subscriber %s failed on event %s (%s); retrying",
                    subscription.label,
                    event["id"],
                    event["name"],
                    exc_info=True,
                )
                await asyncio.sleep(self.retry.delay(attempt))
