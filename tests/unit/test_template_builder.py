"""The Python decorator API, the registry, and templates collected from modules."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tasker import builtin_handlers
from tasker.definitions import Template, TemplateRegistry, load_template_file, load_templates
from tasker.exceptions import TemplateError, TemplateNotFound
from tasker.retry import Backoff

NOOP = "tasker.builtin_handlers:noop"
ECHO = "tasker.builtin_handlers:echo"

ORDERS_YAML = f"""\
namespace: payments
name: process_order
version: 1.0.0
description: Charge and ship an order
context_schema:
  type: object
  required: [order_id]
defaults:
  max_attempts: 4
  backoff: {{jitter: 0.2}}
steps:
  - name: validate
    handler: {NOOP}
  - name: charge
    handler: {ECHO}
    depends_on: [validate]
    max_attempts: 5
    backoff: {{base_seconds: 2}}
    config: {{gateway: stripe}}
  - name: ship
    handler: {NOOP}
    depends_on: [charge, validate]
    timeout_seconds: null
    description: hand over to the carrier
"""


def orders_builder() -> Template:
    return Template(
        "process_order",
        namespace="payments",
        version="1.0.0",
        description="Charge and ship an order",
        context_schema={"type": "object", "required": ["order_id"]},
        defaults={"max_attempts": 4, "backoff": {"jitter": 0.2}},
    )


@pytest.fixture
def module_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A directory on sys.path; modules imported from it are forgotten afterwards."""
    monkeypatch.syspath_prepend(str(tmp_path))
    before = set(sys.modules)
    yield tmp_path
    for name in set(sys.modules) - before:
        del sys.modules[name]


def write_module(path: Path, name: str, body: str) -> None:
    (path / f"{name}.py").write_text(textwrap.dedent(body), encoding="utf-8")


def test_the_builder_and_the_yaml_file_produce_equal_definitions(tmp_path: Path) -> None:
    # Given the same template in YAML and through the builder (decorator and add_step forms)
    (path := tmp_path / "orders.yaml").write_text(ORDERS_YAML, encoding="utf-8")
    (from_yaml,) = load_template_file(path)
    orders = orders_builder()
    orders.add_step("validate", NOOP)
    orders.add_step(
        "charge",
        builtin_handlers.echo,
        depends_on=["validate"],
        max_attempts=5,
        backoff={"base_seconds": 2},
        config={"gateway": "stripe"},
    )

    @orders.step(
        "ship",
        handler=NOOP,
        depends_on=["charge", "validate"],
        timeout_seconds=None,
        description="hand over to the carrier",
    )
    def ship(step: object) -> dict[str, Any]:
        return {}

    # When built, Then it equals the loaded one (the source is not part of equality)
    built = orders.build()
    assert built == from_yaml
    assert built.to_dict() == from_yaml.to_dict()
    assert built.source == f"python:{__name__}"


def test_decorated_functions_are_named_after_themselves_and_returned_unchanged() -> None:
    # Given steps declared with the decorator, depending on each other by function
    flow = Template("flow")

    def fetch(step: object) -> dict[str, Any]:
        return {"fetched": True}

    decorated = flow.step()(fetch)

    @flow.step(depends_on=[fetch], max_attempts=1, backoff=Backoff(base_seconds=0.5))
    def store(step: object) -> dict[str, Any]:
        return {}

    # When built
    template = flow.build()
    # Then names, handler paths and options come from the functions and the decorator
    assert decorated is fetch
    assert [s.name for s in template.steps] == ["fetch", "store"]
    assert template.step("store").depends_on == ("fetch",)
    assert template.step("store").max_attempts == 1
    assert template.step("store").backoff == Backoff(base_seconds=0.5)
    fetch_path = f"{__name__}:{fetch.__qualname__}"
    assert "<locals>" in fetch_path  # not importable: only valid because registered here
    assert template.step("fetch").handler == fetch_path
    assert flow.handlers == {fetch_path: fetch, f"{__name__}:{store.__qualname__}": store}


