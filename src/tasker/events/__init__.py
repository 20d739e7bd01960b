"""Events: the durable log's catalog, subscribers, consumers and webhooks."""

from __future__ import annotations

from tasker.events.bus import EventBus, RetryPolicy, Subscription
from tasker.events.catalog import CATALOG, EventSpec, render_markdown
from tasker.events.consumer import EventConsumer, EventDispatcher
from tasker.events.webhook import WebhookSubscriber, sign, verify

__all__ = [
    "CATALOG",
    "EventBus",
    "EventConsumer",
    "EventDispatcher",
    "EventSpec",
    "RetryPolicy",
    "Subscription",
    "WebhookSubscriber",
    "render_markdown",
    "sign",
    "verify",
]
