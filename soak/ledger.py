"""The ledger: one JSON line per fact, appended by every process of the run.

Each line is one ``write(2)`` on a descriptor opened with ``O_APPEND``, so lines from the
workers, the human and the suite never interleave and a killed process loses at most the
line it was writing (a torn last line is counted, not parsed). Kinds (``k``):

- ``plan``: the suite created task ``task`` (workload index ``i``) with this plan.
- ``ok``: a handler is about to return a storable result: ``task``, ``step`` (id),
  ``name``, ``attempt``, ``pid``, ``ppid``, ``t`` (Unix time). Written just before ``return``, so
  a process killed after it has executed the step without the database knowing.
- ``unstorable``: a handler is about to return a result the database must refuse.
- ``human``: the human operator ran ``action`` on ``task`` (``step``): CLI exit ``code``.
- ``fed``: the suite created its last task.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LEDGER_ENV = "SOAK_LEDGER"


class Ledger:
    """Appends lines to, and reads, the ledger file at ``path``."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self._fd: int | None = None
        self._opening = threading.Lock()

    @classmethod
    def from_env(cls) -> Ledger | None:
        path = os.environ.get(LEDGER_ENV)
        return cls(path) if path else None

    def append(self, record: dict[str, Any]) -> None:
        """One ``write(2)``, safe from any thread."""
        if self._fd is None:
            with self._opening:
                if self._fd is None:
                    self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.write(self._fd, (json.dumps(record, separators=(",", ":")) + "\n").encode())

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def read(self, offset: int = 0) -> Lines:
        """Every whole line from byte ``offset`` on (to follow the file as it grows)."""
        lines = Lines(offset=offset)
        if not self.path.exists():
            return lines
        with open(self.path, "rb") as file:
            file.seek(offset)
            data = file.read()
        whole, _, _ = data.rpartition(b"\n")
        lines.offset = offset + len(whole) + (1 if whole else 0)
        for raw in whole.split(b"\n") if whole else []:
            try:
                lines.records.append(json.loads(raw))
            except ValueError:
                lines.torn += 1
        return lines


@dataclass
class Lines:
    records: list[dict[str, Any]] = field(default_factory=list)
    torn: int = 0  # lines that are not JSON (a process killed mid-write)
    offset: int = 0  # where the next read should start

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [r for r in self.records if r.get("k") == kind]
