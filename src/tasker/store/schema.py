"""The canonical schema of each dialect: ``sql/<dialect>/schema.sql``.

The file is generated, never written by hand: a database migrated from zero is read
back from its own catalog (the ``schema_objects`` query), one statement per object.
It is the place to read the schema (the PostgreSQL readiness functions included)
without replaying the migrations in one's head, and a test fails when it differs
from what the migrations produce. After adding or changing a migration, run::

    python -m tasker.store.schema

It migrates a scratch SQLite file and a scratch PostgreSQL database (created and
dropped through ``--postgres-url``, default ``$TASKER_TEST_POSTGRES_URL`` or the local
server) and rewrites both files; ``--check`` only reports whether they are current.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

from tasker.store import open_database
from tasker.store.database import Database
from tasker.store.migrations import upgrade
from tasker.store.queries import load_migrations, parse_queries

DIALECTS = ("sqlite", "postgres")
REGENERATE = "python -m tasker.store.schema"
DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def schema_path(dialect: str) -> Path:
    """Where the canonical schema of ``dialect`` lives in the source tree."""
    return Path(str(resources.files("tasker.store").joinpath("sql", dialect, "schema.sql")))


def render_schema(db: Database) -> str:
    """The schema of ``db`` as SQL text: a header, then one statement per object."""
    with db.read() as conn:
        conn.fetch_one("catalog_scope")
        rows = conn.fetch_all("schema_objects")
    unsupported = [row["name"] for row in rows if row["kind"] == "unsupported"]
    if unsupported:
        raise ValueError(
            f"schema_objects cannot print {', '.join(unsupported)}: "
            f"extend sql/{db.dialect}/catalog.sql"
        )
    version, name, _ = load_migrations(db.dialect)[-1]
    header = (
        f"-- Tasker's {db.dialect} schema as migrations 0001 to {version:04d}_{name} leave it.\n"
        f"-- Generated from a database migrated from zero; do not edit: run `{REGENERATE}`.\n"
        "-- For reading and checking: `tasker db upgrade` installs the schema (and its rows).\n"
    )
    text = header + "".join(f"\n{row['ddl']}\n" for row in rows)
    if parse_queries(text):
        # The query loader reads every .sql file here; this one must define no query.
        raise ValueError("a schema statement contains a line that reads as a query header")
    return text


@contextmanager
def _scratch_sqlite(admin_url: str) -> Iterator[Database]:
    with tempfile.TemporaryDirectory() as folder:
        db = open_database(f"sqlite:///{folder}/schema.db")
        try:
            yield db
        finally:
            db.close()


@contextmanager
def _scratch_postgres(admin_url: str) -> Iterator[Database]:
    import psycopg  # only this tool creates databases; the store never does

    name = f"tasker_schema_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        db = open_database(f"{admin_url.rpartition('/')[0]}/{name}")
        try:
            yield db
        finally:
            db.close()
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


# An empty scratch database of each dialect, gone afterwards.
SCRATCH = {"sqlite": _scratch_sqlite, "postgres": _scratch_postgres}


def migrated_schema(dialect: str, admin_url: str = DEFAULT_ADMIN_URL) -> str:
    """The schema every migration of ``dialect`` produces, from an empty database."""
    with SCRATCH[dialect](admin_url) as db:
        upgrade(db)
        return render_schema(db)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tasker.store.schema", description=__doc__)
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("TASKER_TEST_POSTGRES_URL", DEFAULT_ADMIN_URL),
        help="a server database to create the scratch database from (default: %(default)s)",
    )
    parser.add_argument("--check", action="store_true", help="only report stale files (exit 1)")
    parser.add_argument("dialects", nargs="*", metavar="DIALECT", help="sqlite, postgres (both)")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.dialects) - set(DIALECTS))
    if unknown:
        parser.error(f"unknown dialect {', '.join(unknown)}: choose from {', '.join(DIALECTS)}")
    stale = []
    for dialect in args.dialects or DIALECTS:
        path = schema_path(dialect)
        text = migrated_schema(dialect, args.postgres_url)
        current = path.read_text(encoding="utf-8") if path.exists() else ""
        if text == current:
            print(f"{path}: current")
        elif args.check:
            stale.append(path)
            print(f"{path}: differs from the migrations; run `{REGENERATE}`")
        else:
            path.write_text(text, encoding="utf-8")
            print(f"{path}: written")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
