"""The configuration file: TOML, ``${ENV}`` substitution, validated once at load time.

Every problem becomes one :class:`watcher.errors.ConfigError` naming the file, the dotted key and a
short reason, so the command line can exit 2 with something an operator can act on. Values that
came from the environment are secrets: they are never echoed in an error.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import time, timedelta
from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    SecretStr,
    SerializationInfo,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails, InitErrorDetails, PydanticCustomError

import sources
from sources.base import BASE_DIR_CONTEXT, SourceOptions
from watcher.errors import ConfigError
from watcher.units import DURATION_FORMS, RATE_FORMS, Duration

__all__ = [
    "EXAMPLE_CONFIG",
    "STARTER_CONFIG",
    "Config",
    "ConsoleSection",
    "DatabaseSection",
    "Language",
    "MetricsSection",
    "NotifierConfig",
    "OfficerConfig",
    "RulesSection",
    "ScheduleSection",
    "SeverityName",
    "WatcherSection",
    "anchor_sqlite_url",
    "default_config",
    "load_config",
    "resolve_config_path",
]

Language = Literal["zh-CN", "en"]
SeverityName = Literal["info", "warning", "high", "critical"]

DEFAULT_CONFIG_FILE = "watcher.toml"
CONFIG_ENV_VAR = "WATCHER_CONFIG"

_SOURCE_NAME = re.compile(r"[a-z0-9_][a-z0-9_-]*")
_CLOCK = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _parse_clock(text: str) -> time:
    match = _CLOCK.fullmatch(text)
    if match is None:
        raise PydanticCustomError("clock", "expected a time of day as HH:MM (24-hour)")
    return time(int(match[1]), int(match[2]))


class _Model(BaseModel):
    """Config tables: unknown keys are errors, values never change after load, defaults validated."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class WatcherSection(_Model):
    """``[watcher]``: how alerts speak and which clock the schedule follows."""

    language: Language = "zh-CN"
    timezone: str = "Asia/Shanghai"
    instance_name: str | None = None

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise PydanticCustomError(
                "timezone", "unknown time zone; use an IANA name such as Asia/Shanghai or UTC"
            ) from None
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class DatabaseSection(_Model):
    """``[database]``: SQLite for one instance, PostgreSQL (psycopg 3) for several."""

    url: str = "sqlite:///watcher.db"

    @field_validator("url")
    @classmethod
    def _supported_scheme(cls, value: str) -> str:
        scheme = value.partition(":")[0]
        if scheme in {"postgresql", "postgres", "postgresql+psycopg"}:
            _check_server_address(value)
        if scheme == "sqlite" or scheme.startswith("sqlite+") or scheme == "postgresql+psycopg":
            return value
        if scheme in {"postgresql", "postgres"}:
            return "postgresql+psycopg" + value[len(scheme):]
        raise PydanticCustomError(
            "database_url",
            "unsupported database URL; use sqlite:///path/to/watcher.db or postgresql+psycopg://user@host/db",
        )

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")


def _check_server_address(url: str) -> None:
    """A bad port or an unescaped ``@`` is a config error here, not a traceback (or a leaked
    password in an error message) when the database is first opened."""
    parts = urlsplit(url)
    if parts.netloc.count("@") > 1:
        raise PydanticCustomError(
            "database_url", "the user or password in the database URL has an unescaped @ (write it %40)"
        )
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        raise PydanticCustomError(
            "database_url", "the port in the database URL must be a number from 1 to 65535"
        )


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


