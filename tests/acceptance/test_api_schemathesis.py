"""Schemathesis against the running API: requests generated from its own OpenAPI document,
valid ones and invalid ones, for every operation, on both backends (PostgreSQL refuses
more inputs than SQLite does, a NUL character for one).

Each response must not be a server error, must use a status the document declares, must
match the declared content type and schema, and an invalid request must be refused.
Bounded: at most 20 examples per operation and mode, no deadline (the server is a
subprocess), no example database.

``schemathesis.pytest.from_fixture`` would be the natural loader, but with pytest 9 it
fails (schemathesis 4.32.5 sets ``request.node._nodeid``, which pytest 9 no longer has);
so each operation is its own parametrised test driving ``operation.as_strategy()``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from api_support import BACKENDS, ApiServer, module_server

from tasker.api import create_app
from tasker.facade import Tasker
from tasker.store import open_database

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402  (after importorskip)
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

pytestmark = pytest.mark.slow

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]

# A stream answers for as long as the client listens (routes_events.STREAM_SECONDS): each
# generated call would wait that long. test_api_events.py reads it as a client would.
ENDLESS = {"/v1/events/stream"}


def _cases() -> list[Any]:
    """(method, path, mode) for every operation of the document, read from an app built
    here (no server); negative mode only where there is an input to get wrong."""
    with Tasker(open_database("sqlite:///:memory:")) as tasker:
        spec = create_app(tasker, auth=False).openapi()
    cases = []
    for path, operations in sorted(spec["paths"].items()):
        if path in ENDLESS:
            continue
        for method, operation in sorted(operations.items()):
            modes = [GenerationMode.POSITIVE]
            if operation.get("parameters") or operation.get("requestBody"):
                modes.append(GenerationMode.NEGATIVE)
            for mode in modes:
                label = f"{method.upper()} {path} {mode.value}"
                cases.append(pytest.param(method.upper(), path, mode, id=label))
    return cases


@pytest.fixture(scope="module", params=BACKENDS)
def api(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ApiServer]:
    with module_server(request, tmp_path_factory, "fuzz") as server:
        with server.client() as client:  # something to find, so lookups are not all 404
            for order_id in range(3):
                body = {"namespace": "apitest", "name": "order", "context": {"order_id": order_id}}
                assert client.post("/v1/tasks", json=body).status_code == 201
        yield server


@pytest.fixture(scope="module")
def api_schema(api: ApiServer) -> Any:
    schema = schemathesis.openapi.from_url(f"{api.base_url}/openapi.json")
    # A generated body over the API's size limit is refused with 413 (declared by every
    # operation), which schemathesis does not count as a rejection by default.
    rejection = schema.config.checks.negative_data_rejection
    rejection.expected_statuses = [*rejection.expected_statuses, "413"]
    return schema


@pytest.mark.parametrize(("method", "path", "mode"), _cases())
def test_operation_conforms_to_the_document(
    api_schema: Any, method: str, path: str, mode: GenerationMode
) -> None:
    operation = api_schema[path][method]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=20,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def conforms(case: Any) -> None:
        case.call_and_validate(checks=CHECKS)

    conforms()
