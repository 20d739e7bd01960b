"""The dashboard with ``TASKER_AUTH=on``, in headless Chromium against a real ``tasker
serve`` on both backends: the 401 login page, a read-only token that sees no action and
whose POST is refused, a write-only token that may look and act (tasks:write implies
tasks:read), and a form whose CSRF field does not match refused too."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from browser_support import BACKENDS, Dashboard, module_database, require_browser, serving

pytestmark = pytest.mark.slow


@dataclass
class Secured:
    server: Dashboard
    reader: str  # tasks:read
    operator: str  # tasks:read tasks:write
    writer: str  # tasks:write alone
    failed_task: int  # in error, so it offers a retry


@pytest.fixture(scope="module", params=BACKENDS)
def secured(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Secured]:
    require_browser()
    root = tmp_path_factory.mktemp(f"browser-auth-{request.param}")
    env = {"TASKER_AUTH": "on"}
    with module_database(request, request.param, root) as url, serving(url, root, env) as server:
        tokens = {}
        for name, scopes in (
            ("reader", ["tasks:read"]),
            ("operator", ["tasks:read", "tasks:write"]),
            ("writer", ["tasks:write"]),
        ):
            made = server.cli("auth", "token", "create", "--name", name, "--scopes", *scopes)
            assert made.returncode == 0, made.stderr
            tokens[name] = made.stdout.strip()
        failed = server.gated(f"closed-{uuid.uuid4().hex[:8]}", token=tokens["operator"])
        server.work()
        assert server.status(failed, token=tokens["operator"]) == "error"
        yield Secured(server, tokens["reader"], tokens["operator"], tokens["writer"], failed)


def sign_in(page: Any, secured: Secured, token: str, path: str = "/") -> None:
    response = page.goto(secured.server.base_url + path)
    assert response.status == 401
    page.fill("input[name=token]", token)
    page.press("input[name=token]", "Enter")
    page.wait_for_url(re.compile(re.escape(path) + "$"))


def csrf_cookie(page: Any) -> str:
    cookies = {c["name"]: c for c in page.context.cookies()}
    assert cookies["tasker_token"]["httpOnly"] and cookies["tasker_token"]["sameSite"] == "Strict"
    value: str = cookies["tasker_csrf"]["value"]
    return value


def test_without_a_token_pages_are_the_401_login_page(page: Any, secured: Secured) -> None:
    for path in ("/", f"/tasks/{secured.failed_task}", "/workers", "/analytics"):
        response = page.goto(secured.server.base_url + path)
        assert response.status == 401, path
        assert page.locator("h1").inner_text() == "Sign in"
        assert page.locator("label[for=token]").inner_text() == "API token"
    # A wrong token is refused and asked for again
    page.fill("input[name=token]", "tk_" + "A" * 32)
    page.press("input[name=token]", "Enter")
    assert "unknown or revoked" in page.locator("p.error").inner_text()
    # The operator's token opens the page it asked for, with its actions
    sign_in(page, secured, secured.operator, f"/tasks/{secured.failed_task}")
    assert page.locator("a.button:has-text('Retry task')").count() == 1
    assert page.locator(".signout span").inner_text() == "operator"


def test_a_read_only_token_sees_no_action_and_its_post_is_refused(
    page: Any, secured: Secured
) -> None:
    task_id = secured.failed_task
    sign_in(page, secured, secured.reader, f"/tasks/{task_id}")
    # The page shows the failure but offers no action
    assert page.locator("tr[data-step=charge]").get_attribute("data-status") == "error"
    assert page.locator("a.button").count() == 0
    assert "(read-only)" in page.locator(".signout").inner_text()
    assert page.goto(f"{secured.server.base_url}/tasks/{task_id}/actions/retry").status == 403
    # A POST made by hand, with a matching CSRF field, is refused all the same
    response = page.request.post(
        f"{secured.server.base_url}/tasks/{task_id}/actions/retry",
        form={"csrf": csrf_cookie(page), "reason": "not allowed"},
        max_redirects=0,
    )
    assert response.status == 403 and "lacks the scope" in response.text()
    assert secured.server.status(task_id, token=secured.operator) == "error"


def test_a_write_only_token_may_look_and_act(page: Any, secured: Secured) -> None:
    # Given a token with tasks:write alone: it signs in (pages need tasks:read)
    sign_in(page, secured, secured.writer, f"/tasks/{secured.failed_task}")
    # Then it sees the task with its actions, as a read-write token does
    assert page.locator("tr[data-step=charge]").get_attribute("data-status") == "error"
    assert page.locator("a.button:has-text('Retry task')").count() == 1
    assert "(read-only)" not in page.locator(".signout").inner_text()
    assert page.goto(f"{secured.server.base_url}/workers").status == 200


def test_a_form_whose_csrf_field_does_not_match_is_refused(page: Any, secured: Secured) -> None:
    task_id = secured.failed_task
    sign_in(page, secured, secured.operator, f"/tasks/{task_id}")
    page.click("a.button:has-text('Retry task')")
    page.wait_for_url(re.compile(r"/actions/retry$"))
    # Given the confirmation form with its CSRF field forged (as another site would)
    page.eval_on_selector(
        "form[action$='/actions/retry'] input[name=csrf]", "field => { field.value = 'forged'; }"
    )
    page.fill("textarea[name=reason]", "forged")
    with page.expect_response(re.compile(r"/actions/retry$")) as posted:
        page.click("button:has-text('Retry the task')")
    assert posted.value.status == 403
    assert page.locator("h1").inner_text() == "Form refused"
    # And without the field at all
    response = page.request.post(
        f"{secured.server.base_url}/tasks/{task_id}/actions/retry", form={"reason": "x"}
    )
    assert response.status == 403
    assert secured.server.status(task_id, token=secured.operator) == "error"
    # While the real form still works
    page.goto(f"{secured.server.base_url}/tasks/{task_id}/actions/retry")
    page.fill("textarea[name=reason]", "a real retry")
    page.click("button:has-text('Retry the task')")
    page.wait_for_url(re.compile(rf"/tasks/{task_id}\?notice="))
    assert secured.server.status(task_id, token=secured.operator) != "error"
