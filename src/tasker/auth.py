"""API tokens for the REST API: shown once, stored as a salted hash, checked per request.

A token reads ``tk_`` followed by 32 URL-safe random characters (192 bits). The database
keeps its first :data:`PREFIX_LENGTH` characters in clear, to find candidate rows without a
scan, and a PBKDF2-HMAC-SHA256 hash of the whole token with a random salt; candidates are
compared with :func:`hmac.compare_digest`. The plaintext is never stored.

Scopes (:data:`GRANTS`): ``tasks:read`` (every GET under ``/v1``), ``tasks:write`` (every
POST, and every GET too: a client that may create a task must be able to read it back and
follow it) and ``admin``, which implies both. So a token is read-only or read-write; there is
no write-only token. A write made with a token is recorded with the actor ``token:NAME``.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import re
import secrets
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from tasker.exceptions import DuplicateKey, NotFound, TransientStoreError, ValidationError
from tasker.facade import Tasker
from tasker.serialization import iso
from tasker.store.database import Json, Row

__all__ = [
    "GRANTS",
    "HASH_ITERATIONS",
    "SCOPES",
    "ApiToken",
    "TokenVerifier",
    "create_token",
    "hash_token",
    "list_tokens",
    "revoke_token",
]

ADMIN = "admin"
READ = "tasks:read"
WRITE = "tasks:write"
SCOPES = (ADMIN, READ, WRITE)
# What a token holding each scope may do: writing implies reading, admin implies both.
GRANTS: dict[str, frozenset[str]] = {
    ADMIN: frozenset({ADMIN, READ, WRITE}),
    WRITE: frozenset({READ, WRITE}),
    READ: frozenset({READ}),
}
TOKEN_MARK = "tk_"
PREFIX_LENGTH = 8  # characters of the plaintext kept in clear for lookup ("tk_" + 5)
# OWASP's 2023 figure for PBKDF2-HMAC-SHA256 (~0.1 s here). Tokens are random, so this is
# defence in depth; TokenVerifier pays it once per token per process, not per request.
HASH_ITERATIONS = 600_000
HASH_ALGORITHM = "pbkdf2_sha256"
# last_used_at is written at most this often per token, so authenticated reads rarely write.
TOUCH_INTERVAL = timedelta(seconds=60)

_TOKEN_PATTERN = re.compile(r"^tk_[A-Za-z0-9_-]{32}$")
_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@:-]{0,99}$")


@dataclass(frozen=True)
class ApiToken:
    """A stored token, without its secret."""

    id: int
    name: str
    scopes: tuple[str, ...]
    created_at: datetime
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None

    @property
    def actor(self) -> str:
        """How writes made with this token appear in the transition history."""
        return f"token:{self.name}"

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def allows(self, scope: str) -> bool:
        """Whether one of the token's scopes grants ``scope`` (:data:`GRANTS`)."""
        return any(scope in GRANTS.get(held, ()) for held in self.scopes)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "scopes": list(self.scopes),
            "created_at": iso(self.created_at),
            "last_used_at": iso(self.last_used_at),
            "revoked_at": iso(self.revoked_at),
        }

    @classmethod
    def from_row(cls, row: Row) -> ApiToken:
        return cls(
            id=row["id"],
            name=row["name"],
            scopes=tuple(row["scopes"] or ()),
            created_at=row["created_at"],
            last_used_at=row["last_used_at"],
            revoked_at=row["revoked_at"],
        )


def hash_token(token: str, salt: str, iterations: int = HASH_ITERATIONS) -> str:
    """``pbkdf2_sha256$ITERATIONS$HEX``: the iteration count travels with the hash, so it can
    be raised later without invalidating existing tokens."""
    digest = hashlib.pbkdf2_hmac("sha256", token.encode(), bytes.fromhex(salt), iterations)
    return f"{HASH_ALGORITHM}${iterations}${digest.hex()}"


def _hash_matches(token: str, salt: str, stored: str) -> bool:
    try:
        algorithm, iterations, _ = stored.split("$")
        if algorithm != HASH_ALGORITHM:
            return False
        candidate = hash_token(token, salt, int(iterations))
    except ValueError:  # a malformed row never authenticates anyone
        return False
    return hmac.compare_digest(candidate.encode(), stored.encode())


