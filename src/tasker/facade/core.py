"""The facade's ground floor: the database, the registry, the clock and the settings
it was given, transactions (``write`` retries a lost race), metrics, and templates.
Every aggregate of ``Tasker`` stands on it."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Self, TypeVar

from tasker.clock import Clock, SystemClock
from tasker.config import Settings
from tasker.definitions import ChildWorkflow, TemplateDefinition, TemplateRegistry, parse_template
from tasker.engine import creation
from tasker.exceptions import NotFound, TemplateNotFound, TransientStoreError
from tasker.store import migrations
from tasker.store.database import Connection, Database, Row

if TYPE_CHECKING:
    from tasker.observability.metrics import TaskerMetrics


T = TypeVar("T")


class Core:
    def __init__(
        self,
        database: Database,
        registry: TemplateRegistry | None = None,
        *,
        clock: Clock | None = None,
        settings: Settings | None = None,
        rand: random.Random | None = None,
    ):
        self.database = database
        self.registry = registry or TemplateRegistry()
        self.clock: Clock = clock or SystemClock()
        self.settings = settings or Settings(database_url=database.url)
        self.rand = rand
        # Template definitions this process has stored, with their row ids: creating a
        # task then need not re-register (and lock) the template row every time.
        self._stored_templates: dict[str, tuple[TemplateDefinition, int]] = {}
        self._metrics: TaskerMetrics | None = None
        self._metrics_lock = threading.Lock()

    @property
    def metrics(self) -> TaskerMetrics:
        """This process's Prometheus metrics, made when first touched (once, whichever
        thread asks first): the CLI's read commands, which count nothing, then never import
        prometheus_client."""
        if self._metrics is None:
            from tasker.observability.metrics import TaskerMetrics

            with self._metrics_lock:
                if self._metrics is None:
                    self._metrics = TaskerMetrics()
        return self._metrics

    def migrate(self) -> list[migrations.MigrationStatus]:
        """Apply every pending migration; returns those applied (none: up to date)."""
        return migrations.upgrade(self.database)

    def migration_status(self) -> list[migrations.MigrationStatus]:
        """Every migration, applied or pending."""
        return migrations.migration_status(self.database)

    def close(self) -> None:
        self.database.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def write(self, work: Callable[[Connection], T], *, attempts: int = 5) -> T:
        """Run ``work`` in a write transaction, again if it lost a race (deadlock, busy)."""
        for attempt in range(1, attempts + 1):
            try:
                with self.database.transaction() as conn:
                    return work(conn)
            except TransientStoreError:
                if attempt == attempts:
                    raise
        raise AssertionError("unreachable")

    def read(self, work: Callable[[Connection], T]) -> T:
        with self.database.read() as conn:
            return work(conn)

    def now(self) -> datetime:
        return self.clock.now()

    def template(
        self, name: str, namespace: str = "default", version: str | None = None
    ) -> TemplateDefinition:
        """A template from this process's registry, else one a worker stored."""
        try:
            return self.registry.get(name, namespace, version)
        except TemplateNotFound:
            stored = [
                # Its handlers may live only in the workers' processes: not imported here.
                parse_template(row["definition"], source="database", check_handlers=False)
                for row in self.stored_templates()
                if row["namespace"] == namespace
                and row["name"] == name
                and (version is None or row["version"] == version)
            ]
            if not stored:
                raise
            return max(stored, key=TemplateDefinition.version_tuple)

    def register_templates(self) -> int:
        """Store every registered template's definition (so other processes can see it)."""
        templates = self.registry.all()
        now = self.now()

        def work(conn: Connection) -> int:
            for template in templates:
                creation.register_template(conn, template, now)
            return len(templates)

        return self.write(work)

    def stored_templates(self) -> list[Row]:
        """The template definitions workers registered in the database."""
        return self.read(lambda c: c.fetch_all("list_stored_templates"))

    def stored_template_definitions(self) -> list[TemplateDefinition]:
        """The stored templates, parsed without importing their handlers."""
        return [
            parse_template(row["definition"], source="database", check_handlers=False)
            for row in self.stored_templates()
        ]

    def _child_template(self, ref: ChildWorkflow) -> TemplateDefinition:
        return self.template(ref.name, ref.namespace, ref.version)

    def task_status(self, task_id: int) -> str:
        row = self.read(lambda c: c.fetch_one("get_task", task_id=task_id))
        if row is None:
            raise NotFound(f"task {task_id} does not exist")
        status: str = row["status"]
        return status
