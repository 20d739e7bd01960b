"""YAML templates: loading, every validation error, graph order, context, serialisation."""

from __future__ import annotations

import itertools
import json
import textwrap
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from tasker.definitions import (
    StepSpec,
    TemplateDefinition,
    load_template_file,
    load_templates,
    validate_template,
)
from tasker.definitions.parse import parse_template
from tasker.exceptions import TemplateError, ValidationError
from tasker.retry import Backoff

NOOP = "tasker.builtin_handlers:noop"


def write(tmp_path: Path, text: str, name: str = "orders.yaml") -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def template_yaml(steps: str = "", top: str = "", defaults: str = "") -> str:
    """A valid template with one step ``a``; extra steps, top-level keys and defaults appended."""
    text = f"name: orders\n{top}"
    if defaults:
        text += "defaults:\n" + textwrap.indent(textwrap.dedent(defaults), "  ")
    text += f"steps:\n  - name: a\n    handler: {NOOP}\n"
    return text + textwrap.indent(textwrap.dedent(steps), "  ")


def load_error(tmp_path: Path, text: str, *, check_handlers: bool = True) -> str:
    path = write(tmp_path, text)
    with pytest.raises(TemplateError) as caught:
        load_template_file(path, check_handlers=check_handlers)
    message = str(caught.value)
    assert message.startswith(str(path)), message
    return message


def make(steps: list[StepSpec], **fields: object) -> TemplateDefinition:
    values: dict[str, object] = {"namespace": "default", "name": "t", "version": "1.0.0"}
    values.update(fields)
    return TemplateDefinition(steps=tuple(steps), **values)  # type: ignore[arg-type]


# --- loading -----------------------------------------------------------------------------


def test_defaults_apply_to_every_step_and_step_keys_override_them(tmp_path: Path) -> None:
    # Given defaults with a partial backoff and a step overriding some of them
    path = write(
        tmp_path,
        f"""\
        namespace: payments
        name: process_order
        version: "1.2.3"
        description: Charge and ship
        defaults:
          max_attempts: 5
          retryable: false
          timeout_seconds: null
          backoff: {{jitter: 0.5}}
        steps:
          - name: validate
            handler: {NOOP}
          - name: charge
            handler: tasker.builtin_handlers:echo
            depends_on: [validate]
            max_attempts: 2
            timeout_seconds: 10
            backoff: {{base_seconds: 3}}
            config: {{gateway: stripe}}
        """,
    )
    # When it is loaded
    (template,) = load_template_file(path)
    # Then the steps carry the merged values
    assert template.key == "payments/process_order@1.2.3"
    assert template.source == str(path)
    validate, charge = template.steps
    assert validate == StepSpec(
        name="validate",
        handler=NOOP,
        max_attempts=5,
        retryable=False,
        timeout_seconds=None,
        backoff=Backoff(jitter=0.5),
    )
    assert charge.depends_on == ("validate",)
    assert charge.max_attempts == 2
    assert charge.retryable is False
    assert charge.timeout_seconds == 10.0
    assert charge.backoff == Backoff(base_seconds=3.0, max_seconds=60.0, jitter=0.5)
    assert charge.config == {"gateway": "stripe"}


def test_omitted_keys_get_the_documented_defaults(tmp_path: Path) -> None:
    (template,) = load_template_file(write(tmp_path, template_yaml()))
    assert (template.namespace, template.version, template.description) == (
        "default",
        "0.1.0",
        None,
    )
    assert template.steps == (StepSpec(name="a", handler=NOOP),)


def test_a_file_with_several_documents_yields_every_template(tmp_path: Path) -> None:
    text = template_yaml() + "---\n" + template_yaml(top="version: '2.0.0'\n")
    templates = load_template_file(write(tmp_path, text))
    assert [t.key for t in templates] == ["default/orders@0.1.0", "default/orders@2.0.0"]


@pytest.mark.parametrize(("written", "version"), [("1", "1"), ("1.5", "1.5"), ("'1.10'", "1.10")])
def test_an_unquoted_numeric_version_becomes_a_string(
    tmp_path: Path, written: str, version: str
) -> None:
    (template,) = load_template_file(write(tmp_path, template_yaml(top=f"version: {written}\n")))
    assert template.version == version


