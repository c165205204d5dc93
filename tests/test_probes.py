"""``watcher run`` with ``[metrics] enabled``: ``/healthz`` and Prometheus ``/metrics`` over real HTTP.

Real daemon processes (the helpers of ``test_daemon.py``) against the loopback Brønnøysund stand-in,
scraped on 127.0.0.1 with ``urllib`` and read back with prometheus_client's own parser. To take the
database away from a running daemon without touching the shared PostgreSQL server, the daemon reaches
it through a small TCP relay on 127.0.0.1 that the test closes and opens again.
"""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from bench.daemon_scale import BrregStandIn
from tests.receivers import ChatReceiver, free_port
from tests.test_daemon import (
    DaemonProcess,
    add_borrowers,
    chat_robot,
    daemon_spawner,
    rows,
    wait_until,
    write_config,
)
from watcher.config import load_config
from watcher.health import ProblemKind
from watcher.metrics import DaemonMetrics, check_outcome_label
from watcher.models import Borrower, Delivery, utcnow
from watcher.pipeline import CheckOutcome
from watcher.store import open_store

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
def spawn() -> Iterator[Callable[..., DaemonProcess]]:
    with daemon_spawner() as start:
        yield start


@pytest.fixture
def chat() -> Iterator[ChatReceiver]:
    with chat_robot() as receiver:
        yield receiver


def probe_config(folder: Path, port: int, *, extra: str = "", **options) -> Path:
    """A daemon config with ``[metrics]`` on ``port`` and a one-second heartbeat."""
    metrics = f'[metrics]\nenabled = true\nhost = "127.0.0.1"\nport = {port}\n'
    path = write_config(folder, extra=metrics + extra, **options)
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("[schedule]\n", '[schedule]\nheartbeat = "1s"\n'), encoding="utf-8")
    return path


def get(port: int, path: str) -> tuple[int, str, str]:
    """Status, Content-Type and body of ``GET http://127.0.0.1:port/path`` (HTTP errors included)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.headers["Content-Type"], response.read().decode("utf-8")
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read().decode("utf-8")


def healthz(port: int) -> tuple[int, dict] | None:
    """Status and JSON body of /healthz; None while nothing listens."""
    try:
        status, _, body = get(port, "/healthz")
    except OSError:
        return None
    return status, json.loads(body)


def answers_with(port: int, status: int, seen: list[tuple[int, dict]] | None = None) -> Callable[[], bool]:
    """A ``wait_until`` condition: /healthz answers ``status`` (each answer is kept in ``seen``)."""

    def condition() -> bool:
        answer = healthz(port)
        if answer is not None and seen is not None:
            seen.append(answer)
        return answer is not None and answer[0] == status

    return condition


def scrape(port: int) -> Samples:
    status, content_type, body = get(port, "/metrics")
    assert status == 200 and content_type.startswith("text/plain; version="), (status, content_type)
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def down_source(port: int) -> str:
    return (
        f'[sources.brreg_down]\ntype = "brreg"\nbase_url = "http://127.0.0.1:{port}"\nretries = 0\n'
        "feed = false\n"
    )


# -- /healthz and /metrics of a running daemon -------------------------------------------------------------


def test_metrics_count_checks_by_source_and_outcome_and_mirror_the_database(
    tmp_path, spawn, sqlite_url, chat
):
    """Five Brønnøysund borrowers (baselines, then unchanged checks, then one planted change whose
    alert the officer's robot rejects) and one borrower of a source on a closed port (a failed
    check): each shows in the counters, the histogram and the gauges that mirror `watcher status`."""
    port = free_port()
    started = time.time()
    with BrregStandIn() as registry:
        config = probe_config(
            tmp_path, port, database_url=sqlite_url, registry_url=registry.base_url, instance_name="probe-a",
            interval="2s", officer_url=chat.dingtalk_url("tok"), extra=down_source(free_port()),
        )  # fmt: skip
        store = open_store(load_config(config).database.url)
        add_borrowers(store, registry.orgnrs[:5], officer="kari")
        add_borrowers(store, registry.orgnrs[5:6], source="brreg_down", prefix="down")
        chat.reject_with(310000, "keywords not in content")
        daemon = spawn(config)
        daemon.wait_ready()

        wait_until(answers_with(port, 200), 20, "/healthz to answer 200")
        status, body = healthz(port)
        brreg = (Borrower.source == "brreg",)
        wait_until(lambda: all(b.baseline_at for b in rows(store, Borrower, *brreg)), 20, "baselines")
        registry.plant_change(registry.orgnrs[:1])
        wait_until(lambda: len(rows(store, Delivery, Delivery.attempts >= 1)) == 1, 20, "a rejected delivery")

        def settled() -> bool:
            samples = scrape(port)
            return (
                value(samples, "watcher_outbox_deliveries", state="retrying") == 1
                and (value(samples, "watcher_checks_total", source="brreg", outcome="unchanged") or 0) >= 5
            )

        wait_until(settled, 20, "the gauges to catch up with the database")
        samples = scrape(port)
        assert daemon.stop()[0] == 0, daemon.output

    assert status == 200
    assert body == {
        "status": "ok", "instance": "probe-a", "scheduler": "running", "database": "reachable",
        "database_error": None,
    }  # fmt: skip
    assert value(samples, "watcher_checks_total", source="brreg", outcome="baseline") == 5
    assert value(samples, "watcher_checks_total", source="brreg", outcome="changed") == 1
    assert value(samples, "watcher_checks_total", source="brreg_down", outcome="failed") >= 1  # retried
    assert value(samples, "watcher_checks_total", source="brreg_down", outcome="baseline") is None
    checks = sum(
        count
        for (name, labels), count in samples.items()
        if name == "watcher_checks_total" and ("source", "brreg") in labels
    )
    assert value(samples, "watcher_check_duration_seconds_count", source="brreg") == checks
    assert value(samples, "watcher_check_duration_seconds_bucket", source="brreg", le="+Inf") == checks
    assert value(samples, "watcher_check_duration_seconds_sum", source="brreg") > 0
    assert value(samples, "watcher_deliveries_total", result="failed") >= 1
    assert value(samples, "watcher_deliveries_total", result="sent") is None
    assert value(samples, "watcher_borrowers") == 6
    assert value(samples, "watcher_borrowers_failing") == 1
    assert value(samples, "watcher_source_consecutive_failures", source="brreg_down") >= 1
    assert value(samples, "watcher_source_consecutive_failures", source="brreg") == 0
    assert value(samples, "watcher_outbox_deliveries", state="dead") == 0
    assert value(samples, "watcher_instances", state="alive") == 1
    problems = {kind: value(samples, "watcher_health_problems", kind=kind.value) for kind in ProblemKind}
    assert problems == {
        ProblemKind.source_failing: 1, ProblemKind.borrowers_failing: 1, ProblemKind.borrowers_overdue: 0,
        ProblemKind.deliveries_failing: 1, ProblemKind.no_live_instance: 0, ProblemKind.feed_gap: 0,
    }  # fmt: skip
    assert started < value(samples, "watcher_last_sweep_timestamp_seconds") <= time.time()
    assert started < value(samples, "watcher_heartbeat_timestamp_seconds") <= time.time()
    store.dispose()


def test_healthz_answers_503_while_the_daemon_drains_its_checks(tmp_path, spawn, sqlite_url):
    """SIGTERM during slow checks: until the process is gone, /healthz says the scheduler is stopping."""
    port = free_port()
    with BrregStandIn(delay=3.0) as registry:
        config = probe_config(tmp_path, port, database_url=sqlite_url, registry_url=registry.base_url)
        store = open_store(load_config(config).database.url)
        add_borrowers(store, registry.orgnrs[:2])
        daemon = spawn(config)
        daemon.wait_ready()
        wait_until(lambda: len(registry.hits) >= 1, 20, "a check in flight")
        assert healthz(port)[0] == 200
        daemon.process.send_signal(signal.SIGTERM)
        answers: list[tuple[int, dict]] = []
        wait_until(answers_with(port, 503, answers), 10, "a 503")
        code = daemon.process.wait(timeout=30)
        store.dispose()

    assert code == 0, daemon.output
    status, body = answers[-1]
    assert status == 503
    assert (body["status"], body["scheduler"], body["database"]) == ("unavailable", "stopping", "reachable")
    assert healthz(port) is None  # the endpoint closes with the daemon


# -- the database goes away --------------------------------------------------------------------------------


class TcpRelay:
    """Forwards 127.0.0.1:port to a target address; ``close()`` drops every connection and stops
    listening (the database is gone), ``open()`` listens on the same port again."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None

    def open(self) -> TcpRelay:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def close(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, server]
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)


