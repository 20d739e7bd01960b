"""Every shell block in the README and the docs runs as written (issue 17).

Each document's ```sh blocks run in order, as one bash script with ``set -euo
pipefail``, in a fresh directory holding a copy of ``examples/``; files the document
introduces as ``name.ext``: followed by a code block are written there first. The
database is a fresh one per backend (``TASKER_DATABASE_URL``) unless a block exports its
own. A block that must not run says so on the line above its fence:

    <!-- docs-test: skip: why (a server, a long run, an install from the index) -->
    <!-- docs-test: instead: COMMAND -->   (runs COMMAND in its place, e.g. a --burst worker)

Every block starts in that directory, with the settings earlier blocks exported.
A block without a marker runs; a document without any runnable block is listed in
``NOT_RUN`` with the reason, so a new doc cannot be left out silently.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
DOCS += sorted((ROOT / "examples").rglob("README.md"))

MARKER = re.compile(r"<!-- docs-test: (skip|instead): (.+?) -->\n$")
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
FILE_INTRO = re.compile(r"`([\w./-]+\.(?:py|yaml|yml|json))`(?: \([^)]*\))?:\s*$")

# Documents whose every shell block is marked skip, and why (checked: not a blank list).
NOT_RUN = {
    "docs/observability.md": "every block starts a long-running worker or follows events",
    "docs/reliability.md": "its blocks are the soak suite itself (make soak-smoke runs in CI)",
    "docs/scaling.md": "its blocks need other servers or run a test (which the suite runs anyway)",
}


@dataclass(frozen=True)
class Block:
    line: int
    script: str | None  # None: skipped
    reason: str = ""


def blocks_of(text: str) -> tuple[list[Block], dict[str, str]]:
    blocks: list[Block] = []
    files: dict[str, str] = {}
    for match in FENCE.finditer(text):
        language, body = match.group(1), match.group(2)
        before = text[: match.start()]
        line = before.count("\n") + 1
        previous = before.rstrip("\n").rsplit("\n", 1)[-1] + "\n"
        if language == "sh":
            marker = MARKER.search(previous)
            if marker is None:
                blocks.append(Block(line, body))
            elif marker.group(1) == "skip":
                blocks.append(Block(line, None, marker.group(2)))
            else:
                blocks.append(Block(line, marker.group(2) + "\n", "instead"))
        elif (intro := FILE_INTRO.search(previous.rstrip("\n"))) is not None:
            files[intro.group(1)] = body
    return blocks, files


def documents() -> list[Path]:
    return [doc for doc in DOCS if "```sh" in doc.read_text(encoding="utf-8")]


def test_every_document_with_shell_blocks_runs_one_or_says_why_not() -> None:
    for doc in documents():
        name = str(doc.relative_to(ROOT))
        blocks, _ = blocks_of(doc.read_text(encoding="utf-8"))
        runnable = [b for b in blocks if b.script is not None]
        assert all(b.reason for b in blocks if b.script is None), name
        if name in NOT_RUN:
            assert not runnable, f"{name} runs a block now: take it out of NOT_RUN"
        else:
            assert runnable, f"{name}: no block runs; mark why in NOT_RUN"


@pytest.mark.slow
@pytest.mark.parametrize(
    "doc",
    [d for d in documents() if str(d.relative_to(ROOT)) not in NOT_RUN],
    ids=lambda d: str(d.relative_to(ROOT)),
)
def test_the_shell_blocks_run_as_written(doc: Path, tasker_backend: str, tmp_path: Path) -> None:
    # Given a fresh directory with the examples and the files the document writes
    blocks, files = blocks_of(doc.read_text(encoding="utf-8"))
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    for name, body in files.items():
        (tmp_path / name).write_text(body, encoding="utf-8")
    # Each block starts where the reader stands (the top of the fresh directory, as the
    # docs' "from the repository root"); exported settings carry over, as in one shell.
    script = "set -euo pipefail\n" + "".join(
        f'# {doc.name}:{b.line}\ncd "$DOCS_TEST_ROOT"\n{b.script}'
        for b in blocks
        if b.script is not None
    )
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "TASKER_DATABASE_URL": tasker_backend,
        "DOCS_TEST_ROOT": str(tmp_path),
    }
    env.pop("TASKER_TEMPLATES", None)

    # When its shell blocks run in order
    result = subprocess.run(
        ["bash", "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    # Then every command succeeds
    assert result.returncode == 0, (
        f"{doc.name}: exit {result.returncode}\n--- script\n{script}\n"
        f"--- stdout\n{result.stdout[-3000:]}\n--- stderr\n{result.stderr[-3000:]}"
    )
