"""A loopback stand-in of Brønnøysund's Enhetsregisteret for benchmarks and soak runs.

Serves generated ``/enheter/{orgnr}`` and ``/enheter/{orgnr}/roller`` documents shaped like the real
ones (and the test fixtures) for N companies with valid organisation numbers. It can enforce a
request rate the way a registry does, answering 429 when more than R requests arrived within the
last second, and it counts requests, 429s and accepted TCP connections so a benchmark can tell
whether a client saturates the rate without exceeding it. Companies can be marked changed (a new
daglig leder) between check cycles.

It also serves the register's update feeds as the real one shapes them: ``/oppdateringer/enheter``
(HAL pages by ``oppdateringsid`` or ``dato``) and ``/oppdateringer/roller`` (CloudEvents by ``afterId``
or ``afterTime``). A change publishes an entry in both; ``publish_unwatched`` adds the other companies
of Norway a real feed is full of; ``feed_status`` makes the feeds fail (500) or refuse a position (400).
"""

from __future__ import annotations

import json
import multiprocessing
import random
import sys
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from multiprocessing.connection import Connection
from urllib.parse import parse_qs, urlsplit

from watcher.identifiers import no_orgnr_check_digit

_FIRST_NAMES = ("Ingrid", "Magnus", "Hanne", "Lars", "Sofie", "Ole", "Kari", "Thomas", "Nora", "Eirik")
_LAST_NAMES = ("Haugland", "Solheim", "Strand", "Nygaard", "Berg", "Vik", "Aas", "Dahl", "Lie", "Moen")
_TOWNS = (("5003", "BERGEN", "4601"), ("0150", "OSLO", "0301"), ("7010", "TRONDHEIM", "5001"))
_FIRST_CHANGE = date(2026, 1, 5)


def valid_orgnrs(count: int, first8: int = 91_000_000) -> list[str]:
    """``count`` organisation numbers that pass the mod-11 check, in ascending order."""
    numbers: list[str] = []
    candidate = first8
    while len(numbers) < count:
        digits = f"{candidate:08d}"
        check = no_orgnr_check_digit(digits)
        if check is not None:
            numbers.append(f"{digits}{check}")
        candidate += 1
    return numbers


@dataclass
class StubCounters:
    """What the stub saw since the last reset; ``arrivals`` are monotonic times of every request."""

    requests: int = 0
    rejected: int = 0
    not_found: int = 0
    connections: int = 0
    arrivals: list[float] | None = None


