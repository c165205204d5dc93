"""Config loading: defaults, units, ${ENV} substitution, and errors that name file, key and reason."""

from __future__ import annotations

import json
import tomllib
from datetime import time, timedelta
from pathlib import Path
from typing import ClassVar

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, Field

import sources
from sources.base import Source, SourceOptions
from watcher.config import (
    EXAMPLE_CONFIG,
    STARTER_CONFIG,
    Config,
    DatabaseSection,
    NotifierConfig,
    OfficerConfig,
    RulesSection,
    ScheduleSection,
    WatcherSection,
    anchor_sqlite_url,
    default_config,
    load_config,
    resolve_config_path,
)
from watcher.errors import ConfigError
from watcher.units import Duration, Rate, RateSpec, format_duration, parse_duration, parse_rate
from watcher.vocabulary import Language, SecretScope

REPO = Path(__file__).resolve().parent.parent


class _TestSourceOptions(SourceOptions):
    base_url: str
    rate: RateSpec = Field(default="5/s", validate_default=True)
    token: str = ""


@sources.register("testsrc")
class _TestSource(Source):
    """A source that exists only so that source-table validation can be tested on its own."""

    Options: ClassVar[type[SourceOptions]] = _TestSourceOptions


def write(tmp_path: Path, text: str, name: str = "watcher.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def load_error(tmp_path: Path, text: str) -> ConfigError:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return caught.value


def assert_names(error: ConfigError, path: Path, key: str) -> None:
    """The first line of the message carries the file and the dotted key, as the contract requires."""
    first_line = str(error).splitlines()[0]
    assert str(path) in first_line
    assert key in first_line
    assert error.key == key
    assert error.file == str(path)


# -- units ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10s", timedelta(seconds=10)),
        ("30m", timedelta(minutes=30)),
        ("24h", timedelta(hours=24)),
        ("365d", timedelta(days=365)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1d2h3m4s", timedelta(days=1, hours=2, minutes=3, seconds=4)),
        ("0s", timedelta(0)),
        (" 15m ", timedelta(minutes=15)),
        ("10y", timedelta(days=3652, hours=12)),
        ("1y30d", timedelta(days=395, hours=6)),
    ],
)
def test_parse_duration_accepts_the_documented_forms(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("10", "missing unit"),
        ("5x", "unknown unit 'x'"),
        ("10S", "unknown unit 'S'"),
        ("-5m", "negative"),
        ("1.5h", "fractions"),
        ("30m1h", "largest first"),
        ("1h1h", "largest first"),
        ("30d1y", "largest first"),
        ("1Y", "unknown unit 'Y'"),
        ("1 h", "spaces"),
        ("h", "not a whole number"),
        ("9999999999999d", "too large"),
        ("999999999999y", "too large"),
    ],
)
def test_parse_duration_rejects_with_the_reason_and_the_accepted_forms(text: str, problem: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_duration(text)
    message = str(caught.value)
    assert problem in message
    assert "10s, 30m, 24h, 365d, 10y" in message
    assert repr(text) in message


@given(st.integers(min_value=0, max_value=9_999), st.integers(min_value=0, max_value=364))
def test_years_are_julian_years_and_are_written_back_in_days(years: int, days: int) -> None:
    """A year is 365¼ days, so ten of them never fall short of ten calendar years by more than half
    a day; the canonical text spells them in days, which reads back as the same duration."""
    text = f"{years}y{days}d" if years else f"{days}d"
    value = parse_duration(text)
    assert value == timedelta(days=365 * years + days, hours=6 * years)
    assert "y" not in format_duration(value)
    assert parse_duration(format_duration(value)) == value


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (timedelta(0), "0s"),
        (timedelta(seconds=86_400), "1d"),
        (timedelta(hours=1, minutes=30), "1h30m"),
        (timedelta(days=365), "365d"),
        (timedelta(seconds=61), "1m1s"),
    ],
)
def test_format_duration_uses_the_largest_exact_units(value: timedelta, text: str) -> None:
    assert format_duration(value) == text


@pytest.mark.parametrize("value", [timedelta(seconds=-1), timedelta(milliseconds=1500)])
def test_format_duration_rejects_values_without_a_text_form(value: timedelta) -> None:
    with pytest.raises(ValueError):
        format_duration(value)


@given(st.integers(min_value=0, max_value=999_999_999 * 86_400 + 86_399))
def test_duration_text_round_trips(seconds: int) -> None:
    value = timedelta(seconds=seconds)
    text = format_duration(value)
    assert parse_duration(text) == value
    assert format_duration(parse_duration(text)) == text


