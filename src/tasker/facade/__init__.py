"""``Tasker``: the application object the CLI, the API, workers and tests share.

Dependencies come in through the constructor (database, template registry, clock,
settings); nothing here is global. One class for callers, written in one module per
aggregate, each standing on ``core``:

- ``core``: transactions, the clock, settings, metrics, templates;
- ``tasks``: creating, reading and operating on tasks;
- ``execution``: what workers call (claim, record, leases) and the workers' rows;
- ``schedules``: cron schedules;
- ``inspection``: readiness, health, analytics, history and events;
- ``retention``: pruning.
"""

from __future__ import annotations

from tasker.clock import Clock
from tasker.config import Settings
from tasker.definitions import TemplateRegistry
from tasker.facade.execution import Execution
from tasker.facade.inspection import Inspection
from tasker.facade.retention import Retention
from tasker.facade.schedules import Schedules
from tasker.facade.tasks import Tasks
from tasker.store import migrations, open_database


class Tasker(Tasks, Execution, Schedules, Inspection, Retention):
    """The one door to the engine: every read and write of a Tasker database goes
    through its methods (see the module's docstring for where each lives)."""

    @classmethod
    def from_settings(
        cls, settings: Settings, *, clock: Clock | None = None, check_handlers: bool = True
    ) -> Tasker:
        """A Tasker on the configured database and templates. ``check_handlers=False``
        loads templates without importing their handlers (a worker serves those that
        import, see ``TemplateRegistry.load_handlers``)."""
        registry = TemplateRegistry.from_paths(settings.templates, check_handlers=check_handlers)
        database = open_database(settings.database_url, pooler=settings.pooler)
        return cls(database, registry, clock=clock, settings=settings)

    @classmethod
    def open(
        cls,
        url: str,
        *,
        migrate: bool = False,
        registry: TemplateRegistry | None = None,
        clock: Clock | None = None,
        settings: Settings | None = None,
    ) -> Tasker:
        """A Tasker on the database ``url`` names, its schema brought up to date first
        when ``migrate``. Close it (or use it as a context manager) when done."""
        database = open_database(url, pooler=settings.pooler if settings else None)
        try:
            if migrate:
                migrations.upgrade(database)
        except BaseException:
            database.close()
            raise
        return cls(database, registry, clock=clock, settings=settings or Settings(database_url=url))


__all__ = ["Tasker"]
