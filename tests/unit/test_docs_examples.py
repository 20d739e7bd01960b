"""The docs and examples stay true to the code they describe."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tasker.definitions import load_template_file
from tasker.definitions.parse import BACKOFF_KEYS, DEFAULTS_KEYS, STEP_KEYS, TOP_LEVEL_KEYS
from tasker.examples import TEMPLATES_DIRECTORY

ROOT = Path(__file__).resolve().parents[2]
BUNDLED = sorted(p.name for p in TEMPLATES_DIRECTORY.glob("*.yaml"))


def test_the_readme_gives_exactly_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Two commands", 1)[1].split("##", 1)[0]
    [block] = re.findall(r"```sh\n(.*?)```", section, flags=re.DOTALL)

    assert block.split("\n")[:-1] == ["make demo", "make test"]
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^demo:", makefile, flags=re.MULTILINE)
    assert re.search(r"^test:", makefile, flags=re.MULTILINE)


def test_three_bundled_example_templates_exist() -> None:
    assert BUNDLED == ["approval.yaml", "ecommerce.yaml", "pipeline.yaml"]


@pytest.mark.parametrize("name", BUNDLED)
def test_the_top_level_example_templates_are_the_bundled_ones(name: str) -> None:
    # examples/*.yaml is what users validate; tasker demo runs the packaged copy.
    top_level = ROOT / "examples" / name
    bundled = TEMPLATES_DIRECTORY / name

    assert top_level.read_text(encoding="utf-8") == bundled.read_text(encoding="utf-8"), (
        f"examples/{name} differs from src/tasker/examples/{name}: copy one over the other"
    )
    [template] = load_template_file(top_level)
    assert template.namespace == "examples"


def test_templates_doc_covers_every_yaml_key() -> None:
    doc = (ROOT / "docs" / "templates.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `([a-z_]+)` \|", doc, flags=re.MULTILINE))

    missing = set(TOP_LEVEL_KEYS + DEFAULTS_KEYS + STEP_KEYS + BACKOFF_KEYS) - documented
    assert not missing, f"docs/templates.md does not document {sorted(missing)}"


def test_operations_doc_has_the_sqlite_limit_section() -> None:
    doc = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    assert "## SQLite limits" in doc
    section = doc.split("## SQLite limits", 1)[1].split("\n## ", 1)[0]
    # the measured table: process counts with their throughput and lock errors
    rows = re.findall(r"^\| (\d+) \| ([\d,]+) \| (\d+) \|$", section, re.MULTILINE)
    assert len(rows) >= 3, section


def test_doc_links_point_at_existing_files() -> None:
    pages = [ROOT / "README.md", *(ROOT / "docs").glob("*.md"), *(ROOT / "examples").rglob("*.md")]
    broken = []
    for page in pages:
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", page.read_text(encoding="utf-8")):
            if not (page.parent / target).exists():
                broken.append(f"{page.relative_to(ROOT)} -> {target}")
    assert not broken, broken
