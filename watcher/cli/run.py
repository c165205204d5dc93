"""``watcher run``: the daemon, until SIGTERM."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import typer

from watcher.cli.base import FETCHING, database_errors, fail, instance_name, load, safe_url, with_store
from watcher.vocabulary import SecretScope

if TYPE_CHECKING:
    from watcher.config import Config
    from watcher.store import Store


def run() -> None:
    """The daemon: check borrowers as they fall due and deliver alerts, until SIGTERM."""
    import asyncio

    from watcher.daemon import Daemon
    from watcher.logs import configure

    config = load(FETCHING | {SecretScope.CONSOLE_WHEN_ENABLED})
    configure(fmt=config.logging.format, level=config.logging.level)
    with database_errors(config.database.url), _instance_lock(config), with_store(config) as store:
        _index_once(store, config)
        code = asyncio.run(Daemon(store, config, instance=instance_name(config)).run())
    raise typer.Exit(code)


def _index_once(store: Store, config: Config) -> None:
    """A database whose snapshots predate the portfolio index gets it built before the first sweep."""
    from watcher.models import utcnow
    from watcher.reindex import reindex_if_unindexed, tie_scopes

    reindex_if_unindexed(store, tie_scopes(config), now=utcnow())


@contextmanager
def _instance_lock(config: Config) -> Iterator[None]:
    """On SQLite, the lock file that keeps a second instance away, taken before any migration."""
    from watcher.daemon import InstanceLockError, SqliteInstanceLock
    from watcher.store import Store

    sqlite_path = Store(config.database.url).sqlite_path
    if sqlite_path is None:
        yield
        return
    lock = SqliteInstanceLock(sqlite_path)
    try:
        lock.acquire()  # before any migration: a second instance must not touch the schema
    except InstanceLockError as error:
        raise fail(str(error)) from None
    except OSError as error:
        raise fail(
            f"database {safe_url(config.database.url)}: cannot open the lock file {lock.path} "
            f"({error.strerror or error})"
        ) from None
    try:
        yield
    finally:
        lock.release()
