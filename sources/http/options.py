"""The options every HTTP source accepts: the settings of its :class:`~sources.http.policy.HttpPolicy`."""

from __future__ import annotations

import ssl
from datetime import timedelta
from pathlib import Path

from pydantic import Field, ValidationInfo, field_validator

from sources.base import BASE_DIR_CONTEXT, SourceOptions
from watcher.record import Signal
from watcher.units import Duration, RateSpec, parse_rate


class HttpSourceOptions(SourceOptions):
    """Options every HTTP source accepts."""

    base_url: str
    rate: RateSpec = parse_rate("5/s")
    timeout: Duration = timedelta(seconds=20)
    deadline: Duration = timedelta(minutes=2)
    retries: int = Field(default=3, ge=0, le=10)
    max_response_bytes: int = Field(default=10_000_000, ge=1_000)
    ca_bundle: str | None = None
    proxy: str | None = None
    # The longest pause a Retry-After may impose on the whole source; longer requests are capped.
    max_pause: Duration = timedelta(minutes=15)

    @field_validator("timeout", "deadline", "max_pause")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("must be longer than 0s")
        return value

    @field_validator("ca_bundle")
    @classmethod
    def _readable_ca_bundle(cls, value: str | None, info: ValidationInfo) -> str | None:
        """Resolve against the config file's folder and load it now: a bad bundle is a config error,
        not a crash on the first check."""
        if value is None:
            return None
        path = Path(value).expanduser()
        base_dir = (info.context or {}).get(BASE_DIR_CONTEXT)
        if base_dir is not None and not path.is_absolute():
            path = Path(base_dir) / path
        try:
            ssl.create_default_context(cafile=str(path))
        except (OSError, ssl.SSLError) as error:
            raise ValueError(f"cannot load CA bundle {path}: {error}") from None
        return str(path)


# Signals a vendor refreshes less often than its registry card by default: the ones that move
# slowly. Abnormal-operations and court listings, the hardest early signs, follow every check.
DEFAULT_CADENCE: dict[Signal, timedelta] = {
    Signal.CONTROLLER: timedelta(days=7),
    Signal.VIOLATIONS: timedelta(days=7),
    Signal.PLEDGES: timedelta(days=7),
    Signal.CHANGE_LOG: timedelta(days=7),
    Signal.PSC_STATEMENTS: timedelta(days=7),
}


class VendorOptions(HttpSourceOptions):
    """Options of a source that offers several signals: a licensed vendor that bills every call, or
    Companies House, whose charges, insolvency and PSC statements are separate requests.

    ``signals`` chooses what is fetched (None: all the vendor offers); ``cadence`` how often each
    signal is refreshed, independently of the registry card: a signal not named keeps its default
    (:data:`DEFAULT_CADENCE`, or every check), and ``"0s"`` makes it follow every check.
    """

    signals: tuple[Signal, ...] | None = None
    cadence: dict[Signal, Duration] = Field(default_factory=dict)

    @field_validator("cadence")
    @classmethod
    def _with_defaults(cls, value: dict[Signal, timedelta]) -> dict[Signal, timedelta]:
        if Signal.REGISTRY in value:
            raise ValueError(
                "registry: the registry card is fetched at every check ([schedule] interval); "
                f"cadence applies to {', '.join(s.value for s in Signal if s is not Signal.REGISTRY)}"
            )
        for signal, every in value.items():
            if every < timedelta(0):
                raise ValueError(f"{signal.value}: must not be negative")
        return {**DEFAULT_CADENCE, **value}