def test_an_explicit_step_name_is_used_by_functions_depending_on_it() -> None:
    flow = Template("flow")

    @flow.step("first-step")
    def first(step: object) -> None: ...

    flow.add_step("second", NOOP, depends_on=[first])
    assert flow.build().step("second").depends_on == ("first-step",)


def test_a_string_handler_that_does_not_import_fails_the_build() -> None:
    flow = Template("flow")
    flow.add_step("a", "tasker_no_such_module:run")
    with pytest.raises(TemplateError, match=r"step 'a': handler .* does not import"):
        flow.build()


def test_an_unknown_step_option_is_rejected_at_declaration() -> None:
    flow = Template("flow")
    with pytest.raises(TemplateError) as caught:
        flow.add_step("a", NOOP, retries=3)
    assert "step 'a': unknown option 'retries'; allowed options: description, config" in str(
        caught.value
    )

    with pytest.raises(TemplateError, match="step 'g': unknown option 'timeout'"):

        @flow.step(timeout=3)
        def g(step: object) -> None: ...


def test_depending_on_a_function_that_is_not_a_step_is_an_error() -> None:
    flow = Template("flow")

    def stray(step: object) -> None: ...

    with pytest.raises(TemplateError, match=r"step 'a': depends_on names .*stray.* not a step"):
        flow.add_step("a", NOOP, depends_on=[stray])


def test_build_validates_the_graph_and_names_the_module() -> None:
    flow = Template("flow")
    flow.add_step("a", NOOP, depends_on=["b"])
    flow.add_step("b", NOOP, depends_on=["a"])
    with pytest.raises(TemplateError, match=rf"^python:{__name__}: dependency cycle: a -> b -> a"):
        flow.build()


def test_builder_defaults_are_checked_like_yaml_defaults() -> None:
    flow = Template("flow", defaults={"retry": 3})
    flow.add_step("a", NOOP)
    with pytest.raises(TemplateError, match="unknown key 'retry' in defaults"):
        flow.build()


# --- registry -----------------------------------------------------------------------------


def versioned(version: str, handler: str = NOOP) -> Template:
    flow = Template("flow", version=version)
    flow.add_step("a", handler)
    return flow


def test_get_without_a_version_returns_the_highest_numerically() -> None:
    registry = TemplateRegistry()
    for version in ["1.9.0", "1.10.0", "1.2"]:
        registry.add(versioned(version))
    assert registry.get("flow").version == "1.10.0"
    assert registry.get("flow", version="1.2").version == "1.2"
    assert [t.version for t in registry.all()] == ["1.2", "1.9.0", "1.10.0"]


def test_all_is_sorted_by_namespace_then_name() -> None:
    registry = TemplateRegistry()
    for namespace, name in [("b", "x"), ("a", "z"), ("a", "y")]:
        flow = Template(name, namespace=namespace)
        flow.add_step("s", NOOP)
        registry.add(flow)
    assert [t.key for t in registry.all()] == ["a/y@0.1.0", "a/z@0.1.0", "b/x@0.1.0"]


def test_unknown_templates_and_versions_are_reported() -> None:
    registry = TemplateRegistry()
    registry.add(versioned("2.0.0"))
    registry.add(versioned("1.0.0"))
    with pytest.raises(TemplateNotFound, match=r"^no template default/other$"):
        registry.get("other")
    with pytest.raises(TemplateNotFound, match=r"^no template other/flow$"):
        registry.get("flow", namespace="other")
    with pytest.raises(
        TemplateNotFound, match=r"flow@3\.0\.0; available versions: 1\.0\.0, 2\.0\.0$"
    ):
        registry.get("flow", version="3.0.0")


def test_adding_a_key_twice_needs_an_equal_definition() -> None:
    registry = TemplateRegistry()
    first = registry.add(versioned("1.0.0"))
    assert registry.add(versioned("1.0.0")) == first
    assert len(registry.all()) == 1
    with pytest.raises(TemplateError, match=r"default/flow@1\.0\.0 is already registered with a"):
        registry.add(versioned("1.0.0", handler=ECHO))
    assert registry.get("flow").step("a").handler == NOOP