class ScheduleSection(_Model):
    """``[schedule]``: when borrowers are checked and how many checks run at once."""

    interval: Duration = timedelta(hours=24)
    jitter: Duration = timedelta(minutes=30)
    concurrency: int = Field(default=8, ge=1, le=256)
    active_hours: str | None = None
    retry_after_failure: Duration = timedelta(minutes=15)
    sweep_every: Duration = timedelta(seconds=5)
    lease: Duration = timedelta(minutes=10)
    stop_timeout: Duration = timedelta(seconds=30)
    heartbeat: Duration = timedelta(seconds=15)

    @field_validator("interval", "retry_after_failure", "sweep_every", "lease", "stop_timeout", "heartbeat")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise PydanticCustomError("positive", "must be longer than 0s")
        return value

    @field_validator("active_hours")
    @classmethod
    def _window(cls, value: str | None) -> str | None:
        if value is None:
            return value
        start, dash, end = value.partition("-")
        if not dash or _CLOCK.fullmatch(start.strip()) is None or _CLOCK.fullmatch(end.strip()) is None:
            raise PydanticCustomError("active_hours", "expected HH:MM-HH:MM such as 08:00-20:00")
        if start.strip() == end.strip():
            raise PydanticCustomError("active_hours", "start and end are equal; omit the key to run all day")
        return f"{start.strip()}-{end.strip()}"

    @property
    def active_window(self) -> tuple[time, time] | None:
        """``(start, end)`` local times; ``end < start`` means the window runs past midnight."""
        if self.active_hours is None:
            return None
        start, _, end = self.active_hours.partition("-")
        return _parse_clock(start), _parse_clock(end)


class LoggingSection(_Model):
    """``[logging]``: the daemon logs to stdout for journald; JSON lines for log shippers."""

    format: Literal["text", "json"] = "text"
    level: Literal["debug", "info", "warning", "error"] = "info"


class RulesSection(_Model):
    """``[rules]``: the review window and how many key-person change occasions are tolerated;
    how long a mass disappearance waits for confirmation; when failing checks become a gap alert."""

    window: Duration = timedelta(days=365)
    frequent_after: int = Field(default=1, ge=0)
    confirm_after: Duration = timedelta(minutes=10)
    failing_after: Duration = timedelta(hours=24)

    @field_validator("window", "confirm_after", "failing_after")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise PydanticCustomError("positive", "must be longer than 0s")
        return value


class MetricsSection(_Model):
    """``[metrics]``: ``watcher run`` serves ``/healthz`` and Prometheus ``/metrics`` when enabled."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = Field(default=9464, ge=1, le=65535)


_HEADER_NAME = re.compile(r"[A-Za-z0-9-]+")
CONSOLE_SECRET_MIN_LENGTH = 32


def _network(value: str) -> str:
    try:
        ip_network(value.strip(), strict=False)
    except ValueError:
        raise PydanticCustomError(
            "console_proxy", "expected an IP address or network such as 10.0.0.0/8, got {value}",
            {"value": repr(value)},
        ) from None
    return value.strip()


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) is reachable only from this machine."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False


class ConsoleSection(_Model):
    """``[console]``: the review console (``watcher serve``, or ``watcher run`` when enabled).

    ``secret_key`` signs the session cookies; it is a secret, so it comes from ``${ENV}`` and is
    required only when the console runs. ``trusted_user_header`` names the header a reverse proxy
    sets to the signed-in user: honoured only from ``trusted_proxies`` (the addresses of the
    reverse proxies in front), and only for users in the database. ``secure_cookies`` (None: on
    unless the console listens on loopback) marks cookies Secure and sends HSTS.
    """

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    secret_key: SecretStr | None = None
    trusted_user_header: str | None = None
    trusted_proxies: list[Annotated[str, AfterValidator(_network)]] = []
    secure_cookies: bool | None = None
    session_hours: int = Field(default=8, ge=1, le=24 * 30)

    @field_validator("secret_key")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < CONSOLE_SECRET_MIN_LENGTH:
            raise PydanticCustomError(
                "console_secret",
                f"must be at least {CONSOLE_SECRET_MIN_LENGTH} characters; generate one with "
                "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'",
            )
        return value

    @field_validator("trusted_user_header")
    @classmethod
    def _header_name(cls, value: str | None) -> str | None:
        if value is not None and _HEADER_NAME.fullmatch(value) is None:
            raise PydanticCustomError("console_header", "expected an HTTP header name such as X-Remote-User")
        return value

    @model_validator(mode="after")
    def _proxies_for_the_header(self) -> ConsoleSection:
        if self.trusted_user_header is not None and not self.trusted_proxies:
            raise _error_at(
                ("trusted_user_header",),
                "console_header",
                "requires trusted_proxies, the addresses of the reverse proxies allowed to set it "
                '(e.g. trusted_proxies = ["127.0.0.1"]); without it any client could name any user',
                None,
            )
        return self

    @property
    def proxy_networks(self) -> tuple[IPv4Network | IPv6Network, ...]:
        return tuple(ip_network(entry, strict=False) for entry in self.trusted_proxies)

    def cookies_secure(self, host: str | None = None) -> bool:
        """``secure_cookies`` when set, else on unless the console listens on loopback."""
        if self.secure_cookies is not None:
            return self.secure_cookies
        return not is_loopback_host(host or self.host)

    @model_validator(mode="after")
    def _secret_when_enabled(self) -> ConsoleSection:
        if self.enabled and self.secret_key is None:
            raise _error_at(
                ("secret_key",),
                "console_secret",
                "required when enabled = true; set it from the environment: "
                'secret_key = "${WATCHER_CONSOLE_KEY}"',
                None,
            )
        return self


def _not_blank(value: str) -> str:
    if not value.strip():
        raise PydanticCustomError("blank", "must not be empty")
    return value


_Text = Annotated[str, AfterValidator(_not_blank)]


class NotifierConfig(_Model):
    """``[notifiers.<name>]``: a channel that hears every borrower's alerts that pass its filters."""

    urls: list[_Text] = Field(min_length=1)
    min_severity: SeverityName = "info"
    tags: list[_Text] = []
    sources: list[_Text] = []
    digest: str | None = None
    language: Language | None = None
    max_attempts: int = Field(default=8, ge=1)

    @field_validator("digest")
    @classmethod
    def _clock(cls, value: str | None) -> str | None:
        if value is not None:
            _parse_clock(value)
        return value

    @property
    def digest_time(self) -> time | None:
        return None if self.digest is None else _parse_clock(self.digest)


