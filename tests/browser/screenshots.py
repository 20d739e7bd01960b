"""Screenshots of every dashboard page for docs/dashboard.md (``make screenshots``).

What a newcomer sees: ``tasker demo`` in a fresh directory, then ``tasker serve`` on its
database and a ``tasker worker`` beside it, photographed by the same headless Chromium
(Debian's) and Playwright as the browser tests. The login page comes from a second
server on the same database with ``TASKER_AUTH=on``.

    python tests/browser/screenshots.py docs/images/dashboard
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from browser_support import CHROMIUM, CHROMIUM_ARGS, free_port

VIEWPORT = {"width": 1200, "height": 760}
# (file name, path, a part of the page to open and scroll to), in docs/dashboard.md's order
PAGES = [
    ("tasks", "/", None),
    ("tasks-filtered", "/?status=error", None),
    ("task-failed", "/tasks/4", None),
    ("task-traceback", "/tasks/4", "tr[data-step=check_policy] + tr.detail"),
    ("task-map", "/tasks/2", None),
    ("confirm-retry", "/tasks/4/actions/retry", None),
    ("workers", "/workers", None),
    ("templates", "/templates", None),
    ("template", "/templates/examples/expense_approval", None),
    ("analytics", "/analytics", None),
    ("docs", "/docs", None),
]


def tasker(*args: str, env: dict[str, str], **kwargs: object) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "tasker.cli", *args], env=env, **kwargs)  # type: ignore[call-overload]


@contextmanager
def serving(env: dict[str, str], log: Path) -> Iterator[str]:
    port = free_port()
    with log.open("wb") as out:
        process = tasker("serve", "--port", str(port), env=env, stdout=out, stderr=out)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(url + "/health/live", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    if time.monotonic() > deadline or process.poll() is not None:
                        raise SystemExit(f"tasker serve did not start: {log.read_text()}") from None
                time.sleep(0.1)
            yield url
        finally:
            process.terminate()
            process.wait(timeout=40)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder the PNG files are written to")
    out: Path = parser.parse_args().out
    out.mkdir(parents=True, exist_ok=True)
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="tasker-screens-") as tmp:
        root = Path(tmp)
        env = {k: v for k, v in os.environ.items() if not k.startswith("TASKER_")}
        demo = subprocess.run(
            [sys.executable, "-m", "tasker.cli", "demo", "--dir", str(root / "demo")],
            env=env,
            capture_output=True,
            check=True,
        )
        assert b"Done in" in demo.stdout, demo.stdout
        env["TASKER_DATABASE_URL"] = f"sqlite:///{root}/demo/tasker.db"
        worker = tasker(
            "worker",
            "--concurrency",
            "2",
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            with (
                serving(env, root / "serve.log") as url,
                serving({**env, "TASKER_AUTH": "on"}, root / "serve-auth.log") as auth_url,
                sync_playwright() as playwright,
            ):
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                context = browser.new_context(
                    viewport=VIEWPORT, timezone_id="Europe/Berlin", locale="en-GB"
                )
                page = context.new_page()
                time.sleep(1.5)  # the worker's first heartbeat
                for name, path, focus in PAGES:
                    page.goto(url + path)
                    if focus:
                        for summary in page.locator(f"{focus} details > summary").all():
                            summary.click()
                        page.locator(focus).first.scroll_into_view_if_needed()
                    shot(page, out / f"{name}.png")
                page.goto(auth_url + "/")
                shot(page, out / "login.png")
                browser.close()
        finally:
            worker.terminate()
            worker.wait(timeout=40)
    return 0


def shot(page: object, path: Path) -> None:
    page.screenshot(path=str(path))  # type: ignore[attr-defined]
    print(f"{path} ({path.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    raise SystemExit(main())
