"""Bearer-token authentication and scopes for the REST API.

With authentication off every caller is the actor ``api``. With it on, every route but the
probes ``/health/live`` and ``/health/ready`` needs ``Authorization: Bearer TOKEN``: no, a
malformed, an unknown or a revoked token is 401; a token without the route's scope is 403.
GET routes (``/metrics`` and ``/health/status`` included) need ``tasks:read``, POST routes
``tasks:write``. ``tasks:write`` implies ``tasks:read`` (a client reads back what it
creates) and ``admin`` implies both: ``tasker.auth.GRANTS``, which the dashboard obeys too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from tasker.api.errors import ApiError
from tasker.auth import READ, WRITE, ApiToken, TokenVerifier

__all__ = ["READ", "WRITE", "Authenticator", "Principal", "Reader", "Writer", "require"]
ANONYMOUS_ACTOR = "api"

bearer = HTTPBearer(
    auto_error=False,
    description="An API token (`tasker auth token create`); required when TASKER_AUTH=on.",
)


@dataclass(frozen=True)
class Principal:
    """Who is calling: ``actor`` is written into the history of every change they make."""

    actor: str
    token: ApiToken | None = None


class Authenticator:
    """Per-app authentication settings and the token verifier (kept on ``app.state``)."""

    def __init__(self, verifier: TokenVerifier | None):
        self.verifier = verifier  # None: authentication is off

    @property
    def enabled(self) -> bool:
        return self.verifier is not None

    def check(self, credentials: HTTPAuthorizationCredentials | None, scope: str) -> Principal:
        if self.verifier is None:
            return Principal(ANONYMOUS_ACTOR)
        challenge = {"WWW-Authenticate": 'Bearer realm="tasker"'}
        if credentials is None:
            raise ApiError(
                401,
                "unauthorized",
                "missing bearer token (Authorization: Bearer TOKEN)",
                headers=challenge,
            )
        token = self.verifier.authenticate(credentials.credentials)
        if token is None:
            raise ApiError(
                401,
                "unauthorized",
                "invalid or revoked token",
                None,
                {"WWW-Authenticate": 'Bearer realm="tasker", error="invalid_token"'},
            )
        if not token.allows(scope):
            raise ApiError(
                403,
                "forbidden",
                f"token {token.name!r} lacks the scope {scope!r}",
                {"required_scope": scope, "token_scopes": list(token.scopes)},
            )
        return Principal(token.actor, token)


def authenticator(request: Request) -> Authenticator:
    auth: Authenticator = request.app.state.authenticator
    return auth


def require(scope: str) -> Callable[..., Principal]:
    """A dependency that authenticates the caller and checks ``scope``."""

    def dependency(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> Principal:
        return authenticator(request).check(credentials, scope)

    return dependency


Reader = Annotated[Principal, Depends(require(READ))]
Writer = Annotated[Principal, Depends(require(WRITE))]