class OfficerConfig(_Model):
    """``[officers.<id>]``: a loan officer; borrowers name the id, the officer gets all their alerts."""

    name: _Text
    urls: list[_Text] = []
    language: Language | None = None


def _error_at(loc: tuple[str | int, ...], error_type: str, message: str, value: object) -> ValidationError:
    return ValidationError.from_exception_data(
        "Config", [InitErrorDetails(type=PydanticCustomError(error_type, message), loc=loc, input=value)]
    )


def _source_options(value: object, info: ValidationInfo) -> SourceOptions:
    """Validate a ``[sources.<name>]`` table with the options model of the plugin its ``type`` names."""
    if isinstance(value, SourceOptions):
        return value
    if not isinstance(value, dict):
        raise PydanticCustomError("table", "expected a table [sources.<name>] with a type key")
    type_name = value.get("type")
    if type_name is None:
        raise _error_at(("type",), "missing_type", 'missing required key (e.g. type = "brreg")', value)
    if not isinstance(type_name, str):
        raise _error_at(("type",), "string_type", "expected a string", type_name)
    try:
        source_class = sources.source_class(type_name)
    except KeyError:
        known = ", ".join(sources.available_types()) or "none installed"
        message = f"unknown source type {{value}} (known: {known})"
        raise _error_at(("type",), "source_type", message, type_name) from None
    return source_class.Options.model_validate(value, context=info.context)


def _dump_source_options(options: SourceOptions, info: SerializationInfo) -> dict[str, Any]:
    return options.model_dump(mode=info.mode)


def _source_name(value: str) -> str:
    if _SOURCE_NAME.fullmatch(value) is None:
        raise PydanticCustomError(
            "source_name", "invalid source name; use lower-case letters, digits, '_' and '-'"
        )
    return value


_SourceName = Annotated[str, AfterValidator(_source_name)]
_SourceTable = Annotated[
    SourceOptions, PlainValidator(_source_options), PlainSerializer(_dump_source_options)
]


