"""Debian's ``pgbouncer`` in front of the local PostgreSQL, started by the tests that need
it, in transaction pooling mode with fewer server connections than clients, so that a
client's transactions land on different server sessions. Not a test module.

Without the binary the tests skip, loudly; with CI=true they fail instead.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def pgbouncer_binary() -> str:
    found = shutil.which("pgbouncer") or (
        "/usr/sbin/pgbouncer" if os.path.exists("/usr/sbin/pgbouncer") else None
    )
    if found is None:
        message = "pgbouncer is not installed (apt-get install pgbouncer)"
        if IN_CI:
            pytest.fail(message + " (CI=true: the PgBouncer tests are required)")
        pytest.skip(message + " -- SKIPPING the PgBouncer tests")
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def pgbouncer(direct_url: str, *, server_connections: int = 2) -> Iterator[str]:
    """Run PgBouncer for the database of ``direct_url``; yield the URL that goes through it."""
    binary = pgbouncer_binary()
    parts = urlsplit(direct_url)
    user = parts.username or "postgres"
    port = _free_port()
    # PgBouncer refuses to run as root: it runs as postgres then, so its files must be
    # readable and its log writable by that user.
    folder = Path(tempfile.mkdtemp(prefix="tasker-pgbouncer-"))
    folder.chmod(0o777)
    (folder / "users.txt").write_text(f'"{user}" ""\n')
    (folder / "pgbouncer.ini").write_text(
        "[databases]\n"
        f"* = host={parts.hostname or '127.0.0.1'} port={parts.port or 5432}\n"
        "[pgbouncer]\n"
        "listen_addr = 127.0.0.1\n"
        f"listen_port = {port}\n"
        "unix_socket_dir =\n"
        "auth_type = trust\n"
        f"auth_file = {folder}/users.txt\n"
        "pool_mode = transaction\n"
        f"default_pool_size = {server_connections}\n"
        "max_client_conn = 200\n"
        "ignore_startup_parameters = extra_float_digits,options\n"
        f"logfile = {folder}/pgbouncer.log\n"
    )
    for name in ("users.txt", "pgbouncer.ini"):
        (folder / name).chmod(0o644)
    command = [binary, str(folder / "pgbouncer.ini")]
    if os.geteuid() == 0:
        command[1:1] = ["-u", "postgres"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pooled = urlunsplit(parts._replace(netloc=f"{user}@127.0.0.1:{port}"))
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                psycopg.connect(pooled, connect_timeout=2).close()
                break
            except psycopg.OperationalError:
                if process.poll() is not None or time.monotonic() > deadline:
                    log = (folder / "pgbouncer.log").read_text(errors="replace")
                    raise AssertionError(f"pgbouncer did not start:\n{log}") from None
                time.sleep(0.1)
        yield pooled
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        shutil.rmtree(folder, ignore_errors=True)
