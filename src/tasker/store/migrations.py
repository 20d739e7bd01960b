"""Versioned schema migrations, one numbered file per change and dialect.

Both dialects keep aligned numbers: ``0002_x.sql`` exists for SQLite and PostgreSQL.
Each migration runs in one transaction together with its ``schema_migrations`` row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tasker.exceptions import SchemaNotReady
from tasker.store.database import Database
from tasker.store.queries import load_migrations


@dataclass(frozen=True)
class MigrationStatus:
    version: int
    name: str
    applied_at: datetime | None

    @property
    def applied(self) -> bool:
        return self.applied_at is not None


def migration_status(db: Database) -> list[MigrationStatus]:
    """Every known migration with the time it was applied (None when pending)."""
    applied: dict[int, datetime] = {}
    with db.read() as conn:
        exists = conn.fetch_one("migrations_table_exists")
        if exists and exists["present"]:
            applied = {
                row["version"]: row["applied_at"] for row in conn.fetch_all("applied_migrations")
            }
    return [
        MigrationStatus(version, name, applied.get(version))
        for version, name, _ in load_migrations(db.dialect)
    ]


def upgrade(db: Database) -> list[MigrationStatus]:
    """Apply every pending migration in order; returns the ones applied now."""
    done = []
    for status in migration_status(db):
        if status.applied:
            continue
        sql = dict((v, s) for v, _, s in load_migrations(db.dialect))[status.version]
        with db.transaction() as conn:
            # Serialise concurrent upgraders; the second finds the row and skips.
            conn.execute("lock_migrations")
            exists = conn.fetch_one("migrations_table_exists")
            if exists and exists["present"]:
                already = conn.fetch_one("migration_applied", version=status.version)
                if already:
                    continue
            conn.execute_script(sql)
            conn.execute("record_migration", version=status.version, name=status.name)
        done.append(status)
    return done


def ensure_current(db: Database) -> None:
    """Raise SchemaNotReady unless every migration has been applied."""
    pending = [s for s in migration_status(db) if not s.applied]
    if pending:
        names = ", ".join(f"{s.version:04d}_{s.name}" for s in pending)
        raise SchemaNotReady(
            f"database schema is not current (pending: {names}); run `tasker db upgrade`"
        )
