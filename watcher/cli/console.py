"""``watcher serve`` and ``watcher users …``: the review console and the people who sign in to it."""

from __future__ import annotations

import sys
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer

from watcher import output
from watcher.cli.base import CLI_ACTOR, HELP_MARKUP, NO_SECRETS, ListFormat, fail, load, with_store
from watcher.output import echo, when
from watcher.vocabulary import Language, SecretScope

if TYPE_CHECKING:
    from watcher.config import Config
    from watcher.models import User

users = typer.Typer(help="Users of the review console.", no_args_is_help=True, rich_markup_mode=HELP_MARKUP)


class Role(StrEnum):
    officer = "officer"
    reviewer = "reviewer"


def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on (default: [console] host).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: [console] port).")] = None,
) -> None:
    """Serve the review console (web pages for officers and compliance) until SIGTERM or Ctrl-C."""
    import asyncio
    import signal

    from watcher.console.app import ConsoleStartError, serve_console
    from watcher.logs import configure

    config = load({SecretScope.CONSOLE})
    _check_servable(config, port)
    configure(fmt=config.logging.format, level=config.logging.level)
    with with_store(config) as store:

        async def main() -> None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, stop.set)
            await serve_console(store, config, stop, host=host, port=port)

        echo(
            f"console on http://{host or config.console.host}:{port or config.console.port}/ "
            f"(database {store.safe_url}); stop with Ctrl-C",
            err=True,
        )
        try:
            asyncio.run(main())
        except ConsoleStartError as error:
            raise fail(str(error), 1) from None


def _check_servable(config: Config, port: int | None) -> None:
    if config.console.secret_key is None:
        raise fail(
            f"{config.path}: key console.secret_key: required to serve the console "
            '(e.g. secret_key = "${WATCHER_CONSOLE_KEY}")'
        )
    if port is not None and not 1 <= port <= 65535:
        raise fail(f"--port {port}: expected 1 to 65535")


@users.command("add")
def users_add(
    username: Annotated[str, typer.Argument(help="Sign-in name.")],
    role: Annotated[Role, typer.Option("--role", help="officer (own borrowers) or reviewer (all).")],
    officer: Annotated[
        str | None, typer.Option("--officer", help="The [officers.<id>] this officer is (role officer).")
    ] = None,
    name: Annotated[
        str | None, typer.Option("--name", help="Display name, recorded as who handled an alert.")
    ] = None,
    language: Annotated[str | None, typer.Option(help="Preferred console language: zh-CN or en.")] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from the first line of stdin.")
    ] = False,
) -> None:
    """Add a console user; the password is asked for (or read from stdin), never given as an argument."""
    from watcher.console.auth import UserError, create_user

    config = load(NO_SECRETS)
    if officer is not None and officer not in config.officers:
        known = ", ".join(sorted(config.officers)) or "none configured"
        raise fail(f"--officer {officer!r}: no such [officers.<id>] in the config (known: {known})")
    if language is not None and language not in tuple(Language):
        raise fail(f"--language {language!r}: expected zh-CN or en")
    password = _read_new_password(password_stdin)
    display_name = name or (config.officers[officer].name if officer else username)
    with with_store(config) as store:
        try:
            with store.transaction() as session:
                create_user(
                    session,
                    username=username,
                    password=password,
                    role=role.value,
                    display_name=display_name,
                    officer_id=officer,
                    language=Language(language) if language else None,
                    actor=CLI_ACTOR,
                )
        except UserError as error:
            raise fail(str(error)) from None
    echo(f"added {role.value} {username} ({display_name})")


def _read_new_password(password_stdin: bool) -> str:
    """A new password from stdin's first line, or asked twice on a terminal; never an argument."""
    import getpass

    if password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        raise fail("no terminal to ask for the password; pipe it in with --password-stdin")
    password = getpass.getpass("password: ")
    if getpass.getpass("again: ") != password:
        raise fail("the passwords differ")
    return password


@users.command("list")
def users_list(
    output_format: Annotated[ListFormat, typer.Option("--format", help="table or json")] = ListFormat.table,
) -> None:
    """Console users: role, officer, whether active, and how many sessions are signed in."""
    from watcher.console.auth import list_users, session_counts
    from watcher.models import utcnow

    config = load(NO_SECRETS)
    with with_store(config) as store, store.session() as session:
        people = list_users(session)
        sessions = session_counts(session, now=utcnow())
    rows = [_user_json(user, sessions.get(user.id, 0) if user.id is not None else 0) for user in people]
    if output_format is ListFormat.json:
        output.echo_json(rows, indent=2)
        return
    table = output.table(
        "user",
        "name",
        "role",
        "officer",
        "active",
        "sessions",
        "created",
        text=("name",),
        drop_first=("created", "sessions", "name", "officer"),
    )
    for user, row in zip(people, rows, strict=True):
        table.add_row(
            user.username,
            user.display_name,
            user.role,
            user.officer_id or "",
            "yes" if user.active else "disabled",
            str(row["sessions"]),
            when(user.created_at, config.watcher.zone),
        )
    output.print_table(table)


def _user_json(user: User, sessions: int) -> dict[str, Any]:
    return {
        "username": user.username,
        "display_name": user.display_name,
        "role": user.role,
        "officer": user.officer_id,
        "language": user.language,
        "active": user.active,
        "sessions": sessions,
        "created_at": user.created_at.isoformat(),
    }


def _set_active(username: str, active: bool) -> None:
    from watcher.console.auth import UserError, set_active

    with with_store(load(NO_SECRETS)) as store:
        try:
            with store.transaction() as session:
                _user, ended = set_active(session, username, active=active, actor=CLI_ACTOR)
        except UserError as error:
            raise fail(str(error)) from None
    if active:
        echo(f"enabled {username}")
    else:
        echo(f"disabled {username}; {ended} session(s) signed out")


@users.command("disable")
def users_disable(username: Annotated[str, typer.Argument(help="Sign-in name.")]) -> None:
    """Refuse a user's sign-ins and sign out every session of theirs at once."""
    _set_active(username, False)


@users.command("enable")
def users_enable(username: Annotated[str, typer.Argument(help="Sign-in name.")]) -> None:
    """Let a disabled user sign in again (their old sessions stay ended)."""
    _set_active(username, True)


@users.command("passwd")
def users_passwd(
    username: Annotated[str, typer.Argument(help="Sign-in name.")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from the first line of stdin.")
    ] = False,
) -> None:
    """Set a user's password; the password is asked for (or read from stdin), and every session ends."""
    from watcher.console.auth import UserError, set_password

    config = load(NO_SECRETS)
    password = _read_new_password(password_stdin)
    with with_store(config) as store:
        try:
            with store.transaction() as session:
                _user, ended = set_password(session, username, password, actor=CLI_ACTOR)
        except UserError as error:
            raise fail(str(error)) from None
    echo(f"password of {username} changed; {ended} session(s) signed out")