def test_healthz_answers_503_while_the_database_is_unreachable_and_200_when_it_is_back(
    tmp_path, spawn, postgres_url
):
    relay = TcpRelay(("127.0.0.1", 5432)).open()
    relayed = postgres_url.replace("@127.0.0.1:5432/", f"@127.0.0.1:{relay.port}/")
    assert relayed != postgres_url
    port = free_port()
    try:
        with BrregStandIn() as registry:
            config = probe_config(tmp_path, port, database_url=relayed, registry_url=registry.base_url)
            daemon = spawn(config)
            daemon.wait_ready()
            wait_until(answers_with(port, 200), 20, "a 200")
            relay.close()
            gone: list[tuple[int, dict]] = []
            wait_until(answers_with(port, 503, gone), 20, "a 503 with the database gone")
            relay.open()
            wait_until(answers_with(port, 200), 20, "a 200 with the database back")
            assert daemon.stop()[0] == 0, daemon.output
    finally:
        relay.close()

    status, body = gone[-1]
    assert status == 503
    assert (body["status"], body["scheduler"], body["database"]) == ("unavailable", "running", "unreachable")
    assert body["database_error"] == "OperationalError"


# -- one registry per daemon ---------------------------------------------------------------------------------


def test_each_daemon_has_its_own_registry_and_leaves_the_global_one_alone():
    first, second = DaemonMetrics(), DaemonMetrics()
    first.checked("brreg", CheckOutcome("b-1", ok=True, changes=2), 0.4)
    first.checked("brreg", CheckOutcome("b-2", ok=False, error_kind="transient"), 1.5)
    first.swept(utcnow())

    assert first.registry is not second.registry is not REGISTRY
    changed = {"source": "brreg", "outcome": "changed"}
    assert first.registry.get_sample_value("watcher_checks_total", changed) == 1
    assert first.registry.get_sample_value("watcher_checks_total", {**changed, "outcome": "failed"}) == 1
    assert second.registry.get_sample_value("watcher_checks_total", changed) is None
    assert second.registry.get_sample_value("watcher_last_sweep_timestamp_seconds") == 0
    assert REGISTRY.get_sample_value("watcher_checks_total", changed) is None


@pytest.mark.parametrize(
    ("outcome", "label"),
    [
        (CheckOutcome("b", ok=True, baseline=True), "baseline"),
        (CheckOutcome("b", ok=True, changes=3, alert_id=7), "changed"),
        (CheckOutcome("b", ok=True), "unchanged"),
        (CheckOutcome("b", ok=False, error_kind="parse"), "failed"),
    ],
)
def test_check_outcome_labels(outcome, label):
    assert check_outcome_label(outcome) == label
