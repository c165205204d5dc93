"""The configuration: a TOML file, ``${ENV}`` substitution, validated once at load time.

:mod:`~watcher.config.schema` is the shape of the file, :mod:`~watcher.config.environment` the
``${NAME}`` references (secrets, never echoed), :mod:`~watcher.config.problems` the one error an
operator reads (file, key, reason), :mod:`~watcher.config.loading` reading it all in order, and
:mod:`~watcher.config.starter` the file ``watcher init`` writes.
"""

from watcher.config.loading import (
    CONFIG_ENV_VAR,
    DEFAULT_CONFIG_FILE,
    anchor_sqlite_url,
    load_config,
    resolve_config_path,
)
from watcher.config.schema import (
    CONSOLE_SECRET_MIN_LENGTH,
    ApiSection,
    Config,
    ConsoleSection,
    DatabaseSection,
    Language,
    LoggingSection,
    MetricsSection,
    NotifierConfig,
    NotifierFormat,
    OfficerConfig,
    RulesSection,
    ScheduleSection,
    WatcherSection,
    default_config,
    is_loopback_host,
)
from watcher.config.starter import EXAMPLE_CONFIG, STARTER_CONFIG

__all__ = [
    "CONFIG_ENV_VAR",
    "CONSOLE_SECRET_MIN_LENGTH",
    "ApiSection",
    "DEFAULT_CONFIG_FILE",
    "EXAMPLE_CONFIG",
    "STARTER_CONFIG",
    "Config",
    "ConsoleSection",
    "DatabaseSection",
    "Language",
    "LoggingSection",
    "MetricsSection",
    "NotifierConfig",
    "NotifierFormat",
    "OfficerConfig",
    "RulesSection",
    "ScheduleSection",
    "WatcherSection",
    "anchor_sqlite_url",
    "default_config",
    "is_loopback_host",
    "load_config",
    "resolve_config_path",
]
