"""Settings: one frozen object, read from ``TASKER_*`` environment variables."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from tasker.exceptions import ConfigurationError
from tasker.payloads import DEFAULT_MAX_RESULT_BYTES

DEFAULT_DATABASE_URL = "sqlite:///./tasker.db"


@dataclass(frozen=True)
class Settings:
    """
    database_url: ``sqlite:///path`` or ``postgresql://user@host:port/db``
        (``TASKER_DATABASE_URL``, default ``sqlite:///./tasker.db``).
    templates: directories, files or modules holding templates (``TASKER_TEMPLATES``,
        ``os.pathsep``-separated, default none).
    lease_seconds: how long a claim holds without a heartbeat (``TASKER_LEASE_SECONDS``,
        default 30 s; workers heartbeat every third of it).
    log_format: ``text`` or ``json`` (``TASKER_LOG_FORMAT``, default ``text``).
    auth: whether the REST API demands bearer tokens (``TASKER_AUTH``, ``off``/``on``,
        default off).
    subscribers: event subscribers workers deliver to, ``PATTERN=module:function``
        (``TASKER_SUBSCRIBERS``, comma-separated, default none).
    max_result_bytes: largest step result stored, as JSON; a larger one fails its step
        for good (``TASKER_MAX_RESULT_BYTES``, default 1 MiB = 1,048,576 bytes). Also
        the limit on results given when resolving a step by hand.
    max_task_steps: most steps one task may have, map instances included; a map that
        would go past it fails its step for good (``TASKER_MAX_TASK_STEPS``, default
        100,000 steps).
    pooler: how to reach PostgreSQL through PgBouncer (``TASKER_PGBOUNCER``,
        ``TASKER_LISTEN_URL``, see ``PoolerSettings``); none means the process's own
        environment, as ``from_env`` reads it.
    """

    database_url: str = DEFAULT_DATABASE_URL
    templates: tuple[str, ...] = field(default_factory=tuple)
    lease_seconds: float = 30.0
    log_format: str = "text"
    auth: bool = False
    subscribers: tuple[str, ...] = field(default_factory=tuple)
    max_result_bytes: int = DEFAULT_MAX_RESULT_BYTES
    max_task_steps: int = 100_000
    pooler: PoolerSettings | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        env = os.environ if env is None else env
        values: dict[str, object] = {}
        if url := env.get("TASKER_DATABASE_URL"):
            values["database_url"] = url
        if templates := env.get("TASKER_TEMPLATES"):
            values["templates"] = tuple(p for p in templates.split(os.pathsep) if p)
        if lease := env.get("TASKER_LEASE_SECONDS"):
            try:
                values["lease_seconds"] = float(lease)
            except ValueError:
                raise ConfigurationError(
                    f"TASKER_LEASE_SECONDS must be a number of seconds, got {lease!r}"
                ) from None
        if limit := env.get("TASKER_MAX_RESULT_BYTES"):
            try:
                values["max_result_bytes"] = int(limit)
            except ValueError:
                raise ConfigurationError(
                    f"TASKER_MAX_RESULT_BYTES must be a whole number of bytes, got {limit!r}"
                ) from None
        if steps := env.get("TASKER_MAX_TASK_STEPS"):
            try:
                values["max_task_steps"] = int(steps)
            except ValueError:
                raise ConfigurationError(
                    f"TASKER_MAX_TASK_STEPS must be a whole number of steps, got {steps!r}"
                ) from None
        if fmt := env.get("TASKER_LOG_FORMAT"):
            values["log_format"] = fmt
        if subscribers := env.get("TASKER_SUBSCRIBERS"):
            values["subscribers"] = tuple(s.strip() for s in subscribers.split(",") if s.strip())
        if auth := env.get("TASKER_AUTH"):
            values["auth"] = _parse_switch("TASKER_AUTH", auth)
        # From the same mapping as the URL: settings read from a given environment must
        # not take the pooler mode from the process's own (prepared statements behind a
        # transaction-pooling PgBouncer collide on its shared server sessions).
        values["pooler"] = PoolerSettings.from_env(env)
        values.update({k: v for k, v in overrides.items() if v is not None})
        settings = cls(**values)  # type: ignore[arg-type]
        settings.check()
        return settings

    def check(self) -> None:
        if not 0 < self.lease_seconds < math.inf:  # also refuses nan
            raise ConfigurationError(
                "TASKER_LEASE_SECONDS must be a positive number of seconds, "
                f"got {self.lease_seconds!r}"
            )
        if self.max_result_bytes <= 0:
            raise ConfigurationError(
                f"TASKER_MAX_RESULT_BYTES must be positive, got {self.max_result_bytes}"
            )
        if self.max_task_steps <= 0:
            raise ConfigurationError(
                f"TASKER_MAX_TASK_STEPS must be positive, got {self.max_task_steps}"
            )
        if self.log_format not in ("text", "json"):
            raise ConfigurationError(
                f"TASKER_LOG_FORMAT must be 'text' or 'json', got {self.log_format!r}"
            )


@dataclass(frozen=True)
class PoolerSettings:
    """How to talk to PostgreSQL through a transaction-pooling PgBouncer.

    pgbouncer: the URL reaches PostgreSQL through PgBouncer in transaction (or statement)
        pooling mode (``TASKER_PGBOUNCER``, ``off``/``on``, default off). Then no
        server-side prepared statement is made, and LISTEN is never sent through the
        pooler, which would hand the listening session to another client.
    listen_url: a direct URL (to PostgreSQL itself, not the pooler) for the one
        connection a worker LISTENs on (``TASKER_LISTEN_URL``, default: the database URL,
        or none with ``TASKER_PGBOUNCER=on``, in which case workers poll).
    """

    pgbouncer: bool = False
    listen_url: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> PoolerSettings:
        env = os.environ if env is None else env
        switch = env.get("TASKER_PGBOUNCER", "")
        listen_url = env.get("TASKER_LISTEN_URL") or None
        if listen_url is not None and not listen_url.startswith(("postgresql:", "postgres:")):
            raise ConfigurationError(
                f"TASKER_LISTEN_URL must be a postgresql:// URL, got {listen_url!r}"
            )
        return cls(
            pgbouncer=_parse_switch("TASKER_PGBOUNCER", switch) if switch else False,
            listen_url=listen_url,
        )


def _parse_switch(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("on", "true", "1", "yes"):
        return True
    if lowered in ("off", "false", "0", "no"):
        return False
    raise ConfigurationError(f"{name} must be 'on' or 'off', got {value!r}")
