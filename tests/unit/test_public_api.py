"""``tasker.__all__`` is the curated public API: sorted, importable, and holding every
name the docs and examples take from the top-level package."""

from __future__ import annotations

import ast
import builtins
import importlib
import re
from pathlib import Path

import tasker

ROOT = Path(__file__).resolve().parents[2]


def _documents() -> list[Path]:
    return [
        ROOT / "README.md",
        *sorted((ROOT / "docs").glob("*.md")),
        *sorted((ROOT / "examples").rglob("*.py")),
    ]


def _python_in(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".py":
        return text
    return "\n".join(re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL))


IMPORT_FROM = re.compile(r"^\s*from ([\w.]+) import (?:\(([^)]*)\)|([^\n]*))", re.MULTILINE)


def _imports(code: str) -> list[tuple[str, str]]:
    """``(module, name)`` of every ``from module import name [as alias]`` in ``code``."""
    return [
        (match[1], name.split(" as ")[0].strip())
        for match in IMPORT_FROM.finditer(code)
        for name in re.split(r"[,\n]", match[2] or match[3])
        if name.split("#")[0].strip()
    ]


def names_the_docs_take_from_tasker() -> dict[str, set[str]]:
    """``{name: documents}``: names imported with ``from tasker import``, written as
    ``tasker.Name``, or called in a doc's Python snippets without being imported or
    defined there (a reader can only look for those at the top level)."""
    found: dict[str, set[str]] = {}
    for path in _documents():
        text = path.read_text(encoding="utf-8")
        code = _python_in(path)
        imports = _imports(code)
        used = {name for module, name in imports if module == "tasker"}
        used |= set(re.findall(r"(?<![\w.])tasker\.([A-Z]\w*)", text))
        if path.suffix == ".md":
            local = {name for _, name in imports} | set(dir(builtins))
            local |= set(re.findall(r"^\s*(?:class|def) (\w+)", code, re.MULTILINE))
            local |= set(re.findall(r"^(\w+) =", code, re.MULTILINE))
            used |= set(re.findall(r"(?<![\w.])([A-Z]\w*)\(", code)) - local
        for name in used:
            found.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    return found


def test_all_is_sorted_and_without_duplicates() -> None:
    assert tasker.__all__ == sorted(set(tasker.__all__))


def test_every_name_in_all_is_importable() -> None:
    missing = [name for name in tasker.__all__ if not hasattr(tasker, name)]
    assert missing == []


def test_every_public_name_the_docs_use_is_exported() -> None:
    # Given every name the README, docs and examples take from the `tasker` package
    used = names_the_docs_take_from_tasker()
    # Then each is in __all__ (so `from tasker import Name` works and is promised)
    assert {"StepContext", "Worker", "WorkerOptions"} <= set(used)  # the scan sees them
    unexported = {name: sorted(docs) for name, docs in used.items() if name not in tasker.__all__}
    assert unexported == {}


def test_nothing_private_or_a_module_is_exported() -> None:
    modules = [n for n in tasker.__all__ if type(getattr(tasker, n)).__name__ == "module"]
    private = [n for n in tasker.__all__ if n.startswith("_") and n != "__version__"]
    assert (modules, private) == ([], [])


def test_the_lazy_exports_match_what_type_checkers_see() -> None:
    # Given the imports tasker/__init__.py shows type checkers (under TYPE_CHECKING)
    tree = ast.parse((ROOT / "src" / "tasker" / "__init__.py").read_text())
    typed = {
        alias.name: node.module
        for block in tree.body
        if isinstance(block, ast.If) and ast.unparse(block.test) == "TYPE_CHECKING"
        for node in block.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    # Then the names it imports at run time come from the same modules, and are __all__
    assert typed == tasker._HOMES
    assert set(typed) == set(tasker.__all__) - {"__version__"}
    for name, home in typed.items():
        assert getattr(tasker, name) is getattr(importlib.import_module(home), name)