@pytest.mark.parametrize(
    ("text", "count", "per"),
    [
        ("5/s", 5, timedelta(seconds=1)),
        ("600/5m", 600, timedelta(minutes=5)),
        ("10/1h", 10, timedelta(hours=1)),
        ("1/d", 1, timedelta(days=1)),
    ],
)
def test_parse_rate(text: str, count: int, per: timedelta) -> None:
    rate = parse_rate(text)
    assert rate == Rate(count, per)
    assert rate.per_second == pytest.approx(count / per.total_seconds())
    assert parse_rate(str(rate)) == rate


def test_rate_text_is_short_for_one_unit() -> None:
    assert str(Rate(5, timedelta(seconds=1))) == "5/s"
    assert str(Rate(600, timedelta(minutes=5))) == "600/5m"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("5", "missing '/'"),
        ("0/s", ">= 1"),
        ("x/s", ">= 1"),
        ("-1/s", ">= 1"),
        ("5/x", "period"),
        ("5/0s", "longer than 0s"),
        ("", "missing '/'"),
    ],
)
def test_parse_rate_rejects(text: str, problem: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_rate(text)
    assert problem in str(caught.value)
    assert "5/s, 600/5m" in str(caught.value)


@pytest.mark.parametrize(
    ("count", "per"), [(0, timedelta(seconds=1)), (1, timedelta(0)), (1, timedelta(seconds=-1))]
)
def test_rate_rejects_nonsense(count: int, per: timedelta) -> None:
    with pytest.raises(ValueError):
        Rate(count, per)


class _Timed(BaseModel):
    model_config = ConfigDict(extra="forbid")

    every: Duration
    limit: RateSpec


def test_pydantic_types_parse_text_and_instances_and_dump_text() -> None:
    parsed = _Timed.model_validate({"every": "1h30m", "limit": "600/5m"})
    assert parsed.every == timedelta(minutes=90)
    assert parsed.limit == Rate(600, timedelta(minutes=5))
    assert parsed.model_dump(mode="json") == {"every": "1h30m", "limit": "600/5m"}
    again = _Timed(every=timedelta(seconds=10), limit=Rate(5, timedelta(seconds=1)))
    assert again.model_dump() == {"every": "10s", "limit": "5/s"}


# -- defaults ------------------------------------------------------------------------------------


def test_default_config_has_the_documented_defaults() -> None:
    config = default_config()
    assert config.watcher == WatcherSection(language="zh-CN", timezone="Asia/Shanghai", instance_name=None)
    assert config.watcher.zone.key == "Asia/Shanghai"
    assert config.watcher.retention == parse_duration("10y") == timedelta(days=3652, hours=12)
    assert config.database.url == "sqlite:///watcher.db"
    assert config.schedule.interval == timedelta(hours=24)
    assert config.schedule.jitter == timedelta(minutes=30)
    assert config.schedule.concurrency == 8
    assert config.schedule.active_hours is None
    assert config.schedule.active_window is None
    assert config.schedule.retry_after_failure == timedelta(minutes=15)
    assert config.rules == RulesSection(window=timedelta(days=365), frequent_after=1)
    assert config.sources == {} and config.notifiers == {} and config.officers == {}
    assert config.path is None
    assert config.base_dir == Path.cwd()


def test_empty_file_gives_defaults_and_remembers_where_it_came_from(tmp_path: Path) -> None:
    path = write(tmp_path, "")
    config = load_config(path)
    assert config.schedule == ScheduleSection()
    assert config.rules == RulesSection()
    assert config.watcher == WatcherSection()
    assert config.path == path
    assert config.base_dir == tmp_path


def test_full_config_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMTP_PASSWORD", "pw")
    path = write(
        tmp_path,
        """
[watcher]
language = "en"
timezone = "Europe/Oslo"
instance_name = "a"
[schedule]
interval = "12h"
jitter = "0s"
concurrency = 32
active_hours = "22:00-06:00"
retry_after_failure = "1h30m"
[rules]
window = "180d"
frequent_after = 2
[sources.no]
type = "testsrc"
base_url = "https://example.test/api"
rate = "600/5m"
[notifiers.risk_desk]
urls = ["mailtos://alerts:${SMTP_PASSWORD}@smtp.bank.example?to=risk@bank.example"]
min_severity = "high"
tags = ["syndicated"]
sources = ["no"]
digest = "08:30"
language = "zh-CN"
max_attempts = 3
[officers.zhang_wei]
name = "张伟"
urls = ["dingtalk://secret@token/"]
[officers.kari]
name = "Kari"
timezone = "America/St_Johns"
""",
    )
    config = load_config(path)
    assert config.watcher.language == "en"
    assert config.schedule.active_window == (time(22, 0), time(6, 0))
    assert config.schedule.retry_after_failure == timedelta(minutes=90)
    assert config.rules.window == timedelta(days=180)
    options = config.sources["no"]
    assert isinstance(options, _TestSourceOptions)
    assert options.rate == Rate(600, timedelta(minutes=5))
    notifier = config.notifiers["risk_desk"]
    assert notifier.urls == ["mailtos://alerts:pw@smtp.bank.example?to=risk@bank.example"]
    assert notifier.digest_time == time(8, 30)
    assert notifier.max_attempts == 3
    assert config.officers["zhang_wei"] == OfficerConfig(name="张伟", urls=["dingtalk://secret@token/"])
    assert config.officers["zhang_wei"].language is None
    # Times shown to an officer are in their own zone when they have one, else in [watcher] timezone.
    assert config.zone_for("kari").key == "America/St_Johns"
    for without_own_zone in ("zhang_wei", None, "gone"):
        assert config.zone_for(without_own_zone) == config.watcher.zone


def test_plugin_option_defaults_are_parsed(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, '[sources.s]\ntype = "testsrc"\nbase_url = "https://x.test"\n'))
    options = config.sources["s"]
    assert isinstance(options, _TestSourceOptions)
    assert options.rate == Rate(5, timedelta(seconds=1))


