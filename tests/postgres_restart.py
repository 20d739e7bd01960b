"""Restarting the local PostgreSQL cluster, for tests of what survives a database restart.

A restart cuts every connection of every test running at the time (other sessions'
tests included): use it in a few tests only, each marked ``restartable_postgres``.
"""

from __future__ import annotations

import os
import subprocess
import time

import pytest

restartable_postgres = pytest.mark.skipif(
    not os.path.isdir("/etc/postgresql") or os.geteuid() != 0,
    reason="needs a local PostgreSQL cluster this test may restart",
)


def restart_postgres() -> None:
    """Restart the cluster (fast shutdown: connections are cut) and wait until it accepts
    connections again."""
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart", "-m", "fast"],
        check=True,
        capture_output=True,
        timeout=60,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if subprocess.run(["pg_isready", "-h", "127.0.0.1", "-q"]).returncode == 0:
            return
        time.sleep(0.2)
    raise AssertionError("PostgreSQL did not come back")
