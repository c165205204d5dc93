"""`watcher run` following Brønnøysund's update feeds (a loopback stand-in that serves them): a change
is alerted within seconds although the interval is a day, companies that did not change are not
fetched again, a feed gap falls back to polling with one alert and comes back; on PostgreSQL two
instances have one follower, and when it is killed the other takes over with nothing lost or alerted
twice."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import col

from bench.daemon_scale import BrregStandIn
from tests.receivers import ChatReceiver
from tests.test_daemon import (
    DaemonProcess,
    add_borrowers,
    chat_robot,
    child_env,
    daemon_spawner,
    rows,
    slow,
    wait_until,
    watcher_command,
    write_config,
)
from watcher.models import Alert, Borrower, ChangeEvent, Delivery, FeedState, utcnow
from watcher.store import Store, open_store
from watcher.vocabulary import AlertKind

FEED = '[sources.brreg]\nfeed_every = "1s"\n'


@pytest.fixture
def spawn() -> Iterator[Callable[..., DaemonProcess]]:
    with daemon_spawner() as start:
        yield start


@pytest.fixture
def chat() -> Iterator[ChatReceiver]:
    with chat_robot() as receiver:
        yield receiver


def feed_config(folder: Path, url: str, registry: BrregStandIn, *, name: str, officer_url: str) -> Path:
    """A day's interval (polling would not see a change in a test's time), the feed read every second."""
    path = write_config(
        folder,
        database_url=url,
        registry_url=registry.base_url,
        instance_name=name,
        interval="24h",
        sweep_every="1s",
        lease="4s",
        heartbeat="1s",
        officer_url=officer_url,
        file_name=f"{name}.toml",
        feed=True,
    )
    text = path.read_text(encoding="utf-8").replace("feed = true", 'feed = true\nfeed_every = "1s"')
    path.write_text(text, encoding="utf-8")
    return path


def baselined(store: Store, count: int) -> bool:
    return len(rows(store, Borrower, col(Borrower.baseline_at).is_not(None))) == count


def change_alerts(store: Store) -> dict[str, int]:
    """Change alerts per borrower."""
    counted: dict[str, int] = {}
    for alert in rows(store, Alert, Alert.kind == AlertKind.CHANGE):
        counted[alert.borrower_id] = counted.get(alert.borrower_id, 0) + 1
    return counted


def status_json(config: Path) -> dict:
    process = subprocess.run(
        watcher_command(config, "status", "--format", "json"),
        env=child_env(),
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
    )
    return json.loads(process.stdout)


@slow
def test_a_change_in_the_feed_is_alerted_within_seconds_and_a_gap_falls_back_to_polling(
    tmp_path, spawn, chat, sqlite_url
):
    with BrregStandIn(companies=40) as registry:
        orgnrs = registry.orgnrs[:12]
        config = feed_config(
            tmp_path, sqlite_url, registry, name="solo", officer_url=chat.dingtalk_url("tok")
        )
        store = open_store(sqlite_url)
        ids = dict(zip(orgnrs, add_borrowers(store, orgnrs, officer="kari"), strict=True))
        daemon = spawn(config)
        daemon.wait_ready()
        wait_until(lambda: baselined(store, 12), 30, "every borrower baselined")
        wait_until(
            lambda: len(rows(store, FeedState, col(FeedState.read_at).is_not(None))) == 2, 10, "feeds read"
        )
        fetched_before = {orgnr: len(times) for orgnr, times in registry.fetch_times("enhet").items()}

        changed = orgnrs[:3]
        planted = time.monotonic()
        registry.plant_change(changed)
        registry.publish_unwatched(200)
        wait_until(lambda: change_alerts(store) == {ids[o]: 1 for o in changed}, 20, "three change alerts")
        latency = time.monotonic() - planted
        wait_until(lambda: len(rows(store, Delivery, Delivery.status == "sent")) >= 3, 20, "alerts delivered")
        assert latency < 1 + 30, f"alerted {latency:.1f}s after the change (feed_every 1s + 30s)"
        fetched_after = {orgnr: len(times) for orgnr, times in registry.fetch_times("enhet").items()}
        assert {o for o in orgnrs if fetched_after[o] > fetched_before[o]} == set(changed), (
            "only the changed companies were fetched again"
        )
        report = status_json(config)
        feeds = {feed["feed"]: feed for feed in report["feeds"]}
        assert set(feeds) == {"enheter", "roller"} and all(f["state"] == "following" for f in feeds.values())
        assert feeds["enheter"]["follower"] == "solo" and feeds["enheter"]["position"].startswith("id:")
        assert feeds["enheter"]["marked"] == 3 and feeds["enheter"]["entries"] == 203

        # The feed refuses the position: one gap alert, and the source is polled at its interval again.
        registry.feed_status = 400
        wait_until(lambda: rows(store, Alert, Alert.kind == AlertKind.MONITORING_GAP), 15, "a feed gap alert")
        [gap] = rows(store, Alert, Alert.kind == AlertKind.MONITORING_GAP)
        assert gap.borrower_id is None and json.loads(gap.detail)["source"] == "brreg"
        assert status_json(config)["ok"] is False

        def polled_within_the_interval() -> bool:
            limit = utcnow() + timedelta(hours=24)
            return all(
                b.next_check_at is not None
                and b.next_check_at.replace(tzinfo=None) <= limit.replace(tzinfo=None)
                for b in rows(store, Borrower)
            )

        wait_until(polled_within_the_interval, 15, "every borrower back within the normal interval")
        registry.feed_status = 200
        wait_until(lambda: rows(store, Alert, Alert.kind == AlertKind.MONITORING_RESTORED), 15, "restored")
        assert len(rows(store, Alert, Alert.kind == AlertKind.MONITORING_GAP)) == 1
        registry.plant_change(orgnrs[5:6])
        wait_until(lambda: change_alerts(store).get(ids[orgnrs[5]]) == 1, 20, "following again")
        code, _ = daemon.stop()
        assert code == 0, daemon.output
    assert not rows(store, FeedState, col(FeedState.claimed_by).is_not(None)), "claims released at stop"
    store.dispose()


@slow
def test_two_instances_have_one_follower_and_the_other_takes_over_when_it_is_killed(
    tmp_path, spawn, chat, postgres_url
):
    with BrregStandIn(companies=60) as registry:
        orgnrs = registry.orgnrs[:20]
        url = chat.dingtalk_url("tok")
        configs = {
            name: feed_config(tmp_path, postgres_url, registry, name=name, officer_url=url)
            for name in ("pg-a", "pg-b")
        }
        store = open_store(postgres_url)
        ids = dict(zip(orgnrs, add_borrowers(store, orgnrs, officer="kari"), strict=True))
        daemons = {name: spawn(config) for name, config in configs.items()}
        for daemon in daemons.values():
            daemon.wait_ready()
        wait_until(lambda: baselined(store, 20), 30, "every borrower baselined")
        wait_until(
            lambda: len(rows(store, FeedState, col(FeedState.read_at).is_not(None))) == 2, 10, "feeds read"
        )
        followers = {state.claimed_by for state in rows(store, FeedState)}
        assert len(followers) == 1, followers
        [leader] = followers
        other = "pg-b" if leader == "pg-a" else "pg-a"

        registry.plant_change(orgnrs[:4])
        wait_until(lambda: change_alerts(store) == {ids[o]: 1 for o in orgnrs[:4]}, 20, "four alerts")
        assert {state.claimed_by for state in rows(store, FeedState)} == {leader}, "still one follower"

        # Changes published, then the follower dies at once: whatever it read but did not commit is
        # read again by the other.
        registry.plant_change(orgnrs[4:9])
        daemons[leader].kill()
        wait_until(lambda: {s.claimed_by for s in rows(store, FeedState)} == {other}, 20, "the other follows")
        expected = {ids[o]: 1 for o in orgnrs[:9]}
        wait_until(lambda: change_alerts(store) == expected, 30, "every change alerted once")
        registry.plant_change(orgnrs[9:10])
        wait_until(lambda: change_alerts(store) == {**expected, ids[orgnrs[9]]: 1}, 20, "and later ones too")
        code, _ = daemons[other].stop()
        assert code == 0, daemons[other].output
        fetches = registry.fetch_times("enhet")
    assert all(len(fetches[orgnr]) == 1 for orgnr in orgnrs[10:]), "unchanged: fetched once (the baseline)"
    changed_events = rows(store, ChangeEvent, ChangeEvent.category == "legal_representative")
    assert len(changed_events) == 10, "one change event per change, none twice"
    store.dispose()