def test_models_are_frozen() -> None:
    config = default_config()
    with pytest.raises(ValueError):
        config.schedule.concurrency = 2  # type: ignore[misc]


def test_config_dumps_to_data_that_validates_again(tmp_path: Path) -> None:
    path = write(
        tmp_path, '[sources.s]\ntype = "testsrc"\nbase_url = "https://x.test"\n[schedule]\ninterval = "1h"\n'
    )
    config = load_config(path)
    dumped = config.model_dump(mode="json")
    assert dumped["schedule"]["interval"] == "1h"
    assert dumped["sources"]["s"] == {
        "type": "testsrc",
        "display_name": None,
        "base_url": "https://x.test",
        "rate": "5/s",
        "token": "",
    }
    assert "path" not in dumped
    assert Config.model_validate(dumped).model_dump(mode="json") == dumped


# -- database URL --------------------------------------------------------------------------------


def test_relative_sqlite_path_is_relative_to_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    config_dir = tmp_path / "etc"
    config_dir.mkdir()
    path = write(config_dir, '[database]\nurl = "sqlite:///data/watcher.db"\n')
    assert load_config(path).database.url == f"sqlite:///{config_dir / 'data' / 'watcher.db'}"


def test_default_sqlite_path_is_next_to_the_config_file(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, "")).database.url == f"sqlite:///{tmp_path / 'watcher.db'}"


def test_relative_config_path_still_anchors_the_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, "")
    monkeypatch.chdir(tmp_path)
    config = load_config("watcher.toml")
    assert config.database.url == f"sqlite:///{tmp_path / 'watcher.db'}"
    assert config.path == tmp_path / "watcher.toml"


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:////var/lib/watcher/watcher.db",
        "sqlite://",
        "sqlite:///:memory:",
        "postgresql+psycopg://watcher:pw@db.bank.example/watcher",
    ],
)
def test_other_database_urls_are_kept(url: str) -> None:
    assert anchor_sqlite_url(url, Path("/etc/watcher")) == url
    assert DatabaseSection(url=url).url == url


def test_anchor_keeps_query_and_normalises_dots() -> None:
    url = anchor_sqlite_url("sqlite:///../db/w.db?timeout=5", Path("/etc/watcher"))
    assert url == "sqlite:////etc/db/w.db?timeout=5"


def test_plain_postgresql_url_uses_psycopg() -> None:
    assert DatabaseSection(url="postgresql://u@h/db").url == "postgresql+psycopg://u@h/db"


def test_unsupported_database_is_an_error_that_does_not_echo_the_url(tmp_path: Path) -> None:
    error = load_error(tmp_path, '[database]\nurl = "mysql://root:hunter2@db/w"\n')
    assert_names(error, tmp_path / "watcher.toml", "database.url")
    assert "hunter2" not in str(error)


# -- environment substitution --------------------------------------------------------------------