class Config(_Model):
    """The whole validated configuration. ``path`` is where it was loaded from, not a TOML key."""

    watcher: WatcherSection = Field(default_factory=WatcherSection)
    database: DatabaseSection = Field(default_factory=DatabaseSection)
    schedule: ScheduleSection = Field(default_factory=ScheduleSection)
    rules: RulesSection = Field(default_factory=RulesSection)
    logging: LoggingSection = Field(default_factory=LoggingSection)
    sources: dict[_SourceName, _SourceTable] = {}
    notifiers: dict[str, NotifierConfig] = {}
    officers: dict[str, OfficerConfig] = {}
    console: ConsoleSection = Field(default_factory=ConsoleSection)
    metrics: MetricsSection = Field(default_factory=MetricsSection)
    path: Path | None = Field(default=None, exclude=True)

    @model_validator(mode="after")
    def _notifier_sources_exist(self) -> Config:
        unknown = [
            InitErrorDetails(
                type=PydanticCustomError(
                    "unknown_source", "no such [sources.<name>] table (defined: {defined})",
                    {"defined": ", ".join(sorted(self.sources)) or "none"},
                ),
                loc=("notifiers", notifier_name, "sources", index),
                input=source,
            )
            for notifier_name, notifier in self.notifiers.items()
            for index, source in enumerate(notifier.sources)
            if source not in self.sources
        ]
        if unknown:
            raise ValidationError.from_exception_data("Config", unknown)
        return self

    @property
    def base_dir(self) -> Path:
        """Directory relative paths in the file are relative to; the working directory without a file."""
        return self.path.parent if self.path is not None else Path.cwd()


def default_config() -> Config:
    """Every default, no file: for commands that run without one (``watcher demo``)."""
    return Config()


def resolve_config_path(cli_value: str | Path | None) -> Path:
    """``--config`` if given, else ``$WATCHER_CONFIG``, else ``./watcher.toml`` (the CLI contract)."""
    chosen = cli_value or os.environ.get(CONFIG_ENV_VAR) or DEFAULT_CONFIG_FILE
    return Path(chosen).expanduser()


@dataclass(frozen=True, slots=True)
class _Substitution:
    """One string value that took text from the environment: what to show instead of it."""

    loc: tuple[str | int, ...]
    original: str
    value: str
    variables: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class _Problem:
    loc: tuple[str | int, ...]
    reason: str


_REFERENCE = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$\{")


def _substitute(value: Any, loc: tuple[str | int, ...], found: list[_Substitution],
                problems: list[_Problem]) -> Any:
    """``value`` with ``${NAME}`` replaced from the environment throughout; only values, never keys."""
    if isinstance(value, dict):
        return {key: _substitute(item, (*loc, key), found, problems) for key, item in value.items()}
    if isinstance(value, list):
        return [_substitute(item, (*loc, index), found, problems) for index, item in enumerate(value)]
    if not isinstance(value, str) or "${" not in value:
        return value
    used: dict[str, str] = {}

    def replace(match: re.Match[str]) -> str:
        if match[0] == "$${":
            return "${"
        name = match[1]
        if name is None:
            problems.append(_Problem(loc, "malformed ${...}; write ${NAME}, or $${ for a literal ${"))
            return match[0]
        if name not in os.environ:
            problems.append(_Problem(loc, f"environment variable {name} is not set"))
            return match[0]
        used[name] = os.environ[name]
        return used[name]

    result = _REFERENCE.sub(replace, value)
    if used:
        found.append(_Substitution(loc, value, result, tuple(used.items())))
    return result


def _dotted(loc: Sequence[str | int]) -> str | None:
    parts: list[str] = []
    for part in loc:
        if part == "[key]":
            continue
        if isinstance(part, int):
            parts[-1:] = [f"{parts[-1] if parts else ''}[{part}]"]
        elif _BARE_KEY.fullmatch(part):
            parts.append(part)
        else:
            parts.append('"' + part.replace("\\", "\\\\").replace('"', '\\"') + '"')
    return ".".join(parts) or None


def _related(a: tuple[str | int, ...], b: tuple[str | int, ...]) -> bool:
    shorter = min(len(a), len(b))
    return a[:shorter] == b[:shorter]


class _Redactor:
    """Keeps text that came from the environment out of messages: it shows ``${NAME}`` instead."""

    _MIN_GLOBAL = 4

    def __init__(self, substitutions: list[_Substitution]) -> None:
        self._substitutions = substitutions

    def from_environment(self, loc: tuple[str | int, ...]) -> bool:
        """Whether the value at ``loc``, or any value under it, took text from the environment."""
        return any(sub.loc[: len(loc)] == loc for sub in self._substitutions)

    def shown(self, loc: tuple[str | int, ...], value: object) -> str:
        """How an offending value is quoted in a reason: its source text when it came from the environment."""
        for sub in self._substitutions:
            if sub.loc == loc:
                return repr(sub.original)
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, dict):
            return "a table"
        if isinstance(value, list):
            return "an array"
        return repr(value) if isinstance(value, str) else str(value)

    def redact(self, loc: tuple[str | int, ...], text: str) -> str:
        """Last line of defence: replace any environment text still present, longest first."""
        pairs: list[tuple[str, str]] = []
        for sub in self._substitutions:
            near = _related(sub.loc, loc)
            if sub.value and (near or len(sub.value) >= self._MIN_GLOBAL):
                pairs.append((sub.value, sub.original))
            pairs.extend(
                (secret, f"${{{name}}}")
                for name, secret in sub.variables
                if secret and (near or len(secret) >= self._MIN_GLOBAL)
            )
        for secret, replacement in sorted(pairs, key=lambda pair: len(pair[0]), reverse=True):
            text = text.replace(secret, replacement)
        return text


