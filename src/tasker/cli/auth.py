"""`tasker auth token create|revoke|list`: API tokens (shown once, stored hashed).

Errors propagate to the CLI's error boundary (``main``): one ``error: …`` line, exit 2 for
bad input (unknown scope, duplicate or unknown name), 3 when the database is unreachable.
"""

from __future__ import annotations

from typing import Annotated

import typer

from tasker import auth
from tasker.cli import common
from tasker.exceptions import ValidationError

app = typer.Typer(name="auth", help="API tokens (shown once, stored hashed).", no_args_is_help=True)
token_app = typer.Typer(
    name="token", help="Create, revoke and list API tokens.", no_args_is_help=True
)
app.add_typer(token_app, name="token")


def split_scopes(values: list[str]) -> list[str]:
    """``--scopes a b``, ``--scopes a --scopes b`` and ``--scopes a,b`` all mean [a, b]."""
    return [part for value in values for part in value.replace(",", " ").split() if part]


@token_app.command(
    "create",
    # `--scopes tasks:read tasks:write`: the words after the first arrive as extra arguments.
    context_settings={"allow_extra_args": True},
    help="Create a token and print it on stdout (the only time it is shown). "
    "Scopes: tasks:read, tasks:write (implies tasks:read), admin (implies both).",
)
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Option("--name", help="A unique name; writes show token:NAME.")],
    scopes: Annotated[
        list[str],
        typer.Option("--scopes", help="One or more scopes, space- or comma-separated."),
    ],
) -> None:
    unexpected = [a for a in ctx.args if a.startswith("-")]
    if unexpected:
        raise ValidationError(f"unexpected option(s): {' '.join(unexpected)}")
    with common.open_tasker(ctx) as tasker:
        token = auth.create_token(tasker, name, split_scopes([*scopes, *ctx.args]))
    typer.echo(token)
    common.info(f"token {name!r} created; store it now, it will not be shown again")


@token_app.command("revoke", help="Revoke a token at once (its next request gets 401).")
def revoke(
    ctx: typer.Context, name: Annotated[str, typer.Argument(help="The token's name.")]
) -> None:
    with common.open_tasker(ctx) as tasker:
        token = auth.revoke_token(tasker, name)
    common.info(f"token {token.name!r} revoked")


@token_app.command("list", help="List tokens (never their secrets).")
def list_(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="A JSON array (stable).")] = False,
) -> None:
    with common.open_tasker(ctx) as tasker:
        tokens = [t.to_json() for t in auth.list_tokens(tasker)]
    if as_json:
        common.print_json(tokens)
        return
    if not tokens:
        common.info("no API tokens (create one: tasker auth token create --name N --scopes S)")
        return
    header = ("NAME", "SCOPES", "CREATED", "LAST USED", "STATUS")
    rows = [
        (
            t["name"],
            ",".join(t["scopes"]),
            t["created_at"],
            t["last_used_at"] or "never",
            f"revoked {t['revoked_at']}" if t["revoked_at"] else "active",
        )
        for t in tokens
    ]
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    for row in (header, *rows):
        line = "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        typer.echo(line.rstrip())