def test_env_substitution_in_every_string_value(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ_NAME", "UTC")
    monkeypatch.setenv("ZW_SECRET", "s3")
    monkeypatch.setenv("ZW_TOKEN", "t0")
    path = write(
        tmp_path,
        '[watcher]\ntimezone = "${TZ_NAME}"\n'
        '[officers.zw]\nname = "Zhang"\nurls = ["dingtalk://${ZW_SECRET}@${ZW_TOKEN}/"]\n',
    )
    config = load_config(path)
    assert config.watcher.timezone == "UTC"
    assert config.officers["zw"].urls == ["dingtalk://s3@t0/"]


def test_double_dollar_escapes_a_literal_reference(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("X", "value")
    path = write(tmp_path, '[officers.a]\nname = "$${X} costs $5, ${X}, $HOME"\n')
    assert load_config(path).officers["a"].name == "${X} costs $5, value, $HOME"


def test_missing_variable_names_file_key_and_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SMTP_PASSWORD", raising=False)
    error = load_error(
        tmp_path, '[notifiers.risk_desk]\nurls = ["mailtos://a:${SMTP_PASSWORD}@smtp.example"]\n'
    )
    assert_names(error, tmp_path / "watcher.toml", "notifiers.risk_desk.urls[0]")
    assert "SMTP_PASSWORD" in error.reason
    assert "not set" in error.reason


def test_empty_variable_counts_as_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMPTY", "")
    config = load_config(write(tmp_path, '[watcher]\ninstance_name = "a${EMPTY}"\n'))
    assert config.watcher.instance_name == "a"


def test_malformed_reference_is_an_error(tmp_path: Path) -> None:
    error = load_error(tmp_path, '[watcher]\ninstance_name = "${not a name}"\n')
    assert_names(error, tmp_path / "watcher.toml", "watcher.instance_name")
    assert "$${" in error.reason


def test_keys_are_not_substituted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("X", "zhang")
    config = load_config(write(tmp_path, '[officers."${X}"]\nname = "Zhang"\n'))
    assert list(config.officers) == ["${X}"]


SECRET = "s3cr3t-Value-42"


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('[schedule]\ninterval = "${LEAKY}"\n', "schedule.interval"),
        ('[notifiers.n]\nurls = ["json://h/x"]\nmin_severity = "${LEAKY}"\n', "notifiers.n.min_severity"),
        ('[schedule]\nconcurrency = "${LEAKY}"\n', "schedule.concurrency"),
        ('[watcher]\ntimezone = "${LEAKY}"\n', "watcher.timezone"),
        ('[watcher]\nlanguage = "pre-${LEAKY}-post"\n', "watcher.language"),
        ('[sources.s]\ntype = "${LEAKY}"\n', "sources.s.type"),
        ('[sources.s]\ntype = "testsrc"\nbase_url = "b"\nrate = "${LEAKY}"\n', "sources.s.rate"),
        ('[notifiers.n]\nurls = ["json://h/x"]\nsources = ["${LEAKY}"]\n', "notifiers.n.sources[0]"),
        ('[database]\nurl = "mysql://u:${LEAKY}@db/w"\n', "database.url"),
        ('[schedule]\nactive_hours = "${LEAKY}"\n', "schedule.active_hours"),
        ('[notifiers.n]\nurls = ["json://h/x"]\ndigest = "${LEAKY}"\n', "notifiers.n.digest"),
    ],
)
def test_values_from_the_environment_never_appear_in_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, key: str
) -> None:
    monkeypatch.setenv("LEAKY", SECRET)
    error = load_error(tmp_path, text)
    assert_names(error, tmp_path / "watcher.toml", key)
    for fragment in (SECRET, SECRET[:6], SECRET[-6:]):
        assert fragment not in str(error)
        assert fragment not in error.reason
    assert "${LEAKY}" in str(error) or key == "database.url"