_APPEND_GOT = {"clock", "active_hours", "timezone", "unknown_source", "source_type", "positive"}
"""This module's own error kinds whose message leaves the offending value out, for ``_reason`` to add
(at ``{value}`` when the message has that placeholder, else at the end)."""

_OWN_KINDS = _APPEND_GOT | {
    "missing_type", "table", "blank", "database_url", "source_name", "console_secret", "console_header"
}
_ECHOING_KINDS = {"duration": DURATION_FORMS, "rate": RATE_FORMS}
"""Kinds from ``watcher.units`` whose message quotes the value; replaced when that value is secret."""

_FIXED_REASONS = {
    "extra_forbidden": "unknown key",
    "missing": "missing required key",
}
_TYPE_REASONS = {
    "int_type": "a whole number", "int_parsing": "a whole number", "int_from_float": "a whole number",
    "bool_type": "true or false", "bool_parsing": "true or false",
    "string_type": "a string", "list_type": "an array",
    "float_type": "a number", "float_parsing": "a number",
    "dict_type": "a table", "model_type": "a table", "model_attributes_type": "a table",
}


def _reason(error: ErrorDetails, loc: tuple[str | int, ...], redactor: _Redactor) -> str:
    """A short operator-facing reason for one pydantic error; the offending value only via ``shown``."""
    kind = error["type"]
    ctx = error.get("ctx") or {}
    got = redactor.shown(loc, error.get("input"))
    if kind in _FIXED_REASONS:
        return _FIXED_REASONS[kind]
    if kind in _TYPE_REASONS:
        return f"expected {_TYPE_REASONS[kind]}, got {got}"
    if kind == "literal_error":
        return f"expected {ctx.get('expected')}, got {got}"
    bounds = {"greater_than_equal": ("at least", "ge"), "less_than_equal": ("at most", "le"),
              "greater_than": ("greater than", "gt"), "less_than": ("less than", "lt")}
    if kind in bounds:
        words, key = bounds[kind]
        return f"must be {words} {ctx.get(key)}, got {got}"
    if kind == "string_too_short":
        minimum = ctx.get("min_length")
        return "must not be empty" if minimum == 1 else f"must be at least {minimum} characters long"
    if kind == "too_short":
        minimum = ctx.get("min_length")
        return "must not be empty" if minimum == 1 else f"needs at least {minimum} items"
    if kind == "too_long":
        return f"may have at most {ctx.get('max_length')} items"
    if kind in _APPEND_GOT:
        message = error["msg"]
        return message.replace("{value}", got) if "{value}" in message else f"{message}, got {got}"
    if kind in _OWN_KINDS:
        return error["msg"]
    if redactor.from_environment(loc):
        forms = _ECHOING_KINDS.get(kind)
        return f"expected {forms}, got {got}" if forms else f"invalid value {got}"
    return error["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")


def _problems_from(exc: ValidationError, redactor: _Redactor) -> Iterator[_Problem]:
    for error in exc.errors(include_url=False):
        loc = tuple(part for part in error["loc"] if part != "[key]")
        yield _Problem(loc, _reason(error, loc, redactor))


