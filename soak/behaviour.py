"""What one step does when it runs: a :class:`Behaviour`, read by the handlers from the
task context and written by the plan (see :mod:`soak.plan` for the catalogue)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

RETRYABLE = frozenset({"ok", "slow", "flaky", "crash", "hang", "timeout"})
FOR_GOOD = frozenset({"permanent", "exhaust", "unstorable"})
CRASH_KINDS = ("SystemExit", "KeyboardInterrupt", "SoakBaseException")
UNSTORABLE_KINDS = ("nan", "nul", "surrogate", "deep")


@dataclass(frozen=True)
class Behaviour:
    """What one step does when it runs (the catalogue is in :mod:`soak.plan`)."""

    do: str = "ok"
    times: int = 0  # flaky, crash, hang, timeout: misbehave on attempts 1..times
    seconds: float = 0.0  # slow: how long
    kind: str = ""  # crash: which BaseException; unstorable: which value
    retry_after: float | None = None  # flaky: the backoff the handler asks for

    @property
    def for_good(self) -> bool:
        return self.do in FOR_GOOD

    def misbehaves_on(self, attempt: int) -> bool:
        return attempt <= self.times

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v not in (0, 0.0, "", None)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> Behaviour:
        return cls(**data) if data else cls()