def test_short_secret_in_a_duration_is_not_echoed_even_in_part(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IV", "hunter2")
    error = load_error(tmp_path, '[schedule]\ninterval = "${IV}"\n')
    assert "hunter" not in str(error)
    assert "10s, 30m, 24h, 365d" in error.reason


def test_secret_used_elsewhere_is_scrubbed_from_another_key_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEAKY", SECRET)
    error = load_error(tmp_path, f'[officers.a]\nname = "${{LEAKY}}"\nlanguage = "{SECRET}"\n')
    assert SECRET not in str(error)


# -- errors: file, key, reason -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "key", "reason"),
    [
        ("colour = 1\n", "colour", "unknown key"),
        ("path = '/etc'\n", "path", "unknown key"),
        ("[watcher]\nlanguag = 'en'\n", "watcher.languag", "unknown key"),
        ("[schedule]\nconcurrency = 'many'\n", "schedule.concurrency", "expected a whole number, got 'many'"),
        ("[schedule]\nconcurrency = 0\n", "schedule.concurrency", "must be at least 1, got 0"),
        ("[schedule]\nconcurrency = 257\n", "schedule.concurrency", "at most 256"),
        (
            "[schedule]\ninterval = '5x'\n",
            "schedule.interval",
            "expected a duration like 10s, 30m, 24h, 365d, 10y or 1h30m, got '5x'",
        ),
        ("[schedule]\ninterval = 3600\n", "schedule.interval", "needs a unit"),
        ("[schedule]\ninterval = '0s'\n", "schedule.interval", "longer than 0s"),
        ("[watcher]\nretention = '0s'\n", "watcher.retention", "at least 1d"),
        ("[watcher]\nretention = '23h'\n", "watcher.retention", "at least 1d"),
        ("[watcher]\nretention = '10 years'\n", "watcher.retention", "spaces are not allowed"),
        ("[schedule]\nactive_hours = '8-20'\n", "schedule.active_hours", "HH:MM-HH:MM"),
        ("[schedule]\nactive_hours = '08:00-08:00'\n", "schedule.active_hours", "equal"),
        ("[rules]\nwindow = '1w'\n", "rules.window", "unknown unit 'w'"),
        ("[rules]\nfrequent_after = -1\n", "rules.frequent_after", "at least 0"),
        ("[watcher]\ntimezone = 'Mars/Olympus'\n", "watcher.timezone", "unknown time zone"),
        (
            "[officers.kari]\nname = 'Kari'\ntimezone = 'Europe/Olso'\n",
            "officers.kari.timezone",
            "unknown time zone; use an IANA name such as Asia/Shanghai or UTC, got 'Europe/Olso'",
        ),
        ("[watcher]\nlanguage = 'fr'\n", "watcher.language", "expected 'zh-CN' or 'en', got 'fr'"),
        ("watcher = 5\n", "watcher", "expected a table"),
        (
            "[notifiers.risk_desk]\nurls = ['json://h/x']\nmin_severity = 'urgent'\n",
            "notifiers.risk_desk.min_severity",
            "expected 'info', 'warning', 'high' or 'critical', got 'urgent'",
        ),
        ("[notifiers.risk_desk]\nurls = []\n", "notifiers.risk_desk.urls", "must not be empty"),
        (
            "[notifiers.risk_desk]\nmin_severity = 'high'\n",
            "notifiers.risk_desk.urls",
            "missing required key",
        ),
        ("[notifiers.risk_desk]\nurls = 'mailto://x'\n", "notifiers.risk_desk.urls", "expected an array"),
        (
            "[notifiers.risk_desk]\nurls = ['json://h/x', ' ']\n",
            "notifiers.risk_desk.urls[1]",
            "must not be empty",
        ),
        (
            "[notifiers.risk_desk]\nurls = ['json://h/x']\ndigest = '8:30'\n",
            "notifiers.risk_desk.digest",
            "HH:MM",
        ),
        (
            "[notifiers.risk_desk]\nurls = ['json://h/x']\nmax_attempts = 0\n",
            "notifiers.risk_desk.max_attempts",
            "at least 1",
        ),
        (
            "[notifiers.risk_desk]\nurls = ['json://h/x']\nsources = ['nowhere']\n",
            "notifiers.risk_desk.sources[0]",
            "no such [sources.<name>] table",
        ),
        ("[officers.zw]\nurls = []\n", "officers.zw.name", "missing required key"),
        ("[officers.zw]\nname = 'Z'\nphone = '1'\n", "officers.zw.phone", "unknown key"),
    ],
)
def test_each_error_names_the_file_and_the_dotted_key(
    tmp_path: Path, text: str, key: str, reason: str
) -> None:
    error = load_error(tmp_path, text)
    assert_names(error, tmp_path / "watcher.toml", key)
    assert reason in error.reason.splitlines()[0]


def test_several_errors_are_reported_together_first_one_first(tmp_path: Path) -> None:
    error = load_error(tmp_path, "[schedule]\ninterval = '5x'\nconcurrency = 'many'\n[rules]\nwindow = 'x'\n")
    assert error.key == "schedule.interval"
    lines = str(error).splitlines()
    assert len(lines) == 3
    assert "schedule.interval" in lines[0]
    assert "schedule.concurrency" in lines[1]
    assert "rules.window" in lines[2]


def test_toml_syntax_error_gives_line_and_column(tmp_path: Path) -> None:
    error = load_error(tmp_path, "[schedule]\ninterval = 24h\n")
    assert error.file == str(tmp_path / "watcher.toml")
    assert "line 2" in error.reason
    assert "column" in error.reason


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.file == str(path)
    assert "not found" in caught.value.reason


def test_directory_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path)
    assert caught.value.file == str(tmp_path)


