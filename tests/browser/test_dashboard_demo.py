"""What issue 15 calls done: a newcomer runs ``tasker demo``, then ``tasker serve`` on its
database, and sees the demo's workflows, the failed approval with its reason, and can
retry it from the page. SQLite only: that is what the demo makes."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from browser_support import Dashboard, require_browser, serving

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    require_browser()
    root = tmp_path_factory.mktemp("browser-demo")
    made = subprocess.run(
        [sys.executable, "-m", "tasker.cli", "demo", "--dir", str(root / "demo")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert made.returncode == 0 and "Done in" in made.stdout, made.stdout + made.stderr
    assert "http://127.0.0.1:8000/" in made.stdout  # the URL it tells the newcomer to open
    with serving(f"sqlite:///{root}/demo/tasker.db", root, project=False) as server:
        yield server


def test_the_demo_workflows_and_the_failed_approval_with_its_reason(
    page: Any, demo: Dashboard
) -> None:
    page.goto(demo.base_url + "/")
    listed = page.locator("tr[data-task] td:nth-child(2)").all_inner_texts()
    templates = {text.split()[0] for text in listed}
    assert templates == {
        "examples/ecommerce_order",
        "examples/data_pipeline",
        "examples/expense_approval",
    }
    assert int(page.locator("[data-count=error]").inner_text()) == 1
    # The failed one, opened from the list, says why
    page.goto(demo.base_url + "/?status=error")
    page.locator("tr[data-task] a").first.click()
    policy = page.locator("tr[data-step=check_policy]")
    assert policy.get_attribute("data-status") == "error"
    detail = page.locator(f"#{policy.get_attribute('id')} + tr.detail .step-error")
    assert "exceeds the approval limit" in detail.inner_text()
    # The data pipeline's map is drawn as one node with its count
    page.goto(demo.base_url + "/?name=data_pipeline")
    page.locator("tr[data-task] a").first.click()
    node = page.locator("svg.dag g.node[data-step=transform] text")
    assert re.fullmatch(r"transform \N{MULTIPLICATION SIGN}\d+", node.text_content() or "")
    assert page.locator("svg.dag g.node[data-step^='transform[']").count() == 0


def test_the_failed_approval_can_be_retried_from_the_page(page: Any, demo: Dashboard) -> None:
    page.goto(demo.base_url + "/?status=error")
    page.locator("tr[data-task] a").first.click()
    task_id = int(page.url.rsplit("/", 1)[1])
    page.click("a.button:has-text('Retry task')")
    page.fill("textarea[name=reason]", "limit raised")
    page.click("button:has-text('Retry the task')")
    page.wait_for_url(re.compile(rf"/tasks/{task_id}\?notice="))
    # The failed step is re-opened with its attempts reset, by the dashboard
    policy = page.locator("tr[data-step=check_policy]")
    assert policy.get_attribute("data-status") == "pending"
    assert "limit raised" in page.locator("table.history").inner_text()
    assert demo.status(task_id) != "error"