def test_malformed_yaml_names_the_file_line_and_column(tmp_path: Path) -> None:
    text = "name: orders\nsteps:\n  - name: a\n    handler: mod: run\n"
    message = load_error(tmp_path, text)
    assert "line 4, column 17: could not parse YAML: mapping values are not allowed here" in message


def test_a_key_written_twice_is_an_error_not_a_silent_override(tmp_path: Path) -> None:
    message = load_error(tmp_path, template_yaml() + "name: other\n")
    assert "line 5, column 1: could not parse YAML: duplicate key 'name'" in message


def test_a_file_without_any_document_is_rejected(tmp_path: Path) -> None:
    assert "holds no template" in load_error(tmp_path, "# nothing here\n")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (template_yaml(top="owner: me\n"), "unknown key 'owner' in the template; allowed keys: "),
        (template_yaml(defaults="retries: 3\n"), "unknown key 'retries' in defaults"),
        (
            template_yaml(defaults="backoff: {factor: 2}\n"),
            "unknown key 'factor' in defaults backoff; allowed keys: base_seconds, max_seconds",
        ),
        (
            template_yaml(f"- name: b\n  handler: {NOOP}\n  retries: 3\n"),
            "step 'b': unknown key 'retries' in a step; allowed keys: name, handler, depends_on",
        ),
        (
            template_yaml(f"- name: b\n  handler: {NOOP}\n  backoff: {{cap: 1}}\n"),
            "step 'b': unknown key 'cap' in step backoff",
        ),
    ],
)
def test_unknown_keys_are_named_with_the_allowed_ones(
    tmp_path: Path, text: str, expected: str
) -> None:
    assert expected in load_error(tmp_path, text)


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        ("depends_on: a", "step 'b': depends_on must be a list of step names, got 'a'"),
        ("depends_on: [1]", "step 'b': depends_on must be a list of step names"),
        ("max_attempts: '3'", "step 'b': max_attempts must be an integer, got '3'"),
        ("max_attempts: true", "step 'b': max_attempts must be an integer, got True"),
        ("max_attempts: 2.5", "step 'b': max_attempts must be an integer, got 2.5"),
        ("retryable: 'yes'", "step 'b': retryable must be true or false, got 'yes'"),
        ("timeout_seconds: soon", "step 'b': timeout_seconds must be a number, got 'soon'"),
        ("backoff: {jitter: true}", "step 'b': backoff.jitter must be a number, got True"),
        ("backoff: 5", "step 'b': backoff must be a mapping"),
        ("config: [1, 2]", "step 'b': config must be a mapping, got a list"),
        ("description: [x]", "step 'b': description must be a string"),
    ],
)
def test_wrong_types_in_a_step_name_the_step(tmp_path: Path, step: str, expected: str) -> None:
    text = template_yaml(f"- name: b\n  handler: {NOOP}\n  {step}\n")
    assert expected in load_error(tmp_path, text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name: orders\nsteps: {a: 1}\n", "steps must be a list, got a mapping"),
        ("- name: orders\n", "a template must be a mapping, got a list"),
        ("name: orders\n", "missing required key 'steps'"),
        (f"steps:\n  - name: a\n    handler: {NOOP}\n", "missing required key 'name'"),
        ("name: orders\nsteps:\n  - handler: x:y\n", "steps[0]: missing required key 'name'"),
        ("name: orders\nsteps:\n  - name: a\n", "step 'a': missing required key 'handler'"),
        ("name: orders\nsteps:\n  - just_a_string\n", "steps[0] must be a mapping"),
        (template_yaml(top="defaults: 3\n"), "defaults must be a mapping"),
        (template_yaml(top="version: [1]\n"), "version must be a string"),
        (template_yaml(top="context_schema: [1]\n"), "context_schema must be a mapping"),
    ],
)
def test_wrong_shapes_at_the_top_level_are_explained(
    tmp_path: Path, text: str, expected: str
) -> None:
    assert expected in load_error(tmp_path, text)


