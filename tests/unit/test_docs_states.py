"""The state diagrams in docs/architecture.md are the ones generated from the tables."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tasker.states import STEP_TRANSITIONS, TASK_TRANSITIONS, State, mermaid

ARCHITECTURE = Path(__file__).resolve().parents[2] / "docs" / "architecture.md"
TABLES = {"STEP_TRANSITIONS": STEP_TRANSITIONS, "TASK_TRANSITIONS": TASK_TRANSITIONS}


def generated_block(text: str, name: str) -> str:
    pattern = (
        rf"<!-- BEGIN GENERATED: mermaid\({name}\) -->\n```mermaid\n(.*?)\n```\n"
        rf"<!-- END GENERATED: mermaid\({name}\) -->"
    )
    found = re.findall(pattern, text, flags=re.DOTALL)
    assert len(found) == 1, f"docs/architecture.md needs exactly one block for {name}"
    block: str = found[0]
    return block


@pytest.mark.parametrize("name", sorted(TABLES))
def test_the_documented_diagram_is_generated_from_the_table(name: str) -> None:
    expected = mermaid(TABLES[name])
    documented = generated_block(ARCHITECTURE.read_text(encoding="utf-8"), name)

    assert documented == expected, (
        f"the {name} diagram in docs/architecture.md is stale; paste this between its "
        f"markers:\n```mermaid\n{expected}\n```"
    )


@pytest.mark.parametrize("name", sorted(TABLES))
def test_every_allowed_transition_appears_in_the_diagram(name: str) -> None:
    # Guards the generator as well as the document: the diagram must show each edge.
    documented = generated_block(ARCHITECTURE.read_text(encoding="utf-8"), name)
    for source, targets in TABLES[name].items():
        for target in targets:
            assert f"    {source.value} --> {target.value}" in documented
    edges = [line for line in documented.splitlines() if "-->" in line and "[*]" not in line]
    assert len(edges) == sum(len(t) for t in TABLES[name].values())
    assert {State(line.split()[0]) for line in edges} <= set(State)
