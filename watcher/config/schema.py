"""The configuration's schema: one frozen pydantic model per TOML table, validated once at load time.

Validators raise ``PydanticCustomError`` with a kind and a short message; :mod:`watcher.config.problems`
turns them into the operator-facing reason. Nothing here reads files or the environment.
"""

from __future__ import annotations

import re
from datetime import time, timedelta
from enum import StrEnum
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
from pydantic_core import InitErrorDetails, PydanticCustomError

import notifiers
import sources
from sources.base import SourceOptions
from watcher.config.environment import DEFERRED_CONTEXT
from watcher.units import YEAR_SECONDS, Duration, RateSpec, parse_rate
from watcher.vocabulary import Language, Severity

_SOURCE_NAME = re.compile(r"[a-z0-9_][a-z0-9_-]*")
_CLOCK = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")


def _parse_clock(text: str) -> time:
    match = _CLOCK.fullmatch(text)
    if match is None:
        raise PydanticCustomError("clock", "expected a time of day as HH:MM (24-hour)")
    return time(int(match[1]), int(match[2]))


class _Model(BaseModel):
    """Config tables: unknown keys are errors, values never change after load, defaults validated."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class WatcherSection(_Model):
    """``[watcher]``: how alerts speak, which clock the schedule follows, and how long the data of a
    borrower no longer watched is kept."""

    language: Language = Language.ZH_CN
    timezone: str = "Asia/Shanghai"
    instance_name: str | None = None
    # `watcher db prune` removes a deactivated borrower's data once it has been inactive this long.
    retention: Duration = timedelta(seconds=10 * YEAR_SECONDS)

    @field_validator("retention")
    @classmethod
    def _positive_retention(cls, value: timedelta) -> timedelta:
        # Evidence a bank must keep for years is not removed a day after a loan is repaid by a typo.
        if value < timedelta(days=1):
            raise PydanticCustomError("retention", "must be at least 1d (banks keep evidence for years: 10y)")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return _known_zone(value)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


def _known_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise PydanticCustomError(
            "timezone", "unknown time zone; use an IANA name such as Asia/Shanghai or UTC"
        ) from None
    return value


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
            return "postgresql+psycopg" + value[len(scheme) :]
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


class ApiSection(_Model):
    """``[api]``: the integration API served under ``/api/v1/`` by the console's server.

    ``max_body_bytes`` refuses larger request bodies (413) before they are read whole; the default
    leaves room for a bulk upsert of 10,000 parties. ``rate`` is each token's request budget (429
    with ``Retry-After`` beyond it).
    """

    max_body_bytes: int = Field(default=20 * 1024 * 1024, ge=1024, le=1024 * 1024 * 1024)
    rate: RateSpec = Field(default_factory=lambda: parse_rate("20/s"))


_HEADER_NAME = re.compile(r"[A-Za-z0-9-]+")
CONSOLE_SECRET_MIN_LENGTH = 32


def _network(value: str) -> str:
    try:
        ip_network(value.strip(), strict=False)
    except ValueError:
        raise PydanticCustomError(
            "console_proxy",
            "expected an IP address or network such as 10.0.0.0/8, got {value}",
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
    graphviz: str = "dot"
    """Graphviz's ``dot`` program (a name on PATH or a path) drawing a party's connections."""

    @field_validator("secret_key")
    @classmethod
    def _long_enough(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if value is not None and _deferred(value.get_secret_value(), info):
            return value  # its variable is unset, and this command does not run the console
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


def _deferred(value: str, info: ValidationInfo) -> bool:
    """Whether ``value`` is as written because the command does not need its unset ``${ENV}``."""
    return value in (info.context or {}).get(DEFERRED_CONTEXT, ())


CHANNEL_URL_KIND = "channel_url"


def _channel_url(value: str, info: ValidationInfo) -> str:
    """A URL some channel can send to, judged now: a typo (``jsn://``) is a config error, not a
    dead delivery days later. A URL whose ``${ENV}`` is unset (and not needed) has its scheme judged.
    A ``format = "event"`` notifier's URLs are the receiver's own http(s) endpoints."""
    if (info.data or {}).get("format") == NotifierFormat.EVENT:
        from notifiers.event_webhook import event_url_problem

        problem = event_url_problem(value, scheme_only=_deferred(value, info))
    else:
        problem = notifiers.url_problem(value, scheme_only=_deferred(value, info))
    if problem is not None:
        raise PydanticCustomError(CHANNEL_URL_KIND, "{problem}", {"problem": problem})
    return value


_ChannelUrl = Annotated[str, AfterValidator(_not_blank), AfterValidator(_channel_url)]


class NotifierFormat(StrEnum):
    """What a notifier's URLs receive: a message people read, or a signed JSON event for a system."""

    MESSAGE = "message"
    EVENT = "event"


NOTIFIER_EVENT_KIND = "notifier_event"
SIGNING_SECRET_MIN_LENGTH = 16


class NotifierConfig(_Model):
    """``[notifiers.<name>]``: a channel that hears every borrower's alerts that pass its filters.

    ``format = "event"`` makes it a push to other systems: each alert as a signed JSON document to
    the receiver's own http(s) URLs, signed with ``signing_secret`` (from the environment).
    """

    format: NotifierFormat = NotifierFormat.MESSAGE  # before urls: their validator reads it
    urls: list[_ChannelUrl] = Field(min_length=1)
    min_severity: Severity = Severity.INFO
    tags: list[_Text] = []
    sources: list[_Text] = []
    digest: str | None = None
    language: Language | None = None
    max_attempts: int = Field(default=8, ge=1)
    signing_secret: SecretStr | None = None

    @field_validator("digest")
    @classmethod
    def _clock(cls, value: str | None) -> str | None:
        if value is not None:
            _parse_clock(value)
        return value

    @field_validator("signing_secret")
    @classmethod
    def _strong_enough(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if value is None or _deferred(value.get_secret_value(), info):
            return value  # unset: its variable is unset, and this command sends nothing
        if len(value.get_secret_value()) < SIGNING_SECRET_MIN_LENGTH:
            raise PydanticCustomError(
                NOTIFIER_EVENT_KIND,
                f"must be at least {SIGNING_SECRET_MIN_LENGTH} characters; generate one with "
                "python3 -c 'import secrets; print(secrets.token_hex(32))'",
            )
        return value

    @model_validator(mode="after")
    def _event_options(self) -> NotifierConfig:
        """A signed event needs its secret; a digest and a secret make sense only for their format."""
        event = self.format is NotifierFormat.EVENT
        if event and self.signing_secret is None:
            message = (
                'required with format = "event"; set it from the environment: '
                'signing_secret = "${WEBHOOK_SECRET}"'
            )
            raise _error_at(("signing_secret",), NOTIFIER_EVENT_KIND, message, None)
        if not event and self.signing_secret is not None:
            message = 'applies only to format = "event" (signed JSON events to http(s) URLs)'
            raise _error_at(("signing_secret",), NOTIFIER_EVENT_KIND, message, None)
        if event and self.digest is not None:
            message = 'not with format = "event": each alert is pushed as its own document when raised'
            raise _error_at(("digest",), NOTIFIER_EVENT_KIND, message, self.digest)
        return self

    @property
    def event_secret(self) -> str | None:
        """The signing secret of a ``format = "event"`` notifier; None for one that sends messages."""
        if self.format is not NotifierFormat.EVENT or self.signing_secret is None:
            return None
        return self.signing_secret.get_secret_value()

    @property
    def digest_time(self) -> time | None:
        return None if self.digest is None else _parse_clock(self.digest)


class OfficerConfig(_Model):
    """``[officers.<id>]``: a loan officer; borrowers name the id, the officer gets all their alerts."""

    name: _Text
    urls: list[_ChannelUrl] = []
    language: Language | None = None
    timezone: str | None = None  # the zone of the times in this officer's alerts and console pages

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        return value if value is None else _known_zone(value)


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
    api: ApiSection = Field(default_factory=ApiSection)
    path: Path | None = Field(default=None, exclude=True)

    @model_validator(mode="after")
    def _notifier_sources_exist(self) -> Config:
        unknown = [
            InitErrorDetails(
                type=PydanticCustomError(
                    "unknown_source",
                    "no such [sources.<name>] table (defined: {defined})",
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

    def source_display_name(self, name: str, language: Language) -> str:
        """How people read the source ``[sources.NAME]``: its ``display_name``, else its registry's
        name in ``language``, else ``name`` itself (a feed, or a source no longer configured)."""
        options = self.sources.get(name)
        if options is None:
            return name
        return sources.source_class(options.type).display_name(options, language) or name

    def zone_for(self, officer: str | None) -> ZoneInfo:
        """The zone the times shown to ``officer`` are in: their own, else ``[watcher] timezone``."""
        officer_config = self.officers.get(officer) if officer else None
        if officer_config is not None and officer_config.timezone is not None:
            return ZoneInfo(officer_config.timezone)
        return self.watcher.zone

    @property
    def base_dir(self) -> Path:
        """Directory relative paths in the file are relative to; the working directory without a file."""
        return self.path.parent if self.path is not None else Path.cwd()


def default_config() -> Config:
    """Every default, no file: for commands that run without one (``watcher demo``)."""
    return Config()