def test_non_utf8_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "watcher.toml"
    path.write_bytes(b"[watcher]\ninstance_name = '\xff'\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert "UTF-8" in caught.value.reason


# -- sources -------------------------------------------------------------------------------------


def test_unknown_source_type_names_the_type_key_and_lists_known_types(tmp_path: Path) -> None:
    error = load_error(tmp_path, "[sources.acme]\ntype = 'nope'\n")
    assert_names(error, tmp_path / "watcher.toml", "sources.acme.type")
    assert "unknown source type 'nope'" in error.reason
    assert "known:" in error.reason
    for known in sources.available_types():
        assert known in error.reason


def test_source_table_without_type(tmp_path: Path) -> None:
    error = load_error(tmp_path, "[sources.acme]\nbase_url = 'x'\n")
    assert_names(error, tmp_path / "watcher.toml", "sources.acme.type")
    assert "missing" in error.reason


def test_source_options_are_validated_by_the_plugin(tmp_path: Path) -> None:
    error = load_error(tmp_path, "[sources.acme]\ntype = 'testsrc'\nbase_url = 'x'\nsecret = 'y'\n")
    assert_names(error, tmp_path / "watcher.toml", "sources.acme.secret")
    assert error.reason == "unknown key"
    error = load_error(tmp_path, "[sources.acme]\ntype = 'testsrc'\n")
    assert_names(error, tmp_path / "watcher.toml", "sources.acme.base_url")
    error = load_error(tmp_path, "[sources.acme]\ntype = 'testsrc'\nbase_url = 'x'\nrate = '5 per second'\n")
    assert_names(error, tmp_path / "watcher.toml", "sources.acme.rate")
    assert "5/s, 600/5m" in error.reason


@pytest.mark.parametrize("name", ["Acme", "acme.eu", "-acme", "ac me"])
def test_source_names_are_restricted(tmp_path: Path, name: str) -> None:
    error = load_error(tmp_path, f"[sources.\"{name}\"]\ntype = 'testsrc'\nbase_url = 'x'\n")
    assert error.key is not None and error.key.startswith("sources.")
    assert "invalid source name" in error.reason


def test_source_table_must_be_a_table(tmp_path: Path) -> None:
    error = load_error(tmp_path, "sources = { acme = 1 }\n")
    assert_names(error, tmp_path / "watcher.toml", "sources.acme")


# -- paths and starter ---------------------------------------------------------------------------


def test_resolve_config_path_prefers_cli_then_env_then_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHER_CONFIG", "/etc/watcher/from-env.toml")
    assert resolve_config_path("/tmp/cli.toml") == Path("/tmp/cli.toml")
    assert resolve_config_path(None) == Path("/etc/watcher/from-env.toml")
    monkeypatch.delenv("WATCHER_CONFIG")
    assert resolve_config_path(None) == Path("watcher.toml")
    monkeypatch.setenv("WATCHER_CONFIG", "")
    assert resolve_config_path(None) == Path("watcher.toml")


def test_starter_config_loads_as_written(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, STARTER_CONFIG))
    assert config.schedule == ScheduleSection()
    assert config.rules == RulesSection()
    assert config.watcher == WatcherSection()
    assert config.database.url == f"sqlite:///{tmp_path / 'watcher.db'}"
    assert config.sources == {} and config.notifiers == {} and config.officers == {}


def test_starter_mentions_every_example_key_in_comments() -> None:
    for line in EXAMPLE_CONFIG.splitlines():
        if line and not line.startswith("#"):
            assert line in STARTER_CONFIG


def test_example_file_is_the_example_config() -> None:
    assert (REPO / "config.example.toml").read_text(encoding="utf-8") == EXAMPLE_CONFIG


def _stand_in(type_name: str) -> type[Source]:
    """A permissive plugin, so this test checks the core keys whichever source plugins are installed."""

    class Options(SourceOptions):
        model_config = ConfigDict(extra="allow")

    class StandIn(Source):
        """Never fetches: only its options are validated."""

    StandIn.Options = Options
    StandIn.type_name = type_name
    return StandIn


def test_example_config_uses_only_known_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("QCC_KEY", "QCC_SECRET", "SMTP_PASSWORD", "ZW_SECRET", "ZW_TOKEN"):
        monkeypatch.setenv(name, f"{name.lower()}-value")
    example = tomllib.loads(EXAMPLE_CONFIG)
    for table in example["sources"].values():
        monkeypatch.setitem(sources._REGISTRY, table["type"], _stand_in(table["type"]))
    config = load_config(write(tmp_path, EXAMPLE_CONFIG))
    assert set(example) <= set(Config.model_fields)
    assert set(config.notifiers) == {"risk_desk", "compliance"}
    compliance = example["notifiers"]["compliance"]
    expected = NotifierConfig.model_validate({**compliance, "urls": ["json://h/x"]})
    assert config.notifiers["compliance"].model_copy(update={"urls": ["json://h/x"]}) == expected
    assert config.officers["zhang_wei"].name == "张伟"
    assert config.notifiers["risk_desk"].urls[0].startswith("mailtos://alerts:smtp_password-value@")


@pytest.mark.parametrize("name", sorted(tomllib.loads(EXAMPLE_CONFIG)["sources"]))
def test_example_source_tables_follow_their_plugins(name: str) -> None:
    table = tomllib.loads(EXAMPLE_CONFIG)["sources"][name]
    try:
        source_class = sources.source_class(table["type"])
    except KeyError:
        pytest.skip(f"source type {table['type']!r} is not installed")
    if "rate" in table and "rate" not in source_class.Options.model_fields:
        pytest.xfail(f"{source_class.__name__}.Options has no rate; the design gives every HTTP source one")
    source_class.Options.model_validate(table)


# -- display names -------------------------------------------------------------------------------


