"""Load-time validation of the dynamic-workflow keys (join, branches, wait_for, map,
workflow): each bad template is refused with one error naming the file, the step and the
problem."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tasker.definitions import TemplateRegistry, load_template_file
from tasker.exceptions import TemplateError

NOOP = "tasker.builtin_handlers:noop"


def load_error(tmp_path: Path, steps: str) -> str:
    path = tmp_path / "flow.yaml"
    path.write_text("name: flow\nsteps:\n" + textwrap.indent(textwrap.dedent(steps), "  "))
    with pytest.raises(TemplateError) as caught:
        load_template_file(path)
    message = str(caught.value)
    assert message.startswith(str(path)), message
    return message


BAD = {
    "unknown-join": (
        f"""
        - {{name: a, handler: "{NOOP}"}}
        - {{name: b, handler: "{NOOP}", depends_on: [a], join: some}}
        """,
        "step 'b': join must be one of all, any, got 'some'",
    ),
    "branch-not-a-child": (
        f"""
        - {{name: a, handler: "{NOOP}", branches: [b, c]}}
        - {{name: b, handler: "{NOOP}", depends_on: [a]}}
        - {{name: c, handler: "{NOOP}", depends_on: [b]}}
        """,
        "step 'a': branches names 'c', which is not a direct child of 'a' (its children: b)",
    ),
    "branches-not-a-list": (
        f"""
        - {{name: a, handler: "{NOOP}", branches: b}}
        """,
        "step 'a': branches must be a list of step names, got 'b'",
    ),
    "duplicate-signal": (
        f"""
        - {{name: a, wait_for: approval}}
        - {{name: b, handler: "{NOOP}", wait_for: approval}}
        """,
        "step 'b': wait_for 'approval' is also the signal of step 'a'",
    ),
    "no-handler-no-signal": (
        """
        - {name: a}
        """,
        "step 'a': missing required key 'handler'",
    ),
    "map-not-a-parent": (
        f"""
        - {{name: a, handler: "{NOOP}"}}
        - {{name: b, handler: "{NOOP}"}}
        - {{name: c, handler: "{NOOP}", depends_on: [a], map: b.items}}
        """,
        "step 'c': map 'b.items' must name a list in a parent's results as PARENT.KEY",
    ),
    "map-without-key": (
        f"""
        - {{name: a, handler: "{NOOP}"}}
        - {{name: c, handler: "{NOOP}", depends_on: [a], map: a}}
        """,
        "(its parents: a)",
    ),
    "map-and-wait": (
        f"""
        - {{name: a, handler: "{NOOP}"}}
        - {{name: c, handler: "{NOOP}", depends_on: [a], map: a.x, wait_for: s}}
        """,
        "step 'c': map cannot be combined with wait_for or branches",
    ),
    "max-items-zero": (
        f"""
        - {{name: a, handler: "{NOOP}"}}
        - {{name: c, handler: "{NOOP}", depends_on: [a], map: a.x, max_items: 0}}
        """,
        "step 'c': max_items must be at least 1, got 0",
    ),
    "bad-signal-name": (
        """
        - {name: a, wait_for: "no spaces"}
        """,
        "wait_for signal name 'no spaces' is invalid",
    ),
    "workflow-itself": (
        """
        - {name: a, workflow: {name: flow}}
        """,
        "step 'a': workflow default/flow is this template itself",
    ),
    "workflow-not-a-mapping": (
        """
        - {name: a, workflow: shipping/parcel}
        """,
        "step 'a': workflow must be a mapping {namespace, name, version}, got a string",
    ),
    "workflow-unknown-key": (
        """
        - {name: a, workflow: {name: x, versoin: 1}}
        """,
        "step 'a': unknown key 'versoin' in workflow; allowed keys: namespace, name, version",
    ),
    "workflow-without-name": (
        """
        - {name: a, workflow: {namespace: shipping}}
        """,
        "step 'a': workflow: missing required key 'name'",
    ),
    "workflow-bad-version": (
        """
        - {name: a, workflow: {name: x, version: latest}}
        """,
        "step 'a': workflow version 'latest' is not a dotted numeric version",
    ),
    "workflow-and-wait": (
        """
        - {name: a, workflow: {name: x}, wait_for: go}
        """,
        "step 'a': workflow cannot be combined with wait_for or branches",
    ),
}


@pytest.mark.parametrize(("steps", "message"), BAD.values(), ids=BAD.keys())
def test_a_bad_dynamic_template_is_refused_naming_step_and_problem(
    tmp_path: Path, steps: str, message: str
) -> None:
    assert message in load_error(tmp_path, steps)


def test_a_dotted_parent_name_is_matched_whole_in_a_map_path(tmp_path: Path) -> None:
    path = tmp_path / "flow.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            name: flow
            steps:
              - {{name: list.files, handler: "{NOOP}"}}
              - {{name: each, handler: "{NOOP}", depends_on: [list.files], map: list.files.out}}
            """
        )
    )
    (template,) = load_template_file(path)
    assert template.step("each").map == "list.files.out"


def test_a_workflow_naming_an_unknown_template_of_a_loaded_namespace_is_refused(
    tmp_path: Path,
) -> None:
    # Given two files of namespace shipping, one starting a template the other does not hold
    (tmp_path / "a.yaml").write_text(
        "namespace: shipping\nname: order\nsteps:\n"
        "  - {name: ship, workflow: {namespace: shipping, name: parcle}}\n"
    )
    (tmp_path / "b.yaml").write_text(
        f'namespace: shipping\nname: parcel\nsteps:\n  - {{name: send, handler: "{NOOP}"}}\n'
    )
    # When they are loaded together, Then the reference is refused naming file and step
    with pytest.raises(TemplateError, match=r"a\.yaml: step 'ship': workflow names an unknown"):
        TemplateRegistry.from_paths([str(tmp_path)])
    # And one naming a namespace not loaded here waits for task creation
    (tmp_path / "a.yaml").write_text(
        "namespace: shipping\nname: order\nsteps:\n"
        "  - {name: ship, workflow: {namespace: elsewhere, name: parcel}}\n"
    )
    assert len(TemplateRegistry.from_paths([str(tmp_path)])) == 2


def test_a_workflow_cycle_among_loaded_templates_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("name: a\nsteps:\n  - {name: s, workflow: {name: b}}\n")
    (tmp_path / "b.yaml").write_text("name: b\nsteps:\n  - {name: s, workflow: {name: a}}\n")
    with pytest.raises(TemplateError, match="recurse without end"):
        TemplateRegistry.from_paths([str(tmp_path)])