def _config_error(file: str, problems: list[_Problem], redactor: _Redactor) -> ConfigError:
    """One error for all problems: the first on the first line (file, key, reason), the rest below it."""
    first, *rest = problems
    reason = redactor.redact(first.loc, first.reason)
    for problem in rest:
        key = _dotted(problem.loc) or "(top level)"
        reason += f"\n  also key {key}: {redactor.redact(problem.loc, problem.reason)}"
    return ConfigError(reason, file=file, key=_dotted(first.loc))


_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")


def _read_toml(path: Path, file: str) -> dict[str, Any]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError("file not found (create one with `watcher init`)", file=file) from None
    except IsADirectoryError:
        raise ConfigError("is a directory, not a config file", file=file) from None
    except PermissionError:
        raise ConfigError("permission denied", file=file) from None
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror or exc}", file=file) from None
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


def load_config(path: Path | str) -> Config:
    """Read, substitute ``${ENV}``, validate. Any problem raises one ConfigError (file, key, reason)."""
    path = Path(path)
    file = str(path)
    raw = _read_toml(path, file)
    substitutions: list[_Substitution] = []
    problems: list[_Problem] = []
    data = _substitute(raw, (), substitutions, problems)
    redactor = _Redactor(substitutions)
    if problems:
        raise _config_error(file, problems, redactor)
    stray_path = data.pop("path", None) is not None
    try:
        config = Config.model_validate(data, context={BASE_DIR_CONTEXT: path.absolute().parent})
    except ValidationError as exc:
        problems.extend(_problems_from(exc, redactor))
    if stray_path:
        problems.append(_Problem(("path",), "unknown key"))
    if problems:
        raise _config_error(file, problems, redactor)
    absolute = path.absolute()
    database = DatabaseSection(url=anchor_sqlite_url(config.database.url, absolute.parent))
    return config.model_copy(update={"path": absolute, "database": database})


_STARTER_BASE = """\
# Borrower Watcher configuration.
#
# ${NAME} anywhere in a value is replaced by the environment variable NAME when the file is loaded,
# so keys, passwords and webhook tokens stay out of this file. Write $${ for a literal ${.
# Durations: 10s, 30m, 24h, 365d, or combined as 1h30m. Rates: 5/s, 600/5m, 10/1h.

[watcher]
# Language of alerts: "zh-CN" or "en". Notifiers and officers may override it.
language = "zh-CN"
# IANA time zone for active hours, digests and the dates shown in alerts.
timezone = "Asia/Shanghai"
# Name shown in logs and `watcher status` when several instances share one database.
# instance_name = "watcher-a"

[database]
# SQLite for one instance; a relative path is relative to this file's directory.
# For two or more instances use PostgreSQL, for example
# url = "postgresql+psycopg://watcher:${PG_PASSWORD}@db.bank.example/watcher"
url = "sqlite:///watcher.db"

[schedule]
# How often each borrower is checked; the borrowers CSV may override it per borrower.
interval = "24h"
# Random delay added to each due time so that checks spread out rather than arrive together.
jitter = "30m"
# Checks running at the same time (1 to 256); each source still keeps to its own rate.
concurrency = 8
# Check only between these local times (may run past midnight); leave out to check at any hour.
# active_hours = "08:00-20:00"
# How long to wait before checking a borrower again after a failed check.
retry_after_failure = "15m"
# `watcher run`: how often the daemon looks for due borrowers and due deliveries.
sweep_every = "5s"
# A claimed borrower or delivery returns to the pool after this long if its instance died.
lease = "10m"
# On SIGTERM, how long in-flight checks and sends may take to finish (keep it below TimeoutStopSec).
stop_timeout = "30s"
# How often a running daemon records that it is alive. An instance silent for three of these is
# dead: any live instance frees its claims at once, and its row leaves `watcher status` after a day.
heartbeat = "15s"

[logging]
# "text" lines for journald, or "json" lines for a log shipper.
format = "text"
level = "info"

[rules]
# Key-person change occasions (legal representative, directors, shareholders, finance head,
# controllers) are counted within this window.
window = "365d"
# More occasions than this within the window is high risk: raise a risk warning and consider
# calling the loan early. The first occasion is a warning.
frequent_after = 1
# A section that held people or shareholders and is empty now (with no status explaining it) is
# stored and alerted only when a second fetch at least this much later shows the same.
confirm_after = "10m"
# A borrower whose checks have all failed for longer than this raises a "monitoring gap" alert.
failing_after = "24h"

[console]
# The review console (web pages for officers and compliance): `watcher serve`, or started by
# `watcher run` when enabled. Users are created with `watcher users add`.
enabled = false
# Keep 127.0.0.1 and put a TLS reverse proxy in front to reach it from other machines. Another
# address with no trusted_proxies gets a warning at start-up: the console itself speaks plain HTTP.
host = "127.0.0.1"
port = 8080
# Signs the session cookies (at least 32 characters); required when enabled. Keep it in the
# environment, e.g. generated with: python3 -c 'import secrets; print(secrets.token_urlsafe(32))'
# secret_key = "${WATCHER_CONSOLE_KEY}"
# Addresses or networks of the TLS-terminating reverse proxies in front of the console. Only
# requests from them may carry trusted_user_header, and their X-Forwarded-For names the client
# that the sign-in lockout counts.
# trusted_proxies = ["127.0.0.1", "10.0.8.0/24"]
# Only behind a reverse proxy that authenticates users and sets this header itself (stripping any
# the browser sent): the console then trusts it, from trusted_proxies only (required with it), for
# users that exist in its users table.
# trusted_user_header = "X-Remote-User"
# Mark cookies Secure and send HSTS: on by default unless host is loopback. Set true when the
# browser reaches a loopback console through an HTTPS proxy.
# secure_cookies = true
# Sign-ins expire after this many hours.
session_hours = 8

[metrics]
# `watcher run` serves /healthz (200 or 503, for load balancers and systemd-style probes) and
# Prometheus /metrics on host:port. Keep 127.0.0.1 unless the scraper is on another machine.
enabled = false
host = "127.0.0.1"
port = 9464
"""