def test_a_source_reads_as_its_registrys_name_or_its_configured_display_name() -> None:
    """The console shows these instead of config keys; feeds are no registry and keep their key."""
    config = Config.model_validate(
        {
            "sources": {
                "qcc": {"type": "qichacha", "key": "k", "secret": "s"},
                "tyc": {"type": "tianyancha", "token": "t"},
                "no": {"type": "brreg"},
                "uk": {"type": "companies_house", "api_key": "k"},
                "fr": {"type": "fr_recherche"},
                "core": {
                    "type": "json",
                    "base_url": "https://x.test",
                    "url": "/c/{id}",
                    "fields": {"name": "n"},
                },
                "core_named": {
                    "type": "json",
                    "display_name": "核心系统 Core banking",
                    "base_url": "https://x.test",
                    "url": "/c/{id}",
                    "fields": {"name": "n"},
                },
                "saved": {"type": "replay", "format": "tianyancha", "folder": "feed"},
                "renamed": {"type": "brreg", "display_name": "BRREG"},
            }
        }
    )
    names = {
        language: {key: config.source_display_name(key, language) for key in [*config.sources, "gone"]}
        for language in Language
    }
    assert names[Language.ZH_CN] == {
        "qcc": "企查查",
        "tyc": "天眼查",
        "no": "挪威 Brønnøysundregistrene",
        "uk": "英国 Companies House",
        "fr": "法国 Recherche d'entreprises",
        "core": "core",
        "core_named": "核心系统 Core banking",
        "saved": "天眼查（回放）",
        "renamed": "BRREG",
        "gone": "gone",
    }
    assert names[Language.EN] == {
        "qcc": "Qichacha 企查查",
        "tyc": "Tianyancha 天眼查",
        "no": "Brønnøysundregistrene",
        "uk": "Companies House",
        "fr": "Recherche d'entreprises",
        "core": "core",
        "core_named": "核心系统 Core banking",
        "saved": "Tianyancha 天眼查 (replay)",
        "renamed": "BRREG",
        "gone": "gone",
    }


def test_every_registry_source_has_a_name_in_every_language() -> None:
    for type_name in ("brreg", "companies_house", "fr_recherche", "qichacha", "tianyancha"):
        assert set(sources.source_class(type_name).display_names) == set(Language), type_name
    for type_name in ("json", "html", "replay"):
        assert not sources.source_class(type_name).display_names, type_name


# -- channel URLs are judged when the file is loaded ------------------------------------------------


@pytest.mark.parametrize(
    ("text", "key", "reason"),
    [
        (
            '[notifiers.risk]\nurls = ["jsn://127.0.0.1/hook"]\n',
            "notifiers.risk.urls[0]",
            "unknown scheme 'jsn'",
        ),
        (
            '[notifiers.risk]\nurls = ["json://h/x", "dingtlak://token/"]\n',
            "notifiers.risk.urls[1]",
            "unknown scheme 'dingtlak'",
        ),
        ('[officers.zw]\nname = "张伟"\nurls = ["risk@bank.example"]\n', "officers.zw.urls[0]", "scheme://"),
        (
            '[notifiers.risk]\nurls = ["dingtalk://${T}/?at_all=everyone"]\n',
            "notifiers.risk.urls[0]",
            "at_all=",
        ),
        ('[notifiers.risk]\nurls = ["mailto://127.0.0.1:25"]\n', "notifiers.risk.urls[0]", "mailto://"),
    ],
)
def test_a_url_no_channel_can_send_to_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, key: str, reason: str
) -> None:
    monkeypatch.setenv("T", "4f1c0a9e2b7d4c6f8a0e1b3d5c7f9a2e")
    error = load_error(tmp_path, text)
    assert_names(error, tmp_path / "watcher.toml", key)
    assert reason in error.reason
    assert "4f1c0a9e2b7d4c6f8a0e1b3d5c7f9a2e" not in str(error)


def test_an_unusable_url_error_never_shows_its_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOOK_PASSWORD", "Hunter2-Secret")
    error = load_error(
        tmp_path, '[notifiers.n]\nurls = ["json://hookuser:${HOOK_PASSWORD}@[unbalanced/hook"]\n'
    )
    assert_names(error, tmp_path / "watcher.toml", "notifiers.n.urls[0]")
    assert "Hunter2" not in str(error) and "hookuser" not in str(error)


def test_every_channel_family_and_apprise_scheme_is_accepted(tmp_path: Path) -> None:
    urls = [
        "mailtos://alerts:pw@smtp.bank.example?to=risk@bank.example",
        "dingtalk://SECabc@0123456789abcdef/?at_all=critical",
        "wecombot://693a91f6-7e3b-4bc4-97a0-0ec2f1fa5a3e",
        "feishu://secret@2f8e4c1a-9b3d-4f7e-8a6c-1d5b9e3f7a2c/",
        "json://127.0.0.1:8080/hook",
    ]
    config = load_config(write(tmp_path, f"[notifiers.all]\nurls = {json.dumps(urls)}\n"))
    assert config.notifiers["all"].urls == urls


# -- a secret is required only by the commands that use it ------------------------------------------

