"""Authentication of the REST API (TASKER_AUTH=on) with tokens made by the real CLI.

401 without a token or with a malformed, unknown or revoked one; 403 with a token that
lacks the scope; writes recorded with the actor ``token:NAME``; the liveness and
readiness probes stay open, ``/health/status`` and ``/metrics`` need a ``tasks:read``
token like every ``/v1`` read; CORS on for the configured origin only.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from api_support import BACKENDS, ApiServer, assert_error, module_database, running_server

pytestmark = pytest.mark.slow

UI_ORIGIN = "https://ui.example"


@dataclass
class AuthApi:
    server: ApiServer
    tokens: dict[str, str]  # name -> plaintext

    def client(self, name: str | None = None) -> httpx.Client:
        return self.server.client(self.tokens[name] if name else None)


@pytest.fixture(scope="module", params=BACKENDS)
def api(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AuthApi]:
    root = tmp_path_factory.mktemp(f"auth-{request.param}")
    env = {
        "TASKER_AUTH": "on",
        "TASKER_CORS_ORIGINS": UI_ORIGIN,
    }
    with module_database(request, request.param, root) as url, running_server(
        url, root, env
    ) as server:  # fmt: skip
        tokens = server.create_tokens(
            {
                "reader": ["tasks:read"],
                "writer": ["tasks:write"],
                "root": ["admin"],
                "ci-bot": ["tasks:read", "tasks:write"],  # --scopes a b
            }
        )
        yield AuthApi(server, tokens)


def create_body(order_id: int = 1) -> dict[str, object]:
    return {"namespace": "apitest", "name": "order", "context": {"order_id": order_id}}


def test_tokens_are_shown_once_in_the_documented_form(api: AuthApi) -> None:
    for token in api.tokens.values():
        assert token.startswith("tk_") and len(token) == 35
    assert len(set(api.tokens.values())) == len(api.tokens)


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Basic dXNlcjpwYXNz",
        "Bearer",
        "Bearer not-a-token",
        "Bearer tk_" + "A" * 32,
        "Bearer tk_" + "A" * 200,
        ("Bearer " + "é" * 10).encode(),  # not ASCII: sent as raw UTF-8 bytes
    ],
)
def test_missing_malformed_or_unknown_tokens_are_401(
    api: AuthApi, authorization: str | bytes | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    with httpx.Client(base_url=api.server.base_url, headers=headers) as client:
        for response in (
            client.get("/v1/tasks"),
            client.post("/v1/tasks", json=create_body()),
            client.get("/v1/templates"),
            client.get("/v1/analytics/performance"),
            client.get("/metrics"),
            client.get("/health/status"),
        ):
            assert_error(response, 401, "unauthorized")
            assert response.headers["www-authenticate"].startswith("Bearer")


def test_a_token_of_one_prefix_and_another_secret_is_401(api: AuthApi) -> None:
    real = api.tokens["reader"]
    forged = real[:8] + ("B" if real[8] != "B" else "C") + real[9:]
    with httpx.Client(
        base_url=api.server.base_url, headers={"Authorization": f"Bearer {forged}"}
    ) as client:
        assert_error(client.get("/v1/tasks"), 401, "unauthorized")


def test_scopes_decide_between_200_and_403(api: AuthApi) -> None:
    with api.client("reader") as reader:
        assert reader.get("/v1/tasks").status_code == 200
        assert reader.get("/v1/templates").status_code == 200
        assert reader.get("/v1/analytics/bottlenecks").status_code == 200
        denied = assert_error(reader.post("/v1/tasks", json=create_body()), 403, "forbidden")
        assert denied["details"] == {
            "required_scope": "tasks:write",
            "token_scopes": ["tasks:read"],
        }
        assert_error(reader.post("/v1/tasks/1/cancel"), 403, "forbidden")

    with api.client("writer") as writer:  # tasks:write implies tasks:read
        created = writer.post("/v1/tasks", json=create_body())
        assert created.status_code == 201, created.text
        tid = created.json()["id"]
        assert writer.get(f"/v1/tasks/{tid}").json()["id"] == tid
        assert tid in [t["id"] for t in writer.get("/v1/tasks").json()["tasks"]]
        assert writer.get(f"/v1/tasks/{tid}/transitions").status_code == 200
        assert writer.get("/v1/events", params={"task_id": tid}).json()["events"]
        assert writer.post(f"/v1/tasks/{tid}/cancel").status_code == 200

    with api.client("root") as admin:
        assert admin.get(f"/v1/tasks/{tid}").json()["status"] == "cancelled"
        assert admin.post("/v1/tasks", json=create_body(2)).status_code == 201
        assert admin.get("/metrics").status_code == 200


def test_probes_and_documents_stay_open_status_and_metrics_need_a_read_token(
    api: AuthApi,
) -> None:
    with api.client() as anonymous:
        assert anonymous.get("/health/live").status_code == 200
        assert anonymous.get("/health/ready").status_code == 200
        assert anonymous.get("/openapi.json").status_code == 200
        assert_error(anonymous.get("/health/status"), 401, "unauthorized")
        assert_error(anonymous.get("/metrics"), 401, "unauthorized")
    with api.client("reader") as reader:
        metrics = reader.get("/metrics")
        assert metrics.status_code == 200 and "tasker_tasks" in metrics.text
        assert reader.get("/health/status").json()["status"] in ("healthy", "degraded")
    with api.client("writer") as writer:  # tasks:write reads too
        assert writer.get("/health/status").status_code == 200
        assert writer.get("/metrics").status_code == 200
    # And the OpenAPI document says so: a token for every route but the two probes
    with api.client() as anonymous:
        spec = anonymous.get("/openapi.json").json()
    open_routes = {
        path for path, operations in spec["paths"].items()
        if not any("security" in operation for operation in operations.values())
    }  # fmt: skip
    assert open_routes == {"/health/live", "/health/ready"}


def test_writes_are_recorded_with_the_token_name_as_actor(api: AuthApi) -> None:
    with api.client("ci-bot") as bot:
        task = bot.post("/v1/tasks", json={**create_body(), "reason": "deploy"}).json()
        tid = task["id"]
        bot.post(f"/v1/tasks/{tid}/steps/validate/resolve", json={"reason": "checked by hand"})
        bot.post(f"/v1/tasks/{tid}/cancel", json={"reason": "rollback"})
        history = bot.get(f"/v1/tasks/{tid}/transitions").json()
    task_rows = [(h["to_state"], h["actor"]) for h in history if h["entity"] == "task"]
    assert ("pending", "token:ci-bot") in task_rows
    assert ("cancelled", "token:ci-bot") in task_rows
    steps = {(h["step_name"], h["to_state"]): h for h in history if h["entity"] == "step"}
    resolved = steps[("validate", "resolved_manually")]
    assert (resolved["actor"], resolved["reason"]) == ("token:ci-bot", "checked by hand")
    assert steps[("ship", "cancelled")]["actor"] == "token:ci-bot"


def test_revocation_takes_effect_on_the_next_request(api: AuthApi) -> None:
    made = api.server.cli("auth", "token", "create", "--name", "temp", "--scopes", "admin")
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    with api.server.client(token) as client:
        assert client.get("/v1/tasks").status_code == 200  # now verified and remembered
        revoked = api.server.cli("auth", "token", "revoke", "temp")
        assert revoked.returncode == 0, revoked.stderr
        assert_error(client.get("/v1/tasks"), 401, "unauthorized")
        assert_error(client.post("/v1/tasks", json=create_body()), 401, "unauthorized")
    again = api.server.cli("auth", "token", "revoke", "temp")
    assert again.returncode == 0  # revoking twice changes nothing


def test_cli_lists_tokens_without_secrets_and_refuses_bad_input(api: AuthApi) -> None:
    with api.client("reader") as reader:
        reader.get("/v1/tasks")
    listed = api.server.cli("auth", "token", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    tokens = {t["name"]: t for t in json.loads(listed.stdout)}
    assert {"reader", "writer", "root", "ci-bot"} <= set(tokens)
    assert tokens["ci-bot"]["scopes"] == ["tasks:read", "tasks:write"]
    assert tokens["reader"]["last_used_at"] is not None
    assert tokens["reader"]["revoked_at"] is None
    assert not any(secret in listed.stdout for secret in api.tokens.values())
    assert "tk_" not in listed.stdout

    table = api.server.cli("auth", "token", "list")
    assert table.returncode == 0 and "ci-bot" in table.stdout and "tk_" not in table.stdout

    for args, message in (
        (["create", "--name", "reader", "--scopes", "admin"], "already exists"),
        (["create", "--name", "x", "--scopes", "tasks:read,deploy"], "unknown scope"),
        (["create", "--name", "bad name", "--scopes", "admin"], "invalid token name"),
        (["revoke", "nobody"], "no API token named 'nobody'"),
    ):
        result = api.server.cli("auth", "token", *args)
        assert result.returncode == 2, (args, result.stderr)
        assert message in result.stderr and result.stdout == ""


def test_cors_answers_the_configured_origin_only(api: AuthApi) -> None:
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization",
    }
    with api.client() as client:
        allowed = client.options("/v1/tasks", headers={"Origin": UI_ORIGIN, **preflight})
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == UI_ORIGIN
        other = client.options("/v1/tasks", headers={"Origin": "https://evil.example", **preflight})
        assert "access-control-allow-origin" not in other.headers
    with api.client("reader") as reader:
        simple = reader.get("/v1/tasks", headers={"Origin": UI_ORIGIN})
        assert simple.headers["access-control-allow-origin"] == UI_ORIGIN
