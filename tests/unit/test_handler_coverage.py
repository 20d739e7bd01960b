"""What a worker can serve: the handlers of its templates that load, and why the others do not."""

from __future__ import annotations

import pytest

from tasker import Template
from tasker.definitions import TemplateRegistry
from tasker.definitions.parse import parse_template
from tasker.exceptions import TemplateError

NOOP = "tasker.builtin_handlers:noop"


def in_process(step: object) -> None:
    return None


def yaml_template(namespace: str, name: str, *handlers: str) -> dict[str, object]:
    steps = [{"name": f"s{i}", "handler": handler} for i, handler in enumerate(handlers)]
    return {"namespace": namespace, "name": name, "steps": steps}


@pytest.fixture
def registry() -> TemplateRegistry:
    registry = TemplateRegistry()
    for data in (
        yaml_template("ops", "ping", NOOP),
        yaml_template("shop", "order", "shop_missing:validate", NOOP),
        yaml_template("shop", "refund", "shop_missing:refund"),
        yaml_template("shop", "audit", "tasker.builtin_handlers:no_such_function"),
    ):
        registry.add(parse_template(data, check_handlers=False), check_handlers=False)
    flow = Template("inline", namespace="py")
    flow.add_step("only", in_process)  # a function given in-process: served as registered
    registry.add(flow)
    return registry


def test_the_handlers_that_load_are_served_and_the_others_say_why(
    registry: TemplateRegistry,
) -> None:
    served = registry.load_handlers()

    assert served.handlers == (NOOP, f"{__name__}:in_process")
    assert served.templates == ("ops/ping@0.1.0", "py/inline@0.1.0")
    assert served.partly == {"shop/order@0.1.0": ("s0",)}
    assert served.unserved == ("shop/audit@0.1.0", "shop/refund@0.1.0")
    assert served.errors["shop_missing:validate"].endswith(
        "ModuleNotFoundError: No module named 'shop_missing'"
    )
    audit_error = served.errors["tasker.builtin_handlers:no_such_function"]
    assert "has no attribute 'no_such_function'" in audit_error
    line = served.summary()
    assert line.startswith("serves templates: ops/ping@0.1.0, py/inline@0.1.0; ")
    assert "partly: shop/order@0.1.0 (not steps s0)" in line
    assert "does not serve: shop/audit@0.1.0, shop/refund@0.1.0" in line
    assert "No module named 'shop_missing'" in line


def test_only_the_namespaces_a_worker_claims_from_are_resolved(
    registry: TemplateRegistry,
) -> None:
    served = registry.load_handlers(["ops"])
    assert served.handlers == (NOOP,)
    assert served.templates == ("ops/ping@0.1.0",)
    assert served.errors == {} and served.summary() == "serves templates: ops/ping@0.1.0"
    assert registry.load_handlers(["nowhere"]).summary() == "serves templates: none"


def test_loading_templates_still_imports_handlers_unless_told_not_to() -> None:
    data = yaml_template("shop", "order", "shop_missing:validate")
    with pytest.raises(TemplateError, match="No module named 'shop_missing'"):
        TemplateRegistry().add(parse_template(data, check_handlers=False))
    with pytest.raises(TemplateError, match="malformed"):
        parse_template(yaml_template("shop", "bad", "not a path"), check_handlers=False)