def test_resolve_handler_prefers_in_process_functions_then_imports() -> None:
    # Given a builder whose handler is a local function
    flow = Template("flow")

    @flow.step()
    def local(step: object) -> dict[str, Any]:
        return {"local": True}

    registry = TemplateRegistry()
    template = registry.add(flow)
    # Then the registry hands back that very function, and imports importable paths
    assert registry.resolve_handler(template.step("local").handler) is local
    assert registry.resolve_handler(ECHO) is builtin_handlers.echo
    with pytest.raises(TemplateError, match="has no attribute 'nope'"):
        registry.resolve_handler("tasker.builtin_handlers:nope")


def test_a_plain_definition_is_validated_when_added() -> None:
    definition = versioned("1.0.0").build()
    broken = type(definition)(
        namespace="default", name="flow", version="1.0.0", steps=definition.steps * 2
    )
    with pytest.raises(TemplateError, match="step 'a': duplicate step name"):
        TemplateRegistry().add(broken)


# --- modules ------------------------------------------------------------------------------


MODULE_BODY = f"""\
from tasker.definitions import Template, TemplateDefinition, StepSpec

flow = Template("from_builder", version="1.0.0")

@flow.step()
def work(step):
    return {{"worked": True}}

plain = TemplateDefinition(
    namespace="default", name="plain", version="2.0.0",
    steps=(StepSpec("a", "{NOOP}"),),
)
alias = plain
"""


def test_load_templates_collects_builders_and_definitions_from_a_module(module_dir: Path) -> None:
    # Given a module exposing a builder, a definition and an alias of it
    write_module(module_dir, "tasker_test_flows_a", MODULE_BODY)
    # When loaded by module name
    templates = load_templates(["tasker_test_flows_a"])
    # Then each template appears once, sourced to the module
    assert [t.key for t in templates] == ["default/from_builder@1.0.0", "default/plain@2.0.0"]
    assert {t.source for t in templates} == {"python:tasker_test_flows_a"}


def test_from_paths_mixes_directories_and_modules_and_keeps_in_process_handlers(
    module_dir: Path,
) -> None:
    write_module(module_dir, "tasker_test_flows_b", MODULE_BODY)
    (yaml_dir := module_dir / "templates").mkdir()
    (yaml_dir / "orders.yaml").write_text(ORDERS_YAML, encoding="utf-8")
    registry = TemplateRegistry.from_paths([str(yaml_dir), "tasker_test_flows_b"])
    assert [t.key for t in registry.all()] == [
        "default/from_builder@1.0.0",
        "default/plain@2.0.0",
        "payments/process_order@1.0.0",
    ]
    handler = registry.resolve_handler("tasker_test_flows_b:work")
    assert handler(None) == {"worked": True}


@pytest.mark.parametrize(
    ("module", "body", "expected"),
    [
        ("tasker_test_empty", "x = 1\n", "^python:tasker_test_empty: the module defines no"),
        (
            "tasker_test_raises",
            "raise RuntimeError('boom')\n",
            "cannot import module 'tasker_test_raises': RuntimeError: boom",
        ),
        (
            "tasker_test_bad_dep",
            "import tasker_missing_dep\n",
            "cannot import module 'tasker_test_bad_dep': No module named 'tasker_missing_dep'",
        ),
    ],
)
def test_a_module_without_templates_or_failing_to_import_is_an_error(
    module_dir: Path, module: str, body: str, expected: str
) -> None:
    write_module(module_dir, module, body)
    with pytest.raises(TemplateError, match=expected):
        load_templates([module])


def test_the_builder_takes_a_priority() -> None:
    tpl = Template("urgent", priority=9)
    tpl.add_step("a", "tasker.builtin_handlers:noop")
    assert tpl.build().priority == 9
