"""The registries' change feeds as sources read them: Brønnøysund's update feeds (respx at the policy's
transport, from the saved samples) and the Companies House streams (a real streaming server on
127.0.0.1: heartbeats, blank lines, resume by timepoint, 416). A feed failure is never an entry."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import respx

from sources.brreg import BrregOptions, BrregSource
from sources.brreg_updates import PAGE_SIZE, changed_paths, parse_position
from sources.change_feed import FeedGapError
from sources.companies_house import CompaniesHouseOptions, CompaniesHouseSource
from sources.companies_house_stream import company_number, parse_event
from tests.loopback import QuietHandler, serve
from tests.mocking import TRANSPORT
from watcher.errors import AuthError, BlockedError, ParseError, RateLimitedError, TransientError

FIXTURES = Path(__file__).parent / "fixtures" / "registries"
BRREG_URL = "http://brreg.test/enhetsregisteret/api"
NOW = datetime(2026, 3, 2, 5, 0, tzinfo=UTC)


def sample(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


@pytest.fixture
async def brreg():
    source = BrregSource("no", BrregOptions(type="brreg", base_url=BRREG_URL, retries=0))
    yield source
    await source.aclose()


@pytest.fixture
def api():
    with respx.mock(using=TRANSPORT, base_url=BRREG_URL, assert_all_called=False) as mock:
        yield mock


def _feeds(source: BrregSource):
    units, roles = source.change_feeds()
    return units, roles


# -- Brønnøysund: units ------------------------------------------------------------------------------


async def test_unit_updates_from_the_sample_name_each_unit_and_resume_after_the_last_id(brreg, api):
    route = api.get("/oppdateringer/enheter").respond(200, text=sample("no_brreg/oppdateringer_enheter.json"))
    units, _roles = _feeds(brreg)
    batch = await units.read(None, now=NOW)
    assert [entry.registry_id for entry in batch.entries] == ["927140004", "812000004", "933110001"]
    assert batch.position == "id:28734003" and batch.caught_up
    assert batch.published_at == datetime(2026, 3, 2, 5, 1, 13, 1000, tzinfo=UTC)
    first = parse_qs(urlsplit(str(route.calls[0].request.url)).query)
    assert first["dato"] == ["2026-03-02T05:00:00.000Z"] and first["size"] == [str(PAGE_SIZE)]
    await units.read(batch.position, now=NOW)
    second = parse_qs(urlsplit(str(route.calls[1].request.url)).query)
    assert second["oppdateringsid"] == ["28734004"] and "dato" not in second


async def test_an_empty_page_keeps_reading_from_the_same_time_until_an_entry_comes(brreg, api):
    api.get("/oppdateringer/enheter").respond(200, json={"page": {"size": 1000, "totalElements": 0}})
    units, _roles = _feeds(brreg)
    batch = await units.read(None, now=NOW)
    assert batch.entries == () and batch.caught_up and batch.position == "dato:2026-03-02T05:00:00.000Z"
    later = await units.read(batch.position, now=NOW + timedelta(hours=1))
    assert later.position == batch.position, "the start stays where following began"


def test_both_documented_forms_of_endringer_give_the_changed_paths():
    objects = [
        {"op": "replace", "path": "/antallAnsatte", "value": 41},
        {"op": "remove", "path": "/hjemmeside"},
    ]
    flat = ["replace", "/antallAnsatte", 41, "replace", "/forretningsadresse/adresse/0", "Bryggen 23"]
    assert changed_paths(objects) == ("/antallAnsatte", "/hjemmeside")
    assert changed_paths(flat) == ("/antallAnsatte", "/forretningsadresse/adresse/0")
    assert changed_paths(None) == () and changed_paths("garbage") == ()


async def test_a_unit_update_with_the_flat_endringer_form_is_read(brreg, api):
    document = json.loads(sample("no_brreg/oppdateringer_enheter.json"))
    document["_embedded"]["oppdaterteEnheter"][0]["endringer"] = ["replace", "/navn", "NYTT NAVN AS"]
    api.get("/oppdateringer/enheter").respond(200, json=document)
    units, _roles = _feeds(brreg)
    batch = await units.read("id:28734000", now=NOW)
    assert len(batch.entries) == 3


async def test_an_entry_with_an_unusable_orgnr_is_skipped_and_the_feed_goes_on(brreg, api, caplog):
    document = json.loads(sample("no_brreg/oppdateringer_enheter.json"))
    document["_embedded"]["oppdaterteEnheter"][1]["organisasjonsnummer"] = "812000005"  # bad check digit
    api.get("/oppdateringer/enheter").respond(200, json=document)
    units, _roles = _feeds(brreg)
    batch = await units.read("id:1", now=NOW)
    assert [entry.registry_id for entry in batch.entries] == ["927140004", "933110001"]
    assert batch.position == "id:28734003", "skipped, not stuck: the full poll still covers that unit"
    assert "oppdateringsid 28734002" in caplog.text


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (500, '{"status": 500}', TransientError),
        (503, "", TransientError),
        (429, '{"status": 429}', RateLimitedError),
        (400, '{"status": 400, "feilmelding": "for gammel"}', FeedGapError),
        (410, "{}", FeedGapError),
        (200, "", ParseError),
        (200, '{"_embedded": {"oppdaterteEnheter": [{"oppdateringsid": 1, "organis', ParseError),
        (200, "<html><title>Just a moment...</title>captcha</html>", BlockedError),
        (200, '{"error": "upstream unavailable"}', ParseError),  # JSON, but no page: not "nothing new"
        (200, '{"_embedded": {"oppdaterteEnheter": [{"organisasjonsnummer": "927140004"}]}}', ParseError),
        (200, '{"_embedded": {"oppdaterteEnheter": "nope"}}', ParseError),
    ],
)
async def test_a_failed_unit_feed_read_is_an_error_never_entries(brreg, api, status, body, error):
    api.get("/oppdateringer/enheter").respond(status, text=body)
    units, _roles = _feeds(brreg)
    with pytest.raises(error):
        await units.read("id:5", now=NOW)


def test_positions_are_an_id_or_a_start_time_and_nothing_else():
    assert parse_position(None, NOW) == (None, NOW)
    assert parse_position("id:42", NOW) == (42, NOW)
    assert parse_position("dato:2026-03-01T00:00:00.000Z", NOW) == (None, datetime(2026, 3, 1, tzinfo=UTC))
    for bad in ("42", "id:x", "dato:yesterday", "timepoint:1"):
        with pytest.raises(FeedGapError):
            parse_position(bad, NOW)


# -- Brønnøysund: roles ------------------------------------------------------------------------------


async def test_role_updates_from_the_sample_resume_after_the_last_event_id(brreg, api):
    route = api.get("/oppdateringer/roller").respond(200, text=sample("no_brreg/oppdateringer_roller.json"))
    _units, roles = _feeds(brreg)
    batch = await roles.read(None, now=NOW)
    assert [entry.registry_id for entry in batch.entries] == ["927140004", "933110001"]
    assert batch.position == "id:104882914" and batch.caught_up
    assert parse_qs(urlsplit(str(route.calls[0].request.url)).query)["afterTime"] == [
        "2026-03-02T05:00:00.000Z"
    ]
    await roles.read(batch.position, now=NOW)
    assert parse_qs(urlsplit(str(route.calls[1].request.url)).query)["afterId"] == ["104882914"]


async def test_a_role_event_without_a_numeric_id_fails_the_read(brreg, api):
    api.get("/oppdateringer/roller").respond(
        200, json=[{"id": "abc", "data": {"organisasjonsnummer": "927140004"}}]
    )
    _units, roles = _feeds(brreg)
    with pytest.raises(ParseError):
        await roles.read("id:1", now=NOW)


async def test_feed_false_follows_nothing():
    source = BrregSource("no", BrregOptions(type="brreg", feed=False))
    assert source.change_feeds() == ()
    await source.aclose()


# -- Companies House streams -------------------------------------------------------------------------


def test_the_company_number_is_read_from_the_resource_uri_only():
    assert company_number("/company/SC612345/appointments/Pp1") == "SC612345"
    assert company_number("/company/01234567") == "01234567"
    assert company_number("/officers/abc/appointments") is None and company_number(None) is None
    lines = [
        line for line in sample("uk_companies_house/stream_officers_and_psc.ndjson").splitlines() if line
    ]
    assert [parse_event(line)[:2] for line in lines] == [
        (48213377, "SC612345"),
        (48213378, "SC612345"),
        (9912040, "SC612345"),
    ]
    with pytest.raises(ParseError):
        parse_event('{"resource_uri": "/company/1", "event": {"timepoint": "1"}}')


class StreamServer:
    """A Companies House stream on 127.0.0.1: sends ``lines`` (with blank heartbeats between), then
    holds the connection open with heartbeats; answers ``status`` instead when it is not 200."""

    def __init__(self, lines: list[str], *, status: int = 200, gap: float = 0.05) -> None:
        self.lines, self.status, self.gap = lines, status, gap
        self.requests: list[tuple[str, dict[str, list[str]], str | None]] = []

    @property
    def handler(self) -> type[QuietHandler]:
        server = self

        class Handler(QuietHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                server.requests.append((url.path, parse_qs(url.query), self.headers.get("Authorization")))
                if server.status != 200:
                    self.send_body(server.status, b'{"error": "no"}')
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                first = int(parse_qs(url.query).get("timepoint", ["0"])[0])
                try:
                    for line in server.lines:
                        if _timepoint(line) >= first:
                            self._chunk(line + "\n")
                        self._chunk("\n")  # a heartbeat
                        time.sleep(server.gap)
                    for _ in range(100):
                        self._chunk("\n")
                        time.sleep(server.gap)
                except (BrokenPipeError, ConnectionResetError):
                    return

            def _chunk(self, text: str) -> None:
                data = text.encode()
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()

        return Handler


def _timepoint(line: str) -> int:
    """A line's timepoint; a line that is no event is always sent."""
    try:
        return int(json.loads(line)["event"]["timepoint"])
    except ValueError:
        return 1 << 62


