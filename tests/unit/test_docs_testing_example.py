"""The examples in docs/testing.md are real tests: extracted from the page and run."""

from __future__ import annotations

import re
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TESTING_DOC = ROOT / "docs" / "testing.md"
MAX_EXAMPLE_LINES = 30


def python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)


def extract_tested_example(text: str) -> str:
    found = re.findall(
        r"<!-- BEGIN TESTED EXAMPLE: test_greeting.py -->\n```python\n(.*?)```\n"
        r"<!-- END TESTED EXAMPLE: test_greeting.py -->",
        text,
        flags=re.DOTALL,
    )
    assert len(found) == 1, "docs/testing.md must hold exactly one tested example"
    example: str = found[0]
    return example


def runnable_tests(source: str, module_name: str) -> Iterator[tuple[str, types.FunctionType]]:
    """Execute ``source`` as module ``module_name`` and yield its ``test_*`` functions."""
    module = types.ModuleType(module_name)
    sys.modules[module_name] = module  # handler paths name the module
    try:
        exec(compile(source, f"docs/testing.md:{module_name}", "exec"), module.__dict__)
        for name, value in list(vars(module).items()):
            if name.startswith("test_") and isinstance(value, types.FunctionType):
                yield name, value
    finally:
        sys.modules.pop(module_name, None)


def test_the_new_workflow_example_is_short_and_passes() -> None:
    source = extract_tested_example(TESTING_DOC.read_text(encoding="utf-8"))
    assert len(source.strip().splitlines()) < MAX_EXAMPLE_LINES

    ran = []
    for name, test in runnable_tests(source, "docs_test_greeting"):
        test()
        ran.append(name)

    assert ran == ["test_greeting_retries_then_greets"]


def test_every_test_shown_in_the_page_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    # The handler example imports examples/ecommerce/shop.py, as its comment says.
    monkeypatch.syspath_prepend(str(ROOT / "examples" / "ecommerce"))
    blocks = [b for b in python_blocks(TESTING_DOC.read_text(encoding="utf-8")) if "def test_" in b]
    assert len(blocks) >= 3

    ran = []
    for index, block in enumerate(blocks):
        for name, test in runnable_tests(block, f"docs_testing_block_{index}"):
            test()
            ran.append(name)

    assert len(ran) == len(blocks)