def check_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    """The scopes, deduplicated in canonical order; ValidationError lists unknown ones."""
    given = list(scopes)
    unknown = sorted({s for s in given if s not in SCOPES})
    if unknown:
        raise ValidationError(
            f"unknown scope(s): {', '.join(unknown)}; known scopes: {', '.join(SCOPES)}",
            errors=[f"unknown scope {s!r}" for s in unknown],
        )
    if not given:
        raise ValidationError(f"a token needs at least one scope: {', '.join(SCOPES)}")
    return tuple(s for s in SCOPES if s in given)


def check_name(name: str) -> str:
    if not _NAME_PATTERN.match(name):
        raise ValidationError(
            f"invalid token name {name!r}: 1 to 100 letters, digits, '_', '.', '@', ':' or "
            "'-', starting with a letter or digit"
        )
    return name


def create_token(tasker: Tasker, name: str, scopes: Iterable[str]) -> str:
    """Store a new token named ``name`` and return its plaintext (the only time it is seen)."""
    check_name(name)
    canonical = check_scopes(scopes)
    token = TOKEN_MARK + secrets.token_urlsafe(24)  # 24 bytes -> 32 characters
    salt = secrets.token_hex(16)
    token_hash = hash_token(token, salt)
    now = tasker.now()
    try:
        tasker.write(
            lambda c: c.fetch_one(
                "insert_api_token",
                name=name,
                token_prefix=token[:PREFIX_LENGTH],
                salt=salt,
                token_hash=token_hash,
                scopes=Json(list(canonical)),
                now=now,
            )
        )
    except DuplicateKey:
        raise ValidationError(
            f"a token named {name!r} already exists (names are never reused, even revoked)"
        ) from None
    return token


def revoke_token(tasker: Tasker, name: str) -> ApiToken:
    """Revoke the token ``name`` (at once: the next request with it gets 401).

    Revoking a revoked token changes nothing; an unknown name raises NotFound.
    """
    row = tasker.write(lambda c: c.fetch_one("revoke_api_token", name=name, now=tasker.now()))
    if row is not None:
        return ApiToken.from_row(row)
    for token in list_tokens(tasker):
        if token.name == name:
            return token
    raise NotFound(f"no API token named {name!r}")


def list_tokens(tasker: Tasker) -> list[ApiToken]:
    """Every token, revoked ones included, sorted by name."""
    return [ApiToken.from_row(r) for r in tasker.read(lambda c: c.fetch_all("list_api_tokens"))]


class TokenVerifier:
    """Authenticates bearer tokens against the database.

    Every call reads the token's row, so a revocation takes effect on the next request. The
    slow hash is checked once per token and process: afterwards a SHA-256 of the presented
    token is compared with the one remembered for that row (a bounded LRU in memory).
    """

    def __init__(self, tasker: Tasker, *, cache_size: int = 1024):
        self._tasker = tasker
        self._cache_size = cache_size
        self._verified: OrderedDict[tuple[int, str], bytes] = OrderedDict()
        self._lock = threading.Lock()

    def authenticate(self, token: str) -> ApiToken | None:
        """The live token ``token`` is, or None (unknown, malformed or revoked)."""
        if not _TOKEN_PATTERN.match(token):
            return None
        rows = self._tasker.read(
            lambda c: c.fetch_all("find_api_tokens_by_prefix", token_prefix=token[:PREFIX_LENGTH])
        )
        for row in rows:
            if self._matches(token, row):
                found = ApiToken.from_row(row)
                self._touch(found)
                return found
        return None

    def _matches(self, token: str, row: Row) -> bool:
        key = (row["id"], row["token_hash"])
        fast = hashlib.sha256(token.encode()).digest()
        with self._lock:
            known = self._verified.get(key)
            if known is not None:
                self._verified.move_to_end(key)
        if known is not None:
            return hmac.compare_digest(known, fast)
        if not _hash_matches(token, row["salt"], row["token_hash"]):
            return False
        with self._lock:
            self._verified[key] = fast
            while len(self._verified) > self._cache_size:
                self._verified.popitem(last=False)
        return True

    def _touch(self, token: ApiToken) -> None:
        now = self._tasker.now()
        if token.last_used_at is not None and now - token.last_used_at < TOUCH_INTERVAL:
            return
        # last_used_at is advisory: a busy database must not fail the request.
        with contextlib.suppress(TransientStoreError):
            self._tasker.write(
                lambda c: c.execute(
                    "touch_api_token", id=token.id, now=now, used_before=now - TOUCH_INTERVAL
                ),
                attempts=1,
            )
