"""What the database can store: the one check for every document and string that
reaches it, from the CLI, the REST API and the worker alike.

A document (a task context, a step's results, a signal payload) is stored as JSON on
both backends. To be stored faithfully and read back by every entry point it must:
- hold only JSON values (dict with string keys, list, str, int, float, bool, None);
- hold no NaN or infinity (not JSON), no NUL character and no lone surrogate in any
  string (PostgreSQL's text and jsonb refuse them; SQLite would store what nothing can
  read back);
- nest at most ``MAX_DEPTH`` levels (deeper documents crash JSON encoders and make
  every page that lists the row fail);
- encode to at most ``max_bytes`` of JSON (results: ``TASKER_MAX_RESULT_BYTES``,
  default 1 MiB).
"""

from __future__ import annotations

import json
import math
from typing import Any

from tasker.exceptions import ValidationError

MAX_DEPTH = 64
"""Deepest nesting of a context, results or payload document (levels)."""

DEFAULT_MAX_RESULT_BYTES = 1024 * 1024
"""Largest step result accepted, as JSON (bytes); ``TASKER_MAX_RESULT_BYTES``."""

MAX_PROBLEMS = 20  # a document with a million bad strings lists the first twenty


def problems(value: Any, *, max_depth: int = MAX_DEPTH) -> list[str]:
    """Every part of ``value`` that cannot be stored, as ``"$.path: what is wrong"``.

    Walks iteratively, so a document nested a million levels deep costs no recursion.
    """
    found: list[str] = []
    stack: list[tuple[Any, str, int]] = [(value, "$", 0)]
    while stack and len(found) < MAX_PROBLEMS:
        item, path, depth = stack.pop()
        if depth > max_depth:
            found.append(f"{_short(path)}: nested deeper than {max_depth} levels")
            continue
        if item is None or isinstance(item, bool | int):
            continue
        if isinstance(item, float):
            if not math.isfinite(item):
                name = "NaN" if math.isnan(item) else ("Infinity" if item > 0 else "-Infinity")
                found.append(f"{path}: {name} is not a JSON number (numbers must be finite)")
        elif isinstance(item, str):
            found.extend(f"{path}: {p}" for p in text_problems(item))
        elif isinstance(item, dict):
            for key, child in reversed(list(item.items())):
                if not isinstance(key, str):
                    found.append(f"{path}: key {key!r} is not a string")
                    continue
                found.extend(f"{path} key {key!r}: {p}" for p in text_problems(key))
                stack.append((child, f"{path}.{key}", depth + 1))
        elif isinstance(item, list | tuple):
            for index in reversed(range(len(item))):
                stack.append((item[index], f"{path}[{index}]", depth + 1))
        else:
            found.append(f"{path}: {type(item).__name__!r} is not a JSON value")
    return found


def _short(path: str, limit: int = 60) -> str:
    return path if len(path) <= limit else f"{path[: limit // 2]}…{path[-limit // 2 :]}"


def text_problems(text: str) -> list[str]:
    """What makes a string unstorable: a NUL character, a lone surrogate."""
    found = []
    if "\x00" in text:
        found.append("contains a NUL character")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        found.append("is not valid Unicode (lone surrogate)")
    return found


def check_storable(
    value: Any, what: str, *, max_bytes: int | None = None, max_depth: int = MAX_DEPTH
) -> None:
    """Raise ``ValidationError("<what> is not storable: …")`` listing every problem, or
    return. ``max_bytes`` limits the JSON encoding's size (None: no limit)."""
    found = problems(value, max_depth=max_depth)
    if not found and max_bytes is not None:
        size = len(json.dumps(value, separators=(",", ":")).encode())
        if size > max_bytes:
            found.append(f"$: {size} bytes as JSON, more than the limit of {max_bytes} bytes")
    if found:
        raise ValidationError(f"{what} is not storable: {'; '.join(found)}", errors=found)


def check_text(value: str, what: str) -> None:
    """Raise ``ValidationError`` naming ``what`` if the string cannot be stored."""
    found = text_problems(value)
    if found:
        raise ValidationError(f"{what} is not storable: {'; '.join(found)}", errors=found)


def storable_text(text: str) -> str:
    """``text`` with what no database can store made visible instead: NUL as ``\\x00``,
    a lone surrogate as ``\\udXXX``. For messages Tasker writes, never for user data."""
    if "\x00" in text:
        text = text.replace("\x00", "\\x00")
    return text.encode("utf-8", "backslashreplace").decode("utf-8")