def _event(timepoint: int, company: str = "SC612345") -> str:
    return json.dumps(
        {
            "resource_kind": "company-officers",
            "resource_uri": f"/company/{company}/appointments/x{timepoint}",
            "data": {"name": "CHEN, Li Wei"},
            "event": {"timepoint": timepoint, "published_at": "2026-02-28T09:14:03", "type": "changed"},
        }
    )


@pytest.fixture
def stream() -> Iterator[tuple[StreamServer, str]]:
    server = StreamServer([_event(100), _event(101, "sc1234"), _event(102, "../x"), _event(103, "01234567")])
    with serve(server.handler) as url:
        yield server, url


async def _officers(url: str, window: float = 0.6) -> CompaniesHouseSource:
    options = CompaniesHouseOptions(
        type="companies_house",
        api_key="k",
        stream_key="stream-secret",
        stream_url=url,
        streams=("officers",),
        stream_window=timedelta(seconds=window),
    )
    return CompaniesHouseSource("uk", options)


async def test_a_stream_read_holds_its_window_skips_heartbeats_and_resumes_after_the_last_timepoint(stream):
    server, url = stream
    source = await _officers(url)
    [officers] = source.change_feeds()
    started = time.monotonic()
    batch = await officers.read(None, now=NOW)
    assert 0.5 < time.monotonic() - started < 5, "the read ends with its window"
    assert [entry.registry_id for entry in batch.entries] == ["SC612345", "SC001234", "01234567"]
    assert batch.position == "104" and batch.caught_up
    path, query, auth = server.requests[0]
    assert path == "/officers" and "timepoint" not in query and auth == "Basic c3RyZWFtLXNlY3JldDo="
    again = await officers.read(batch.position, now=NOW)
    assert server.requests[1][1]["timepoint"] == ["104"] and again.entries == ()
    assert again.position == "104", "nothing new: the same position"
    await officers.aclose()
    await source.aclose()