_EXAMPLES = """\

# Sources: the table name (lower-case letters, digits, _ and -) is the source name used in the
# borrowers CSV; type picks the registry. Every HTTP source accepts base_url and rate.
[sources.brreg]
type = "brreg"
base_url = "https://data.brreg.no/enhetsregisteret/api"
rate = "5/s"

# Qichacha (企查查) is a licensed vendor: the key and secret come from the environment.
[sources.qcc]
type = "qichacha"
key = "${QCC_KEY}"
secret = "${QCC_SECRET}"
# A Retry-After pauses the whole source; one asking for longer than this is cut to it (then resumes).
max_pause = "15m"

# Notifiers hear the alerts of every borrower that pass their filters. urls are apprise URLs
# (email, DingTalk, WeCom, Feishu/Lark, Slack, Teams...).
[notifiers.risk_desk]
urls = ["mailtos://alerts:${SMTP_PASSWORD}@smtp.bank.example?to=risk@bank.example"]
# Lowest severity delivered: info, warning, high or critical.
min_severity = "high"

[notifiers.compliance]
urls = ["mailtos://alerts:${SMTP_PASSWORD}@smtp.bank.example?to=compliance@bank.example"]
min_severity = "info"
# Only borrowers having any of these tags (from the borrowers CSV); empty means all.
tags = ["syndicated"]
# Only alerts found through these sources; empty means all.
sources = ["brreg", "qcc"]
# Daily digest: a summary of the day's alerts at this local time (HH:MM).
digest = "08:30"
# Overrides [watcher] language for this notifier.
language = "en"
# Give up on a delivery after this many attempts; it then shows as dead in `watcher status`.
max_attempts = 8

# Officers: borrowers name their officer in the CSV; the officer gets every alert of theirs.
[officers.zhang_wei]
name = "张伟"
urls = ["dingtalk://${ZW_SECRET}@${ZW_TOKEN}/"]
language = "zh-CN"
"""


def _commented(text: str) -> str:
    return "".join(
        line if not line.strip() or line.startswith("#") else f"# {line}"
        for line in text.splitlines(keepends=True)
    )


STARTER_CONFIG: str = _STARTER_BASE + _commented(_EXAMPLES)
"""What ``watcher init`` writes: loads as is; the source, notifier and officer examples are commented."""

EXAMPLE_CONFIG: str = _STARTER_BASE + _EXAMPLES
"""The starter with its examples live: the content of ``config.example.toml``, documenting every key."""
