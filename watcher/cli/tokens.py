"""``watcher tokens …``: the integration API's tokens (add, list, revoke)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from watcher import output
from watcher.cli.base import CLI_ACTOR, HELP_MARKUP, NO_SECRETS, ListFormat, fail, load, with_store
from watcher.output import echo, when
from watcher.vocabulary import TokenScope

if TYPE_CHECKING:
    from watcher.models import ApiToken

group = typer.Typer(
    help="Tokens of the integration API (/api/v1/).", no_args_is_help=True, rich_markup_mode=HELP_MARKUP
)


@group.command("add")
def tokens_add(
    name: Annotated[str, typer.Argument(help="The token's name: the caller, as the audit log names it.")],
    scope: Annotated[TokenScope, typer.Option("--scope", help="read, or write (read and write).")],
    officer: Annotated[
        str | None,
        typer.Option("--officer", help="Limit it to the parties of this [officers.<id>] (default: all)."),
    ] = None,
) -> None:
    """Make a token and print it once: only a salted hash is stored, so it cannot be shown again."""
    from watcher.api.tokens import TokenError, add_token

    config = load(NO_SECRETS)
    if officer is not None and officer not in config.officers:
        known = ", ".join(sorted(config.officers)) or "none configured"
        raise fail(f"--officer {officer!r}: no such [officers.<id>] in the config (known: {known})")
    with with_store(config) as store:
        try:
            with store.transaction() as session:
                _row, token = add_token(session, name=name, scope=scope, officer_id=officer, actor=CLI_ACTOR)
        except TokenError as error:
            raise fail(str(error)) from None
    echo(token)
    seen = f"officer {officer}'s parties" if officer else "every party"
    echo(
        f"added token {name} (scope {scope.value}, sees {seen}); this is the only time it is shown: "
        "store it now, send it as Authorization: Bearer <token>",
        err=True,
    )


@group.command("list")
def tokens_list(
    output_format: Annotated[ListFormat, typer.Option("--format", help="table or json")] = ListFormat.table,
) -> None:
    """The tokens: scope, officer, when made, last used and revoked (never the tokens themselves)."""
    from watcher.api.tokens import list_tokens

    config = load(NO_SECRETS)
    with with_store(config) as store, store.session() as session:
        rows = list_tokens(session)
    if output_format is ListFormat.json:
        output.echo_json([_token_json(row) for row in rows], indent=2)
        return
    table = output.table(
        "name",
        "scope",
        "officer",
        "state",
        "created",
        "last used",
        drop_first=("last used", "created", "officer"),
    )
    zone = config.watcher.zone
    for row in rows:
        table.add_row(
            row.name,
            row.scope,
            row.officer_id or "(all)",
            "active" if row.revoked_at is None else f"revoked {when(row.revoked_at, zone)}",
            when(row.created_at, zone),
            when(row.last_used_at, zone) if row.last_used_at else "never",
        )
    output.print_table(table)


def _token_json(row: ApiToken) -> dict[str, Any]:
    def iso(value: Any) -> str | None:
        return value.isoformat() if value is not None else None

    return {
        "name": row.name,
        "scope": row.scope,
        "officer": row.officer_id,
        "active": row.revoked_at is None,
        "created_at": iso(row.created_at),
        "last_used_at": iso(row.last_used_at),
        "revoked_at": iso(row.revoked_at),
    }


@group.command("revoke")
def tokens_revoke(name: Annotated[str, typer.Argument(help="The token's name.")]) -> None:
    """Refuse a token from its next request on (401); its name stays taken, for the audit trail."""
    from watcher.api.tokens import TokenError, revoke_token

    with with_store(load(NO_SECRETS)) as store:
        try:
            with store.transaction() as session:
                revoke_token(session, name, actor=CLI_ACTOR)
        except TokenError as error:
            raise fail(str(error)) from None
    echo(f"revoked token {name}")
