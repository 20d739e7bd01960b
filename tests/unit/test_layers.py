"""The package's floors, as docs/architecture.md draws them: no module imports a floor
above its own, and no modules import each other in a circle, even through an import
inside a function. The floors are read from the doc, so the doc cannot drift."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
PACKAGE = ROOT / "src" / "tasker"
DOC = ROOT / "docs" / "architecture.md"


def floors() -> dict[str, int]:
    """``{"engine": 2, "store": 1, ...}`` from the doc's FLOORS block (top floor first)."""
    block = re.search(
        r"<!-- BEGIN FLOORS -->\n```\n(.*?)\n```\n<!-- END FLOORS -->", DOC.read_text(), re.S
    )
    assert block, "docs/architecture.md has no FLOORS block"
    found: dict[str, int] = {}
    for line in block.group(1).splitlines():
        level, _, names = line.partition(" ")
        for name in names.split():
            found[name.strip(",")] = int(level)
    return found


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Every tasker module ``name`` imports, at any depth of its code."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            # ``from pkg import module`` depends on the module; ``from pkg import name``
            # on the package.
            submodules = [f"{target}.{alias.name}" for alias in node.names]
            candidates = [m for m in submodules if m in known]
            if len(candidates) < len(submodules):
                candidates.append(target)
        elif isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        else:
            continue
        found.update(c for c in candidates if c in known and c != name)
    return found


def floor_of(name: str, table: dict[str, int]) -> int | None:
    """The floor of ``tasker.a.b``: the table's entry for ``a.b``, else for ``a``."""
    parts = name.split(".")[1:]
    for end in range(len(parts), 0, -1):
        key = ".".join(parts[:end])
        if key in table:
            return table[key]
    return None


def root_floor(table: dict[str, int]) -> int:
    """``tasker`` itself re-exports the public names: it stands as high as they do."""
    return max(floor_of(target, table) or 0 for target in GRAPH["tasker"])


GRAPH = {name: imports(name, path, set(modules())) for name, path in modules().items()}


def test_every_module_stands_on_a_floor() -> None:
    table = floors()
    lost = sorted(n for n in GRAPH if n != "tasker" and floor_of(n, table) is None)
    assert not lost, f"modules on no floor of docs/architecture.md: {lost}"


def test_no_module_imports_a_floor_above_its_own() -> None:
    table = floors()
    upward = []
    for name, targets in GRAPH.items():
        if name == "tasker":  # the public surface re-exports from every floor
            continue
        mine = floor_of(name, table)
        for target in targets:
            theirs = root_floor(table) if target == "tasker" else floor_of(target, table)
            if mine is not None and theirs is not None and theirs > mine:
                upward.append(f"{name} (floor {mine}) imports {target} (floor {theirs})")
    assert not upward, "imports that point upward:\n" + "\n".join(sorted(upward))


def test_no_import_cycles() -> None:
    cycles = strongly_connected(GRAPH)
    assert not cycles, "modules that import each other in a circle: " + "; ".join(
        " <-> ".join(sorted(c)) for c in cycles
    )


def strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's algorithm: the groups of two or more modules reachable from each other."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []
    counter = 0

    def visit(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.add(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(group)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


@pytest.mark.parametrize(
    ("graph", "expected"),
    [
        ({"a": {"b"}, "b": {"a"}}, [{"a", "b"}]),
        ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [{"a", "b", "c"}]),
    ],
)
def test_the_cycle_finder_finds_cycles(
    graph: dict[str, set[str]], expected: list[set[str]]
) -> None:
    assert strongly_connected(graph) == expected