class _RegistryHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _RegistryServer

    def do_GET(self) -> None:
        stub = self.server.stub
        if not stub.admit():
            self._send(429, {"status": 429, "error": "Too Many Requests"}, {"Retry-After": "1"})
            return
        url = urlsplit(self.path)
        parts = url.path.strip("/").split("/")
        if parts[0] == "oppdateringer" and len(parts) == 2:
            status, feed_document = stub.updates(parts[1], parse_qs(url.query))
            self._send(status, feed_document)
            return
        document = None
        if len(parts) in (2, 3) and parts[0] == "enheter" and (len(parts) == 2 or parts[2] == "roller"):
            document = stub.unit(parts[1]) if len(parts) == 2 else stub.roles(parts[1])
        if document is None:
            stub.count_not_found()
            self._send(404, {"status": 404, "error": "Not Found", "path": self.path})
        else:
            self._send(200, document)

    def _send(self, status: int, document: dict | list, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(document, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Benchmarks print their own table; per-request log lines would drown it."""


class _RegistryServer(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default backlog of 5 drops the SYNs of a burst of new connections, which the
    # client then resends a second later: a stall, and a late request that looks like a burst.
    request_queue_size = 128

    def __init__(self, stub: RegistryStub) -> None:
        super().__init__(("127.0.0.1", 0), _RegistryHandler)
        self.stub = stub

    def process_request(self, request, client_address) -> None:
        self.stub.count_connection()
        super().process_request(request, client_address)

    def handle_error(self, request, client_address) -> None:
        """A client closing its connections is normal; anything else is still reported."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class RegistryStub:
    """Enhetsregisteret for ``companies`` generated companies on 127.0.0.1, optionally rate-limited.

    Use as a context manager; ``url`` is the base URL to give ``BrregSource``. By default every
    company draws its people from 100 names with one birth date per role, so each person (name and
    birth date: a strong identity in the portfolio index) holds that role in about 1 % of the
    companies and the portfolio is one group of connected parties. ``own_people`` gives each company
    its own people (a double surname of 1,000 and a birth date per company and role), as a real
    portfolio mostly has them.
    """

    def __init__(
        self, companies: int, *, rate_limit: int | None = None, seed: int = 7, own_people: bool = False
    ) -> None:
        self.orgnrs = valid_orgnrs(companies)
        self.rate_limit = rate_limit
        self.own_people = own_people
        self._index = {orgnr: index for index, orgnr in enumerate(self.orgnrs)}
        self._random = random.Random(seed)
        self._generation = dict.fromkeys(self.orgnrs, 0)
        self._lock = threading.Lock()
        self._window: deque[float] = deque()
        self.counters = StubCounters(arrivals=[])
        self._server: _RegistryServer | None = None
        self._thread: threading.Thread | None = None
        # The update feeds: (id, orgnr, published) in id order; ids as the real feeds' are numbered.
        self._unit_updates: list[tuple[int, str, datetime]] = []
        self._role_updates: list[tuple[int, str, datetime]] = []
        self.feed_requests = 0
        self.feed_status = 200  # 500: the feeds fail; 400: they refuse every position (a gap)
        self._unwatched = 0

    # -- lifecycle ----------------------------------------------------------------------------------

    def __enter__(self) -> RegistryStub:
        self._server = _RegistryServer(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the stub is not running; use it as a context manager")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # -- counting and rate limiting -----------------------------------------------------------------

    def admit(self) -> bool:
        """Count one request; False when it is the (R+1)-th within the last second (answer 429)."""
        now = time.monotonic()
        with self._lock:
            self.counters.requests += 1
            assert self.counters.arrivals is not None
            self.counters.arrivals.append(now)
            if self.rate_limit is None:
                return True
            self._window.append(now)
            while self._window and self._window[0] <= now - 1.0:
                self._window.popleft()
            if len(self._window) > self.rate_limit:
                self.counters.rejected += 1
                return False
            return True

    def count_connection(self) -> None:
        with self._lock:
            self.counters.connections += 1

    def count_not_found(self) -> None:
        with self._lock:
            self.counters.not_found += 1

    def reset_counters(self) -> StubCounters:
        """The counters so far, and a fresh start (the rate window too) for the next run."""
        with self._lock:
            seen = self.counters
            self.counters = StubCounters(arrivals=[])
            self._window.clear()
        return seen

    def request_counts(self) -> tuple[int, int]:
        """(every request so far, feed requests so far), read together: a benchmark takes deltas."""
        with self._lock:
            return self.counters.requests, self.feed_requests

    # -- changes between cycles ---------------------------------------------------------------------

    def mark_changed(self, orgnrs: Iterable[str]) -> None:
        """Give these companies a new daglig leder (and a new ``sistEndret`` on the DAGL group), and
        publish each in both update feeds."""
        with self._lock:
            for orgnr in orgnrs:
                self._generation[orgnr] += 1
                self._publish(orgnr)

    def publish_unwatched(self, count: int) -> None:
        """Entries about ``count`` companies the portfolio does not hold (valid orgnrs of their own)."""
        with self._lock:
            for orgnr in valid_orgnrs(count, first8=80_000_000 + self._unwatched):
                self._publish(orgnr)
            self._unwatched += count * 2

    def _publish(self, orgnr: str) -> None:
        now = datetime.now(UTC)
        self._unit_updates.append((28_734_001 + len(self._unit_updates), orgnr, now))
        self._role_updates.append((104_882_913 + len(self._role_updates), orgnr, now))

    def updates(self, feed: str, query: dict[str, list[str]]) -> tuple[int, dict | list]:
        """An update feed's answer to ``query`` as (status, document)."""
        with self._lock:
            self.feed_requests += 1
            if self.feed_status != 200:
                return self.feed_status, {"status": self.feed_status, "error": "stub feed failure"}
            entries = {"enheter": self._unit_updates, "roller": self._role_updates}.get(feed)
            if entries is None:
                return 404, {"status": 404, "error": "Not Found"}
            size = int(query.get("size", ["20"])[0])
            chosen = [entry for entry in entries if _after(entry, feed, query)][:size]
        if feed == "roller":
            return 200, [
                {
                    "specversion": "1.0",
                    "id": str(update_id),
                    "source": f"/enhetsregisteret/api/enheter/{orgnr}/roller",
                    "type": "no.brreg.enhetsregisteret.rolle.oppdatert",
                    "time": _iso(published),
                    "data": {"organisasjonsnummer": orgnr},
                }
                for update_id, orgnr, published in chosen
            ]
        page: dict = {"page": {"size": size, "totalElements": len(chosen), "number": 0}}
        if chosen:
            page["_embedded"] = {
                "oppdaterteEnheter": [
                    {
                        "oppdateringsid": update_id,
                        "dato": _iso(published),
                        "organisasjonsnummer": orgnr,
                        "endringstype": "Endring",
                        "endringer": [{"op": "replace", "path": "/navn", "value": "X"}],
                    }
                    for update_id, orgnr, published in chosen
                ]
            }
        return 200, page

    def pick(self, count: int) -> list[str]:
        """``count`` companies chosen at random (seeded), e.g. to mark changed."""
        return self._random.sample(self.orgnrs, count)

    def daglig_leder(self, orgnr: str) -> str:
        """The current daglig leder's full name, as the mapped record should show it."""
        first, last = self._person(orgnr, "DAGL", self._generation[orgnr])
        return f"{first} {last}"

    def daglig_ledere(self) -> dict[str, str]:
        """Every company's current daglig leder, to check a whole cycle's records in one call."""
        return {orgnr: self.daglig_leder(orgnr) for orgnr in self.orgnrs}

    # -- documents ----------------------------------------------------------------------------------

    def _person(self, orgnr: str, role: str, generation: int = 0) -> tuple[str, str]:
        """A stable name per company and role; each generation shifts the first name, so a change
        always yields a different person."""
        pick = random.Random(f"{orgnr}/{role}")
        first, last = pick.randrange(len(_FIRST_NAMES)), pick.randrange(len(_LAST_NAMES))
        surname = _LAST_NAMES[last]
        if self.own_people:
            surname = f"{_LAST_NAMES[pick.randrange(len(_LAST_NAMES))]} {surname}"
        return _FIRST_NAMES[(first + generation) % len(_FIRST_NAMES)], surname

    def _born(self, orgnr: str, role: str, shared: str, generation: int = 0) -> str:
        """The role's shared birth date, or with ``own_people`` one of the company, role and generation."""
        if not self.own_people:
            return shared
        days = random.Random(f"{orgnr}/{role}/{generation}/born").randrange(40 * 365)
        return (date(1945, 1, 1) + timedelta(days=days)).isoformat()

    def unit(self, orgnr: str) -> dict | None:
        index = self._index.get(orgnr)
        if index is None:
            return None
        postcode, town, kommune_nr = _TOWNS[index % len(_TOWNS)]
        link = f"/enhetsregisteret/api/enheter/{orgnr}"
        return {
            "organisasjonsnummer": orgnr,
            "navn": f"STUB SELSKAP {index:05d} AS",
            "organisasjonsform": {"kode": "AS", "beskrivelse": "Aksjeselskap"},
            "registreringsdatoEnhetsregisteret": "2015-06-10",
            "registrertIMvaregisteret": True,
            "naeringskode1": {"kode": "46.381", "beskrivelse": "Engroshandel med fisk, skalldyr og bløtdyr"},
            "antallAnsatte": 5 + index % 40,
            "forretningsadresse": {
                "land": "Norge",
                "landkode": "NO",
                "postnummer": postcode,
                "poststed": town,
                "adresse": [f"Bryggen {1 + index % 90}"],
                "kommune": town,
                "kommunenummer": kommune_nr,
            },
            "stiftelsesdato": "2015-05-28",
            "registrertIForetaksregisteret": True,
            "konkurs": False,
            "underAvvikling": False,
            "underTvangsavviklingEllerTvangsopplosning": False,
            "maalform": "Bokmål",
            "kapital": {"belop": 30000.0 + 1000 * (index % 50), "valuta": "NOK", "type": "Aksjekapital"},
            "_links": {"self": {"href": link}},
        }

    def roles(self, orgnr: str) -> dict | None:
        if orgnr not in self._index:
            return None
        generation = self._generation[orgnr]
        manager = self._person(orgnr, "DAGL", generation)
        chair = self._person(orgnr, "LEDE")
        member = self._person(orgnr, "MEDL")
        changed = (_FIRST_CHANGE + timedelta(days=generation)).isoformat()
        return {
            "rollegrupper": [
                _group("DAGL", "Daglig leder/ adm.direktør", changed, [
                    _person_role("DAGL", "Daglig leder", manager,
                                 self._born(orgnr, "DAGL", "1979-04-17", generation)),
                ]),
                _group("STYR", "Styre", "2023-03-14", [
                    _person_role("LEDE", "Styrets leder", chair, self._born(orgnr, "LEDE", "1968-11-02")),
                    _person_role("MEDL", "Styremedlem", member, self._born(orgnr, "MEDL", "1972-01-23")),
                ]),
                _group("REVI", "Revisor", "2019-05-02", [_unit_role("REVI", "Revisor", "987650001")]),
            ],
            "_links": {"self": {"href": f"/enhetsregisteret/api/enheter/{orgnr}/roller"}},
        }  # fmt: skip


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _after(entry: tuple[int, str, datetime], feed: str, query: dict[str, list[str]]) -> bool:
    """Whether a feed entry comes after the query's position (an id, or a time)."""
    update_id, _orgnr, published = entry
    by_id = query.get("oppdateringsid" if feed == "enheter" else "afterId")
    if by_id:
        first = int(by_id[0]) if feed == "enheter" else int(by_id[0]) + 1
        return update_id >= first
    by_time = query.get("dato" if feed == "enheter" else "afterTime")
    if by_time:
        return published >= datetime.fromisoformat(by_time[0].replace("Z", "+00:00"))
    return True


class StubProcess:
    """A :class:`RegistryStub` in a child process, driven through a pipe.

    A registry is another machine: its clock of arrivals must not wait for our interpreter. In the
    benchmark's own process the stub's threads share the GIL with the client, which adds tens of
    milliseconds of jitter to the arrival times it rate-limits on.
    """

    def __init__(
        self, companies: int, *, rate_limit: int | None = None, seed: int = 7, own_people: bool = False
    ) -> None:
        self._arguments = (companies, rate_limit, seed, own_people)
        self._connection: Connection | None = None
        self._process: multiprocessing.process.BaseProcess | None = None
        self.url = ""
        self.orgnrs: list[str] = []

    def __enter__(self) -> StubProcess:
        context = multiprocessing.get_context("spawn")
        ours, theirs = context.Pipe()
        self._process = context.Process(target=_serve_stub, args=(theirs, *self._arguments), daemon=True)
        self._process.start()
        self._connection = ours
        self.url, self.orgnrs = ours.recv()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._connection is not None:
            self._connection.send(None)
            self._connection.close()
        if self._process is not None:
            self._process.join(timeout=10)

    def _call(self, method: str, *arguments: object):
        if self._connection is None:
            raise RuntimeError("the stub is not running; use it as a context manager")
        self._connection.send((method, arguments))
        return self._connection.recv()

    def reset_counters(self) -> StubCounters:
        return self._call("reset_counters")

    def mark_changed(self, orgnrs: Iterable[str]) -> None:
        self._call("mark_changed", list(orgnrs))

    def pick(self, count: int) -> list[str]:
        return self._call("pick", count)

    def daglig_ledere(self) -> dict[str, str]:
        return self._call("daglig_ledere")

    def publish_unwatched(self, count: int) -> None:
        self._call("publish_unwatched", count)

    def request_counts(self) -> tuple[int, int]:
        return self._call("request_counts")


def _serve_stub(
    connection: Connection, companies: int, rate_limit: int | None, seed: int, own_people: bool
) -> None:
    with RegistryStub(companies, rate_limit=rate_limit, seed=seed, own_people=own_people) as stub:
        connection.send((stub.url, stub.orgnrs))
        while (request := connection.recv()) is not None:
            method, arguments = request
            connection.send(getattr(stub, method)(*arguments))


def _group(code: str, description: str, changed: str, roles: list[dict]) -> dict:
    return {"type": {"kode": code, "beskrivelse": description}, "sistEndret": changed, "roller": roles}


def _person_role(code: str, description: str, name: tuple[str, str], born: str) -> dict:
    return {
        "type": {"kode": code, "beskrivelse": description},
        "person": {"fodselsdato": born, "navn": {"fornavn": name[0], "etternavn": name[1]}, "erDoed": False},
        "fratraadt": False,
        "rekkefolge": 0,
    }


def _unit_role(code: str, description: str, orgnr: str) -> dict:
    return {
        "type": {"kode": code, "beskrivelse": description},
        "enhet": {
            "organisasjonsnummer": orgnr,
            "organisasjonsform": {"kode": "AS", "beskrivelse": "Aksjeselskap"},
            "navn": ["VESTLAND REVISJON AS"],
            "erSlettet": False,
        },
        "fratraadt": False,
        "rekkefolge": 0,
    }