@pytest.mark.parametrize(
    ("status", "error"),
    [(416, FeedGapError), (401, AuthError), (429, RateLimitedError), (503, TransientError)],
)
async def test_a_refused_stream_is_an_error(status, error):
    server = StreamServer([], status=status)
    with serve(server.handler) as url:
        source = await _officers(url)
        [officers] = source.change_feeds()
        with pytest.raises(error):
            await officers.read("5", now=NOW)
        await officers.aclose()
        await source.aclose()


async def test_a_stream_that_is_no_stream_fails_the_read():
    server = StreamServer(["this is not json"])
    with serve(server.handler) as url:
        source = await _officers(url)
        [officers] = source.change_feeds()
        with pytest.raises(ParseError):
            await officers.read(None, now=NOW)
        await officers.aclose()
        await source.aclose()


def test_streams_are_followed_only_with_a_stream_key_and_an_explicit_feed_needs_one():
    plain = CompaniesHouseSource("uk", CompaniesHouseOptions(type="companies_house", api_key="k"))
    assert plain.change_feeds() == ()
    with pytest.raises(ValueError, match="stream_key"):
        CompaniesHouseOptions(type="companies_house", api_key="k", feed=True)
    with pytest.raises(ValueError, match="unknown stream"):
        CompaniesHouseOptions(type="companies_house", api_key="k", stream_key="s", streams=("oficers",))
    keyed = CompaniesHouseSource(
        "uk", CompaniesHouseOptions(type="companies_house", api_key="k", stream_key="s")
    )
    assert [feed.name for feed in keyed.change_feeds()] == [
        "companies",
        "officers",
        "persons-with-significant-control",
        "charges",
        "insolvency-cases",
    ]


def test_the_stream_key_is_never_in_the_options_repr():
    options = CompaniesHouseOptions(type="companies_house", api_key="k", stream_key="do-not-print")
    assert "do-not-print" not in repr(options)


class _EmptyStream(QuietHandler):
    """A 200 with an empty body, as a proxy in the way might answer: no stream at all."""

    def do_GET(self) -> None:
        self.send_body(200, b"")


async def test_a_stream_that_closes_at_once_without_a_line_is_a_failed_read():
    with serve(_EmptyStream) as url:
        source = await _officers(url)
        [officers] = source.change_feeds()
        with pytest.raises(TransientError, match="closed at once"):
            await officers.read("5", now=NOW)
        await officers.aclose()
        await source.aclose()
