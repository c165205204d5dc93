"""Finding and reading the config file: TOML, then ``${ENV}``, then the schema, in that order.

Any problem on the way raises one :class:`watcher.errors.ConfigError` naming the file, the dotted key
and a short reason, so the command line can exit 2 with something an operator can act on.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Collection, Iterable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from sources.base import BASE_DIR_CONTEXT
from watcher.config.environment import (
    DEFERRED_CONTEXT,
    Problem,
    Substituted,
    substitute_environment,
    unneeded_scopes,
)
from watcher.config.problems import config_error, problems_from
from watcher.config.schema import CHANNEL_URL_KIND, Config, DatabaseSection
from watcher.errors import ConfigError
from watcher.redaction import remember_secrets
from watcher.vocabulary import SecretScope

EVERY_SECRET = frozenset(SecretScope)

DEFAULT_CONFIG_FILE = "watcher.toml"
CONFIG_ENV_VAR = "WATCHER_CONFIG"

_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")


def resolve_config_path(cli_value: str | Path | None) -> Path:
    """``--config`` if given, else ``$WATCHER_CONFIG``, else ``./watcher.toml`` (the CLI contract)."""
    chosen = cli_value or os.environ.get(CONFIG_ENV_VAR) or DEFAULT_CONFIG_FILE
    return Path(chosen).expanduser()


def anchor_sqlite_url(url: str, base_dir: Path) -> str:
    """Make a relative SQLite path absolute against ``base_dir`` (the config file's directory).

    ``sqlite:///watcher.db`` next to ``/etc/watcher/watcher.toml`` is ``/etc/watcher/watcher.db``
    whatever the working directory; absolute paths, in-memory databases and other URLs are kept.
    """
    scheme, sep, rest = url.partition(":///")
    if not sep or not scheme.startswith("sqlite"):
        return url
    database, query_sep, query = rest.partition("?")
    if not database or database.startswith("/") or database == ":memory:" or database.startswith("file:"):
        return url
    absolute = os.path.normpath(base_dir.absolute() / Path(database).expanduser())
    return f"{scheme}:///{absolute}{query_sep}{query}"


def _read_bytes(path: Path, file: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ConfigError("file not found (create one with `watcher init`)", file=file) from None
    except IsADirectoryError:
        raise ConfigError("is a directory, not a config file", file=file) from None
    except PermissionError:
        raise ConfigError("permission denied", file=file) from None
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror or exc}", file=file) from None


def _read_toml(path: Path, file: str) -> dict[str, Any]:
    data = _read_bytes(path, file)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 text (byte {exc.start})", file=file) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        position = _TOML_POSITION.search(message)
        if position is not None:
            detail = message[: position.start()]
            reason = f"invalid TOML at line {position[1]}, column {position[2]}: {detail}"
        else:
            reason = f"invalid TOML: {message}"
        raise ConfigError(reason, file=file) from None


def load_config(
    path: Path | str,
    needs: Collection[SecretScope] = EVERY_SECRET,
    *,
    channels: Collection[str] | None = None,
) -> Config:
    """Read, substitute ``${ENV}``, validate. Any problem raises one ConfigError (file, key, reason).

    ``needs``: the scopes whose ``${ENV}`` the command uses; a variable unset elsewhere is no error,
    and its value stays as written (``${NAME}``), for the command never to use. ``channels``: the
    notifiers and officers whose URLs it uses, when only these (None: all of them).
    """
    path = Path(path)
    file = str(path)
    raw = _read_toml(path, file)
    only = None if channels is None else frozenset(channels)
    substituted = substitute_environment(raw, unneeded_scopes(raw, needs), only)
    remember_secrets(value for sub in substituted.substitutions for _, value in sub.variables)
    redactor = substituted.redactor
    problems = substituted.problems
    if problems:
        raise config_error(file, problems, redactor)
    data = substituted.data
    stray_path = data.pop("path", None) is not None
    config: Config | None = None
    context = {
        BASE_DIR_CONTEXT: path.absolute().parent,
        DEFERRED_CONTEXT: frozenset(item.original for item in substituted.deferred),
    }
    try:
        config = Config.model_validate(data, context=context)
    except ValidationError as exc:
        problems.extend(_unset_first(problems_from(exc, redactor), substituted))
    if stray_path:
        problems.append(Problem(("path",), "unknown key"))
    if problems or config is None:
        raise config_error(file, problems, redactor)
    absolute = path.absolute()
    database = DatabaseSection(url=anchor_sqlite_url(config.database.url, absolute.parent))
    return config.model_copy(update={"path": absolute, "database": database})


def _unset_first(problems: Iterable[Problem], substituted: Substituted) -> list[Problem]:
    """A deferred value that fails validation as written fails for want of its variable: say so.

    A channel URL's scheme is judged knowing the rest is deferred: a wrong one is the problem itself.
    """
    reasons = []
    for problem in problems:
        deferred = substituted.deferred_at(problem.loc)
        if deferred is None or problem.kind == CHANNEL_URL_KIND:
            reasons.append(problem)
        else:
            names = " and ".join(deferred.variables)
            verb = "is" if len(deferred.variables) == 1 else "are"
            reasons.append(Problem(deferred.loc, f"environment variable {names} {verb} not set"))
    return list(dict.fromkeys(reasons))
