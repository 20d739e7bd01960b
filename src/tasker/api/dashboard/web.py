"""The dashboard's plumbing: who is looking (token cookie, scopes), CSRF, forms, and
rendering a page.

**Who.** With authentication off every viewer may act, as the actor ``dashboard``. With
it on, the login page takes an API token and keeps it in an HttpOnly, SameSite=Strict
cookie; every page needs ``tasks:read`` and every action ``tasks:write`` (which grants
``tasks:read`` too; ``admin`` grants both), exactly as the API's routes do. A token
without ``tasks:write`` sees no action buttons, and its POSTs are refused all the same.

**CSRF.** A double-submit token: a random value in an HttpOnly, SameSite=Strict cookie,
repeated in a hidden field of every form; a POST whose two copies differ is refused with
403. Another site can neither read the cookie nor set it, so it cannot forge the field;
being stateless, it works the same across several server processes.

**Pages** are Jinja2 templates with autoescaping on: every value a handler produced
(results, errors, tracebacks, names) is escaped. They send a Content-Security-Policy
that allows only the package's own scripts and styles.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from tasker import __version__
from tasker.api.security import READ, WRITE, authenticator
from tasker.serialization import iso

HERE = Path(__file__).parent
TOKEN_COOKIE = "tasker_token"
CSRF_COOKIE = "tasker_csrf"
ANONYMOUS_ACTOR = "dashboard"
MAX_FORM_BYTES = 1_000_000
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

templates = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
templates.filters["iso"] = iso


class DashboardError(Exception):
    """A page that cannot be shown or an action refused: rendered as an HTML error page."""

    def __init__(self, status: int, title: str, message: str, *, back: str | None = None):
        super().__init__(message)
        self.status = status
        self.title = title
        self.message = message
        self.back = back


class NeedsLogin(Exception):
    """Authentication is on and the viewer has no usable token: the login page, 401."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Viewer:
    """Who is looking at a page. ``can_write``: action buttons are shown."""

    actor: str
    can_write: bool
    auth: bool
    csrf: str
    token_name: str | None = None


def viewer(request: Request) -> Viewer:
    """The viewer of a page (``tasks:read`` checked); NeedsLogin when there is none."""
    csrf = request.cookies.get(CSRF_COOKIE) or _new_csrf(request)
    auth = authenticator(request)
    if auth.verifier is None:
        return Viewer(ANONYMOUS_ACTOR, True, False, csrf)
    text = request.cookies.get(TOKEN_COOKIE)
    if not text:
        raise NeedsLogin("Sign in with an API token to see this page.")
    token = auth.verifier.authenticate(text)
    if token is None:
        raise NeedsLogin("That token is unknown or revoked: sign in again.")
    if not token.allows(READ):
        raise NeedsLogin(f"Token {token.name!r} lacks the scope {READ!r}.")
    return Viewer(token.actor, token.allows(WRITE), True, csrf, token.name)


def writer(request: Request, form: dict[str, str]) -> Viewer:
    """The viewer of an action: its CSRF field checked, then ``tasks:write``."""
    check_csrf(request, form)
    who = viewer(request)
    if not who.can_write:
        raise DashboardError(
            403,
            "Not allowed",
            f"Token {who.token_name!r} lacks the scope {WRITE!r}: it may look, not act.",
        )
    return who


def check_csrf(request: Request, form: dict[str, str]) -> None:
    cookie = request.cookies.get(CSRF_COOKIE, "")
    field = form.get("csrf", "")
    if not cookie or not field or not hmac.compare_digest(cookie, field):
        raise DashboardError(
            403,
            "Form refused",
            "The form's security token does not match this browser's (CSRF check). "
            "Reload the page and try again.",
        )


def _new_csrf(request: Request) -> str:
    value = secrets.token_urlsafe(32)
    request.state.new_csrf = value  # render() sets the cookie
    return value


async def read_form(request: Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body as a dict (the last value of each
    field); parsed here so the API extra needs no multipart library."""
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise DashboardError(413, "Form too large", f"forms are limited to {MAX_FORM_BYTES} bytes")
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError as exc:
        raise DashboardError(400, "Bad form", "the form is not UTF-8 text") from exc
    return {key: values[-1].replace("\x00", "") for key, values in fields.items()}


def secure_cookies(request: Request) -> bool:
    return request.url.scheme == "https"


def render(
    request: Request,
    template: str,
    context: dict[str, Any],
    *,
    status: int = 200,
    who: Viewer | None = None,
) -> HTMLResponse:
    html = templates.get_template(template).render(
        **context, viewer=who, version=__version__, path=request.url.path
    )
    response = HTMLResponse(html, status_code=status)
    finish(request, response)
    return response


def finish(request: Request, response: Response) -> None:
    """Security headers, and the CSRF cookie when this request made one."""
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cache-Control"] = "no-store"
    new_csrf = getattr(request.state, "new_csrf", None)
    if new_csrf:
        response.set_cookie(
            CSRF_COOKIE,
            new_csrf,
            httponly=True,
            samesite="strict",
            secure=secure_cookies(request),
            path="/",
        )


def csrf_for(request: Request) -> str:
    """The CSRF value for a page's forms (made and set as a cookie when missing)."""
    return (
        request.cookies.get(CSRF_COOKIE)
        or getattr(request.state, "new_csrf", None)
        or (_new_csrf(request))
    )
