"""``tasker.Branch``: what a branching step returns to choose which children run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, init=False)
class Branch:
    """Choose one or more of the step's ``branches``; the others are skipped.

    ``return Branch("express", results={"carrier": "dhl"})``: ``results`` are stored as
    the step's results, as if returned. Choosing a name not in ``branches``, or none, is
    a permanent error of the step that names the choices.
    """

    names: tuple[str, ...]
    results: Any

    def __init__(self, *names: str, results: Any = None):
        object.__setattr__(self, "names", tuple(names))
        object.__setattr__(self, "results", results)


def unwrap(returned: Any) -> tuple[Any, tuple[str, ...] | None]:
    """``(results, chosen branch names)`` of what a handler returned (None: no Branch).
    A name that is not a string is kept as its repr, so the error can show it."""
    if isinstance(returned, Branch):
        return returned.results, tuple(n if isinstance(n, str) else repr(n) for n in returned.names)
    return returned, None
