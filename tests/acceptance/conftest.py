"""Fixtures of the CLI acceptance tests: templates on disk, the CLI on them, and the
library on the same database (for setting up and checking what the CLI did)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_support import Cli, cli_env, open_library, write_templates

from tasker import Tasker


@pytest.fixture
def template_dirs(tmp_path: Path) -> tuple[Path, Path]:
    return write_templates(tmp_path)


@pytest.fixture
def cli(db_url: str, template_dirs: tuple[Path, Path]) -> Cli:
    return Cli(cli_env(db_url, *template_dirs))


@pytest.fixture
def tasker(
    db_url: str, template_dirs: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> Iterator[Tasker]:
    monkeypatch.syspath_prepend(str(template_dirs[1]))
    app = open_library(db_url, template_dirs[0])
    yield app
    app.close()
