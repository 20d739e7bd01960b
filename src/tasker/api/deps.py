"""Building blocks shared by the route modules: the Tasker dependency, common parameters,
documented error responses."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from pydantic import BeforeValidator

from tasker.api.schemas import NO_NUL, ErrorBody
from tasker.facade import Tasker


def get_tasker(request: Request) -> Tasker:
    tasker: Tasker = request.app.state.tasker
    return tasker


TaskerDep = Annotated[Tasker, Depends(get_tasker)]
# A filter on a name: stored text, so no NUL (PostgreSQL would refuse it).
Filter = Annotated[str | None, Query(min_length=1, max_length=200, pattern=NO_NUL)]


_INTEGER = re.compile(r"^-?[0-9]+$")


def plain_integer(value: Any) -> Any:
    """Refuse what pydantic's lax mode would turn into an int: "3\\u0085" (it strips Unicode
    whitespace), "1e3", "3.0". A URL's integer is written in plain digits."""
    if isinstance(value, str) and not _INTEGER.match(value):
        raise ValueError("expected an integer written in plain digits")
    return value


# Metadata for an integer path or query parameter, next to its Path()/Query() (a nested
# Annotated would garble the constraints in the OpenAPI document).
DIGITS_ONLY = BeforeValidator(plain_integer)


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for error statuses, all with the error body."""
    return {status: {"model": ErrorBody} for status in statuses}


# Errors any /v1 route may answer: auth, bad input, body too large, database down.
COMMON_ERRORS = error_responses(401, 403, 413, 422, 503)


def group_levels(levels: Iterable[tuple[str, int]]) -> list[list[str]]:
    """``[(name, level), ...]`` -> names by level, roots first, input order kept."""
    grouped: dict[int, list[str]] = {}
    for name, level in levels:
        grouped.setdefault(level, []).append(name)
    return [grouped[level] for level in sorted(grouped)]