# --- validation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name: orders\nsteps: []\n", "template default/orders has no steps"),
        (template_yaml(f"- name: a\n  handler: {NOOP}\n"), "step 'a': duplicate step name"),
        (
            template_yaml(f"- name: b\n  handler: {NOOP}\n  depends_on: [a, ghost]\n"),
            "step 'b': depends on unknown step 'ghost'",
        ),
        (
            template_yaml(f"- name: b\n  handler: {NOOP}\n  depends_on: [b]\n"),
            "step 'b': depends on itself",
        ),
        (
            template_yaml(f"- name: b\n  handler: {NOOP}\n  depends_on: [a, a]\n"),
            "step 'b': depends_on lists a step twice",
        ),
    ],
)
def test_graph_errors_name_the_step_and_problem(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in load_error(tmp_path, text)


def test_a_cycle_is_reported_as_the_cycle_itself(tmp_path: Path) -> None:
    # Given a -> b -> c -> a (each arrow: the right-hand step depends on the left-hand one)
    # and an unrelated root declared first
    text = f"""\
    name: orders
    steps:
      - {{name: root, handler: "{NOOP}"}}
      - {{name: c, handler: "{NOOP}", depends_on: [b]}}
      - {{name: a, handler: "{NOOP}", depends_on: [root, c]}}
      - {{name: b, handler: "{NOOP}", depends_on: [a]}}
    """
    # Then the error names the cycle, starting from its earliest-declared step
    assert load_error(tmp_path, text).endswith("dependency cycle: c -> a -> b -> c")


@pytest.mark.parametrize(
    ("handler", "expected"),
    [
        (
            "no_colon_here",
            "handler 'no_colon_here' is malformed: expected 'package.module:callable'",
        ),
        ("pkg:", "handler 'pkg:' is malformed"),
        ("bad module:f", "is malformed"),
        (
            "tasker_no_such_module:f",
            "module 'tasker_no_such_module' does not import: "
            "ModuleNotFoundError: No module named 'tasker_no_such_module'",
        ),
        (
            "tasker.builtin_handlers:missing",
            "'tasker.builtin_handlers' has no attribute 'missing'",
        ),
        (
            "tasker.retry:Backoff.nope",
            "'tasker.retry:Backoff' has no attribute 'nope'",
        ),
        (
            "tasker.definitions.loader:YAML_SUFFIXES",
            "handler 'tasker.definitions.loader:YAML_SUFFIXES' is not callable (it is a tuple)",
        ),
    ],
)
def test_bad_handlers_are_reported_with_the_reason(
    tmp_path: Path, handler: str, expected: str
) -> None:
    text = template_yaml(f"- name: b\n  handler: '{handler}'\n")
    message = load_error(tmp_path, text)
    assert "step 'b': " in message and expected in message


def test_handlers_are_not_imported_when_checking_is_off_but_must_be_well_formed(
    tmp_path: Path,
) -> None:
    # Given a handler in a module that does not exist
    path = write(tmp_path, template_yaml("- name: b\n  handler: elsewhere.mod:run\n"))
    # When loaded without checking handlers, Then it loads
    (template,) = load_template_file(path, check_handlers=False)
    assert template.step("b").handler == "elsewhere.mod:run"
    # But a malformed path is still rejected
    text = template_yaml("- name: b\n  handler: elsewhere.mod.run\n")
    assert "is malformed" in load_error(tmp_path, text, check_handlers=False)


def test_an_invalid_context_schema_includes_the_schema_error(tmp_path: Path) -> None:
    text = template_yaml(top="context_schema:\n  type: object\n  properties: {n: {type: int}}\n")
    message = load_error(tmp_path, text)
    assert "context_schema is not a valid JSON Schema at properties/n/type:" in message
    assert "'int' is not valid under any of the given schemas" in message


@pytest.mark.parametrize(
    ("option", "expected"),
    [
        ("max_attempts: 0", "max_attempts must be at least 1, got 0"),
        ("timeout_seconds: 0", "timeout_seconds must be a positive number or null, got 0.0"),
        ("timeout_seconds: -5", "timeout_seconds must be a positive number or null, got -5.0"),
        ("backoff: {base_seconds: -1}", "backoff.base_seconds must be a non-negative number"),
        ("backoff: {max_seconds: -1}", "backoff.max_seconds must be a non-negative number"),
        ("backoff: {jitter: -0.1}", "backoff.jitter must be a non-negative number"),
        ("backoff: {jitter: 1.5}", "backoff.jitter must be between 0 and 1, got 1.5"),
        (
            "backoff: {base_seconds: 90}",
            "backoff.base_seconds (90.0) is greater than backoff.max_seconds (60.0)",
        ),
        ("config: {when: 2024-01-01}", "config is not JSON-serialisable"),
    ],
)
def test_out_of_range_options_name_the_step(tmp_path: Path, option: str, expected: str) -> None:
    text = template_yaml(f"- name: b\n  handler: {NOOP}\n  {option}\n")
    message = load_error(tmp_path, text)
    assert f"step 'b': {expected}" in message


def test_out_of_range_defaults_are_reported_on_the_step_that_inherits_them(
    tmp_path: Path,
) -> None:
    message = load_error(tmp_path, template_yaml(defaults="max_attempts: 0\n"))
    assert "step 'a': max_attempts must be at least 1" in message


@pytest.mark.parametrize(
    ("top", "step", "expected"),
    [
        ("namespace: 'pay ments'\n", "a", "namespace 'pay ments' is invalid"),
        ("", "'9lives'", "step '9lives': step name '9lives' is invalid"),
        ("", "'a/b'", "step name 'a/b' is invalid: use letters, digits"),
    ],
)
def test_names_must_be_identifiers(tmp_path: Path, top: str, step: str, expected: str) -> None:
    text = f"{top}name: orders\nsteps:\n  - name: {step}\n    handler: {NOOP}\n"
    assert expected in load_error(tmp_path, text)


def test_the_template_name_must_be_an_identifier(tmp_path: Path) -> None:
    message = load_error(tmp_path, template_yaml().replace("name: orders", "name: '-x'", 1))
    assert "template name '-x' is invalid" in message


@pytest.mark.parametrize("version", ["1.0.0-beta", "v1", "1..2", "", "latest"])
def test_a_version_that_is_not_dotted_numbers_is_rejected(tmp_path: Path, version: str) -> None:
    message = load_error(tmp_path, template_yaml(top=f"version: '{version}'\n"))
    assert f"version {version!r} is not a dotted numeric version such as 1.0.0" in message


# --- the definition -----------------------------------------------------------------------


def test_an_unknown_step_raises_a_template_error_naming_the_steps() -> None:
    template = make([StepSpec("a", NOOP), StepSpec("b", NOOP)])
    assert template.step("b").name == "b"
    with pytest.raises(TemplateError, match=r"default/t@1\.0\.0 has no step 'z'; steps: a, b"):
        template.step("z")


def test_topological_order_breaks_ties_by_declaration_order() -> None:
    # Given two roots declared after their common child, and an independent step
    template = make(
        [
            StepSpec("join", NOOP, depends_on=("right", "left")),
            StepSpec("right", NOOP),
            StepSpec("left", NOOP),
            StepSpec("after", NOOP, depends_on=("left",)),
        ]
    )
    # Then parents come first, and ready steps in declaration order
    assert template.topological_order() == ["right", "left", "join", "after"]


def test_dependency_levels_follow_the_longest_path() -> None:
    # Given d depends on a directly and through b -> c
    template = make(
        [
            StepSpec("a", NOOP),
            StepSpec("b", NOOP, depends_on=("a",)),
            StepSpec("c", NOOP, depends_on=("b",)),
            StepSpec("d", NOOP, depends_on=("a", "c")),
        ]
    )
    assert template.dependency_levels() == {"a": 0, "b": 1, "c": 2, "d": 3}


def test_validate_template_rejects_a_directly_built_definition_with_a_cycle() -> None:
    template = make(
        [StepSpec("a", NOOP, depends_on=("b",)), StepSpec("b", NOOP, depends_on=("a",))],
        source="python:shop",
    )
    with pytest.raises(TemplateError, match=r"^python:shop: dependency cycle: a -> b -> a$"):
        validate_template(template)


SCHEMA = {
    "type": "object",
    "required": ["order_id", "customer"],
    "properties": {
        "order_id": {"type": "integer"},
        "items": {"type": "array", "items": {"type": "string"}},
    },
}


def test_context_validation_lists_every_violation_sorted_by_path() -> None:
    template = make([StepSpec("a", NOOP)], context_schema=SCHEMA)
    with pytest.raises(ValidationError) as caught:
        template.validate_context({"order_id": "7", "items": ["x", 2]})
    assert str(caught.value) == "context does not match the template's context_schema"
    assert caught.value.errors == [
        "$: 'customer' is a required property",
        "$.items[1]: 2 is not of type 'string'",
        "$.order_id: '7' is not of type 'integer'",
    ]


def test_a_matching_context_is_accepted() -> None:
    template = make([StepSpec("a", NOOP)], context_schema=SCHEMA)
    template.validate_context({"order_id": 7, "customer": "c", "items": ["x"]})


@pytest.mark.parametrize("schema", [None, SCHEMA])
@pytest.mark.parametrize("context", [[1], "text", 3, None])
def test_the_context_must_be_a_json_object_with_or_without_a_schema(
    schema: dict[str, object] | None, context: object
) -> None:
    template = make([StepSpec("a", NOOP)], context_schema=schema)
    with pytest.raises(ValidationError) as caught:
        template.validate_context(context)
    assert caught.value.errors == [f"$: expected an object, got {type(context).__name__}"]


def test_to_dict_is_json_and_from_dict_gives_back_an_equal_definition(tmp_path: Path) -> None:
    # Given a template using defaults, a schema and config
    text = template_yaml(
        f"- name: b\n  handler: {NOOP}\n  depends_on: [a]\n  config: {{k: [1, 2]}}\n",
        top="version: '2.1'\ncontext_schema: {type: object}\ndescription: d\n",
        defaults="retryable: false\nbackoff: {max_seconds: 5}\n",
    )
    (template,) = load_template_file(write(tmp_path, text))
    # When it goes through JSON and back
    data = json.loads(json.dumps(template.to_dict()))
    # Then every default is explicit and the definition is unchanged
    assert "defaults" not in data
    assert data["steps"][1] == {
        "name": "b",
        "handler": NOOP,
        "depends_on": ["a"],
        "description": None,
        "config": {"k": [1, 2]},
        "max_attempts": 3,
        "retryable": False,
        "timeout_seconds": 300.0,
        "backoff": {"base_seconds": 1.0, "max_seconds": 5.0, "jitter": 0.1},
        "join": "all",
        "branches": [],
        "wait_for": None,
        "map": None,
        "max_items": 10_000,
        "workflow": None,
        "concurrency": None,
        "rate_limit": None,
    }
    assert parse_template(data) == template


def test_from_dict_validates_its_input() -> None:
    data = make([StepSpec("a", NOOP)]).to_dict()
    data["steps"][0]["depends_on"] = ["a"]
    with pytest.raises(TemplateError, match=r"^db: step 'a': depends on itself$"):
        parse_template(data, source="db")


def test_load_templates_reads_directories_recursively_in_sorted_order(tmp_path: Path) -> None:
    # Given templates in nested folders, a .yml file and a file that is not YAML
    write(tmp_path, template_yaml(top="version: '3'\n"), "b/z.yml")
    write(tmp_path, template_yaml(top="version: '2'\n"), "b/a.yaml")
    write(tmp_path, template_yaml(top="version: '1'\n"), "a.yaml")
    write(tmp_path, "not: a template", "notes.txt")
    single = write(tmp_path / "elsewhere", template_yaml(top="version: '9'\n"), "one.yaml")
    # When the directory and a single file are loaded
    templates = load_templates([str(tmp_path / "b"), str(tmp_path / "a.yaml"), str(single)])
    # Then every template is found, files in sorted order
    assert [t.version for t in templates] == ["2", "3", "1", "9"]


def test_load_templates_rejects_a_path_that_is_neither_file_nor_module(tmp_path: Path) -> None:
    missing = str(tmp_path / "missing.yaml")
    with pytest.raises(TemplateError, match="does not exist"):
        load_templates([missing])
    with pytest.raises(TemplateError, match=r"'no_such_pkg\.templates' is neither an existing"):
        load_templates(["no_such_pkg.templates"])


# --- properties ---------------------------------------------------------------------------


@st.composite
def dags(draw: st.DrawFn) -> tuple[list[list[int]], list[int]]:
    """Parents of each step (only earlier steps, so acyclic) and a shuffled declaration order."""
    count = draw(st.integers(min_value=1, max_value=12))
    parents = [
        sorted(draw(st.sets(st.integers(0, index - 1)))) if index else [] for index in range(count)
    ]
    order = draw(st.permutations(range(count)))
    return parents, list(order)


def build(parents: list[list[int]], order: list[int]) -> TemplateDefinition:
    steps = [StepSpec(f"s{i}", NOOP, depends_on=tuple(f"s{p}" for p in parents[i])) for i in order]
    return make(steps)


def longest_path(parents: list[list[int]]) -> list[int]:
    levels: list[int] = []
    for own in parents:  # parents always come earlier, so their levels are known
        levels.append(1 + max(levels[p] for p in own) if own else 0)
    return levels


@settings(max_examples=150, deadline=None)
@given(dags())
def test_random_dags_validate_and_order_respects_every_edge(
    dag: tuple[list[list[int]], list[int]],
) -> None:
    parents, order = dag
    template = build(parents, order)
    validate_template(template)
    position = {name: index for index, name in enumerate(template.topological_order())}
    assert sorted(position) == sorted(f"s{i}" for i in range(len(parents)))
    for child, own in enumerate(parents):
        for parent in own:
            assert position[f"s{parent}"] < position[f"s{child}"]
    expected = {f"s{i}": level for i, level in enumerate(longest_path(parents))}
    assert template.dependency_levels() == expected


@settings(max_examples=150, deadline=None)
@given(dags(), st.data())
def test_a_back_edge_closing_a_cycle_is_rejected_and_the_cycle_is_real(
    dag: tuple[list[list[int]], list[int]], data: st.DataObject
) -> None:
    # Given a random DAG and a pair (ancestor, descendant)
    parents, order = dag
    ancestors: list[set[int]] = []
    for own in parents:
        ancestors.append(set(own).union(*(ancestors[p] for p in own)))
    pairs = [(a, d) for d in range(len(parents)) for a in sorted(ancestors[d])]
    assume(pairs)
    ancestor, descendant = data.draw(st.sampled_from(pairs))
    # When the ancestor is made to depend on its descendant
    parents[ancestor] = [*parents[ancestor], descendant]
    template = build(parents, order)
    # Then validation fails with a cycle whose every arrow is an edge of the graph
    with pytest.raises(TemplateError, match="dependency cycle: ") as caught:
        validate_template(template)
    cycle = str(caught.value).split("dependency cycle: ")[1].split(" -> ")
    assert cycle[0] == cycle[-1] and len(cycle) >= 3
    for before, after in itertools.pairwise(cycle):
        assert before in template.step(after).depends_on


def test_priority_defaults_to_0_and_round_trips_through_the_stored_form(tmp_path: Path) -> None:
    plain = load_template_file(write(tmp_path, template_yaml()))[0]
    assert plain.priority == 0
    urgent = load_template_file(write(tmp_path, template_yaml(top="priority: -7\n"), "u.yaml"))[0]
    assert urgent.priority == -7
    assert parse_template(json.loads(json.dumps(urgent.to_dict()))) == urgent


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("high", "priority must be an integer, got 'high'"),
        ("1.5", "priority must be an integer, got 1.5"),
        ("true", "priority must be an integer, got True"),
        (str(2**31), "priority must be between -2147483648 and 2147483647, got 2147483648"),
    ],
)
def test_a_bad_priority_is_explained(tmp_path: Path, value: str, expected: str) -> None:
    assert expected in load_error(tmp_path, template_yaml(top=f"priority: {value}\n"))
