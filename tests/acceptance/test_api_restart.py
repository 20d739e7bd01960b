"""After PostgreSQL restarts, the API and the facade answer their very first request: a
pooled connection the restart cut is replaced, not served (503 until the pool noticed).

The test restarts the local cluster once: it disturbs every test running at the time.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

import pytest
from api_support import module_database, running_server

from postgres_restart import restart_postgres, restartable_postgres
from tasker import Tasker
from tasker.store import open_database

pytestmark = [pytest.mark.postgres, pytest.mark.slow, restartable_postgres]

POOL_SIZE = 4


def test_the_first_requests_after_a_database_restart_succeed(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    with (
        module_database(request, "postgres", tmp_path) as url,
        running_server(url, tmp_path) as server,
        server.client() as client,
        Tasker(open_database(url, max_size=POOL_SIZE)) as tasker,
    ):
        # Given an API and a facade whose pools hold open connections
        with ThreadPoolExecutor(8) as threads:
            answers = list(threads.map(lambda _: client.get("/v1/tasks").status_code, range(16)))
        assert answers == [200] * 16
        with ExitStack() as reads:  # every connection of the facade's pool at once
            for _ in range(POOL_SIZE):
                reads.enter_context(tasker.database.read()).fetch_all("list_workers")

        # When PostgreSQL restarts, cutting every one of those connections
        restart_postgres()

        # Then the very first requests succeed, the readiness probe first
        for path in ("/health/ready", "/v1/tasks", "/health/status", "/health/ready"):
            response = client.get(path)
            assert response.status_code == 200, (path, response.text)
        # And so does the facade, on every connection of its pool
        for _ in range(POOL_SIZE + 1):
            assert tasker.list_tasks() == []