UNSET_SECRETS = """
[sources.s]
type = "testsrc"
base_url = "https://registry.example"
token = "${WT_SOURCE_TOKEN}"

[notifiers.desk]
urls = ["dingtalk://${WT_DESK_SECRET}@${WT_DESK_TOKEN}/"]

[officers.zw]
name = "张伟"
urls = ["mailtos://alerts:${WT_SMTP_PASSWORD}@smtp.bank.example?to=zw@bank.example"]

[console]
enabled = true
secret_key = "${WT_CONSOLE_KEY}"
"""


@pytest.fixture
def unset_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("WT_SOURCE_TOKEN", "WT_DESK_SECRET", "WT_DESK_TOKEN", "WT_SMTP_PASSWORD", "WT_CONSOLE_KEY"):
        monkeypatch.delenv(name, raising=False)
    return write(tmp_path, UNSET_SECRETS)


def test_without_needs_every_unset_variable_is_an_error(unset_secrets: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(unset_secrets)
    for key in ("sources.s.token", "notifiers.desk.urls[0]", "officers.zw.urls[0]", "console.secret_key"):
        assert f"{key}: environment variable" in str(caught.value) or caught.value.key == key


def test_a_command_needing_no_secret_loads_with_every_one_unset(unset_secrets: Path) -> None:
    config = load_config(unset_secrets, ())
    assert config.sources["s"].token == "${WT_SOURCE_TOKEN}"  # as written, for no command to use
    assert config.notifiers["desk"].urls == ["dingtalk://${WT_DESK_SECRET}@${WT_DESK_TOKEN}/"]
    assert config.officers["zw"].urls[0].startswith("mailtos://alerts:${WT_SMTP_PASSWORD}@")
    assert config.console.secret_key is not None
    assert config.console.secret_key.get_secret_value() == "${WT_CONSOLE_KEY}"


@pytest.mark.parametrize(
    ("needs", "key", "variable"),
    [
        ({SecretScope.SOURCES}, "sources.s.token", "WT_SOURCE_TOKEN"),
        ({SecretScope.CHANNELS}, "notifiers.desk.urls[0]", "WT_DESK_SECRET"),
        ({SecretScope.CONSOLE}, "console.secret_key", "WT_CONSOLE_KEY"),
        ({SecretScope.CONSOLE_WHEN_ENABLED}, "console.secret_key", "WT_CONSOLE_KEY"),
    ],
)
def test_a_needed_scope_still_fails_naming_the_key_and_the_variable(
    unset_secrets: Path, needs: set[SecretScope], key: str, variable: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(unset_secrets, needs)
    assert_names(caught.value, unset_secrets, key)
    assert f"environment variable {variable} is not set" in str(caught.value).splitlines()[0]


def test_the_channels_scope_covers_officers_urls_but_not_their_names(
    unset_secrets: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("WT_DESK_SECRET", "WT_DESK_TOKEN"):
        monkeypatch.setenv(name, "abc123def456")
    with pytest.raises(ConfigError) as caught:
        load_config(unset_secrets, {SecretScope.CHANNELS})
    assert_names(caught.value, unset_secrets, "officers.zw.urls[0]")
    named = unset_secrets.read_text(encoding="utf-8").replace('name = "张伟"', 'name = "${WT_NAME_UNSET}"')
    with pytest.raises(ConfigError, match="WT_NAME_UNSET is not set"):
        load_config(write(unset_secrets.parent, named, "named.toml"), ())


def test_the_console_key_is_needed_when_enabled_only(unset_secrets: Path) -> None:
    disabled = unset_secrets.read_text(encoding="utf-8").replace("enabled = true", "enabled = false")
    path = write(unset_secrets.parent, disabled, "disabled.toml")
    assert not load_config(path, {SecretScope.CONSOLE_WHEN_ENABLED}).console.enabled
    with pytest.raises(ConfigError, match="WT_CONSOLE_KEY is not set"):
        load_config(path, {SecretScope.CONSOLE})


def test_an_unset_url_still_has_its_scheme_judged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WT_TOKEN", raising=False)
    path = write(tmp_path, '[notifiers.desk]\nurls = ["jsn://${WT_TOKEN}@127.0.0.1/hook"]\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path, ())
    assert_names(caught.value, path, "notifiers.desk.urls[0]")
    assert "unknown scheme 'jsn'" in caught.value.reason


def test_a_deferred_value_invalid_as_written_fails_for_its_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A value the placeholder cannot stand in for (a CA bundle to load) is reported as the unset
    variable it is, not as a file named ``${…}``."""
    monkeypatch.delenv("WT_CA_FILE", raising=False)
    path = write(tmp_path, '[sources.s]\ntype = "brreg"\nca_bundle = "${WT_CA_FILE}"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path, ())
    assert_names(caught.value, path, "sources.s.ca_bundle")
    assert caught.value.reason == "environment variable WT_CA_FILE is not set"
