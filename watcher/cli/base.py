"""What every command shares: the ``--config`` option, :func:`fail`, :func:`load` and :func:`with_store`.

Exit codes: 0 success, 1 when some of the work failed (a rejected row, a failed check, the database
failing part way through), 2 for usage and configuration errors, with file, key and reason. Heavy
modules are imported inside the functions so that start-up stays quick.
"""

from __future__ import annotations

import sys
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from watcher.output import echo
from watcher.vocabulary import SecretScope

if TYPE_CHECKING:
    from watcher.config import Config
    from watcher.store import Store

HELP_MARKUP = None
"""Every ``typer.Typer`` of the app passes this as ``rich_markup_mode``: help texts are plain text.

They name config tables in square brackets (``[officers.<id>]``, ``[console] host``), which rich
markup would swallow as style tags, and rich help labels plain flags ``<bool>``. Plain help shows
both as written; a test renders every help page to keep it so.
"""

CLI_ACTOR = "cli"
"""Who the audit log names for changes made on the command line."""


class ListFormat(StrEnum):
    table = "table"
    json = "json"


class _State:
    config_path: str | None = None


state = _State()


def fail(message: str, code: int = 2) -> typer.Exit:
    """One line on stderr saying what and where, then the exit code."""
    echo(f"watcher: {message}", err=True)
    return typer.Exit(code)


def _print_version(wanted: bool) -> None:
    if wanted:
        from importlib.metadata import version

        echo(f"watcher {version('borrower-watcher')}")
        raise typer.Exit()


def main_options(
    config: Annotated[
        str | None,
        typer.Option("--config", "-c", help="Config file (default: $WATCHER_CONFIG, then ./watcher.toml)."),
    ] = None,
    version: Annotated[
        bool,
        typer.Option("--version", help="Print the version and exit.", callback=_print_version, is_eager=True),
    ] = False,
) -> None:
    state.config_path = config


NO_SECRETS: frozenset[SecretScope] = frozenset()
"""What read-only commands need of the ``${ENV}`` secrets: none (the database URL's aside)."""
FETCHING = frozenset({SecretScope.SOURCES, SecretScope.CHANNELS})
"""Commands that check borrowers: the registries' keys and the channels they deliver alerts to."""


def load(
    needs: Collection[SecretScope] = frozenset(SecretScope), *, channels: Collection[str] | None = None
) -> Config:
    """The configuration ``--config`` names; any problem in it is one line and exit 2.

    ``needs``: the scopes whose ``${ENV}`` the command uses (default: all); a variable unset in
    another scope is no error, so ``watcher status`` runs without the registry keys. ``channels``
    narrows the channels' scope to these notifiers and officers (``notify test --notifier``).
    """
    from watcher.config import load_config, resolve_config_path
    from watcher.errors import ConfigError

    path = resolve_config_path(state.config_path)
    try:
        return load_config(path, needs, channels=channels)
    except ConfigError as error:
        raise fail(str(error)) from None


@contextmanager
def database_errors(url: str | None, code: int = 1) -> Iterator[None]:
    """A database failure inside becomes one line naming the database (password masked), then ``code``."""
    try:
        yield
    except Exception as error:
        if not _is_database_error(error):
            raise
        raise fail(_database_problem(url, error), code) from None


@contextmanager
def with_store(config: Config, *, ensure_schema: bool = True) -> Iterator[Store]:
    """The deployment's database (its schema brought up to date), disposed of whatever happens.

    Not reaching it (a wrong URL, a server down) exits 2: the configuration is wrong. A failure after
    that (a full disk, a server gone away) means some of the work failed: exit 1.
    """
    from watcher.store import Store, open_store

    url = config.database.url
    with database_errors(url, code=2):
        store = open_store(url) if ensure_schema else Store(url)
    try:
        with database_errors(url, code=1):
            yield store
    finally:
        store.dispose()


def safe_url(url: str) -> str:
    """The URL with its password masked (in the user part or the query), even when it does not parse."""
    from watcher.store import masked_database_url

    return masked_database_url(url)


def _is_database_error(error: BaseException) -> bool:
    # Commands that never touched the database have not imported SQLAlchemy: nothing to match then.
    errors = sys.modules.get("sqlalchemy.exc")
    return errors is not None and isinstance(error, errors.SQLAlchemyError)


def _database_problem(url: str | None, error: BaseException) -> str:
    """``database URL: ErrorClass: first line``, from the driver's own error when there is one."""
    cause = getattr(error, "orig", None) or error
    lines = str(cause).strip().splitlines()
    where = f"database {safe_url(url)}" if url else "database"
    return f"{where}: {type(cause).__name__}: {lines[0] if lines else 'failed'}"


def instance_name(config: Config) -> str:
    """``[watcher] instance_name``, else host and process id: how claims and heartbeats name this process."""
    import os
    import socket

    return config.watcher.instance_name or f"{socket.gethostname()}:{os.getpid()}"
