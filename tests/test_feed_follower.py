"""The change-feed follower against a real database (SQLite and PostgreSQL) and a loopback
Brønnøysund that serves its update feeds: entries make watched companies due, others cost nothing,
one follower per source, a lost claim commits nothing, gaps alert and fall back to polling, recovery."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import col, select, update

from bench.registry_stub import RegistryStub
from sources.brreg import BrregSource
from watcher.alerts import alert_view
from watcher.config import load_config
from watcher.feeds import FeedFollower, healthy_feed_sources
from watcher.importer import BorrowerRow, upsert_borrowers
from watcher.models import Alert, Borrower, Delivery, FeedState, utcnow
from watcher.render import BodyFormat, render_alert
from watcher.store import open_store
from watcher.vocabulary import AlertKind, Language


@pytest.fixture
def stub() -> Iterator[RegistryStub]:
    with RegistryStub(30) as registry:
        yield registry


@pytest.fixture(params=["sqlite", "postgresql"])
def world(request, tmp_path: Path, sqlite_url: str, stub: RegistryStub):
    url = sqlite_url if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    config_path = tmp_path / "watcher.toml"
    config_path.write_text(
        "\n".join(
            [
                "[database]",
                f'url = "{url}"',
                "[schedule]",
                'interval = "24h"',
                'lease = "30s"',
                "[rules]",
                'failing_after = "10m"',
                "[sources.brreg]",
                'type = "brreg"',
                f'base_url = "{stub.url}"',
                "retries = 0",
                'rate = "1000/s"',
                "[notifiers.desk]",
                'urls = ["json://127.0.0.1:9/desk"]',
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    config = load_config(config_path)
    store = open_store(url)
    rows = [
        BorrowerRow(id=f"no-{index:02d}", name=f"NORD {index} AS", source="brreg", registry_id=orgnr)
        for index, orgnr in enumerate(stub.orgnrs[:10])
    ]
    with store.transaction() as session:
        upsert_borrowers(session, rows, actor="test")
        # Checked already: next due in a day.
        session.exec(update(Borrower).values(next_check_at=utcnow() + timedelta(days=1)))  # type: ignore[call-overload]
    followers: list[FeedFollower] = []

    def follower(instance: str = "a") -> FeedFollower:
        made = FeedFollower(store, config, BrregSource("brreg", config.sources["brreg"]), instance=instance)
        followers.append(made)
        return made

    yield store, config, follower
    store.dispose()


def _due(store, now: datetime) -> set[str]:
    with store.session() as session:
        return set(session.exec(select(Borrower.registry_id).where(col(Borrower.next_check_at) <= now)))


def _states(store) -> dict[str, FeedState]:
    with store.session() as session:
        return {state.feed: state for state in session.exec(select(FeedState))}


async def test_entries_make_only_the_watched_companies_due_and_the_position_follows(world, stub):
    store, config, follower = world
    follow = follower()
    first = await follow.follow()
    assert first.held and first.entries == 0
    assert {s.position.split(":")[0] for s in _states(store).values()} == {"dato"}, "following from now"
    changed = stub.orgnrs[2:5]
    stamped = json.dumps({"controller": utcnow().isoformat()})
    with store.transaction() as session:
        session.exec(update(Borrower).values(signals_checked=stamped))  # type: ignore[call-overload]
    stub.mark_changed(changed)
    stub.mark_changed(stub.orgnrs[20:22])  # watched by nobody
    stub.publish_unwatched(50)
    run = await follow.follow()
    assert run.entries == 2 * (3 + 2 + 50), "both feeds name every change"
    assert _due(store, utcnow()) == set(changed)
    with store.session() as session:
        stamps = {b.registry_id: b.signals_checked for b in session.exec(select(Borrower))}
    assert {orgnr for orgnr, stamp in stamps.items() if stamp is None} == set(changed), (
        "a full check: every signal of a company the feed named, whatever its cadence"
    )
    states = _states(store)
    assert states["enheter"].position == "id:28734055" and states["roller"].position == "id:104882967"
    assert states["enheter"].marked == 3 and states["roller"].marked == 3
    assert all(s.caught_up and s.failing_since is None for s in states.values())
    with store.session() as session:
        assert healthy_feed_sources(session, config, utcnow()) == {"brreg"}
    again = await follow.follow()
    assert again.entries == 0, "read from the stored position: nothing twice"


async def test_one_follower_per_source_and_a_dead_ones_claim_is_taken_over(world, stub):
    store, config, follower = world
    a, b = follower("a"), follower("b")
    assert (await a.follow()).held
    assert not (await b.follow()).held, "a holds the source"
    stub.mark_changed(stub.orgnrs[:1])
    b.clock = lambda: utcnow() + config.schedule.lease + timedelta(seconds=1)  # a stopped renewing
    run = await b.follow()
    assert run.held and run.entries == 2
    assert {s.claimed_by for s in _states(store).values()} == {"b"}


async def test_a_follower_whose_claim_was_taken_commits_nothing(world, stub):
    store, config, follower = world
    a = follower("a")
    await a.follow()
    before = {feed: s.position for feed, s in _states(store).items()}
    stub.mark_changed(stub.orgnrs[:2])
    with store.transaction() as session:
        session.exec(update(FeedState).values(claimed_by="b", lease_until=utcnow() + timedelta(hours=1)))  # type: ignore[call-overload]
    run = await a.follow()
    assert not run.held and run.marked == 0
    assert {feed: s.position for feed, s in _states(store).items()} == before
    assert _due(store, utcnow()) == set()


async def test_a_refused_position_alerts_falls_back_to_polling_and_recovers(world, stub):
    store, config, follower = world
    follow = follower()
    await follow.follow()
    stub.feed_status = 400
    run = await follow.follow()
    assert len(run.alerts) == 1, "one gap alert for the source, not one per feed"
    with store.session() as session:
        gap = session.get(Alert, run.alerts[0])
        assert gap is not None and gap.kind == AlertKind.MONITORING_GAP and gap.borrower_id is None
        detail = json.loads(gap.detail or "{}")
        assert (detail["source"], detail["feed"]) == ("brreg", "enheter, roller"), "both feeds, one alert"
        assert "HTTP 400" in detail["error"]
        assert [d.target for d in session.exec(select(Delivery).where(Delivery.alert_id == gap.id))] == [
            "notifier:desk"
        ]
        assert healthy_feed_sources(session, config, utcnow()) == frozenset(), "polling again"
        view = alert_view(session, run.alerts[0], window_days=30)
    states = _states(store)
    assert states["enheter"].position is None and states["enheter"].gap_since is not None
    zh = render_alert(view, Language.ZH_CN, BodyFormat.TEXT)
    assert "变更订阅 enheter, roller：监控中断" in zh.title and "常规检查间隔全量轮询" in zh.body
    en = render_alert(view, Language.EN, BodyFormat.TEXT)
    assert "change feed enheter, roller" in en.title and "HTTP 400" in en.body

    stub.feed_status = 200
    stub.mark_changed(stub.orgnrs[:1])  # published after the gap: read from now on
    recovered = await follow.follow()
    assert len(recovered.alerts) == 1
    with store.session() as session:
        restored = session.get(Alert, recovered.alerts[0])
        assert restored is not None and restored.kind == AlertKind.MONITORING_RESTORED
        ended = json.loads(restored.detail or "{}")
        assert ended["feed"] == "enheter, roller" and ended["since"] == detail["since"], "the gap it ends"
        assert healthy_feed_sources(session, config, utcnow()) == {"brreg"}
    assert all(s.gap_since is None for s in _states(store).values())


async def test_a_refused_key_is_a_gap_at_once_and_keeps_the_position(world, stub):
    """A 401/403 will not mend itself in a day: the source falls back to polling now (one alert), and
    the position is kept, since no entry was lost."""
    store, config, follower = world
    follow = follower()
    await follow.follow()
    position = _states(store)["enheter"].position
    stub.feed_status = 401
    run = await follow.follow()
    assert len(run.alerts) == 1
    state = _states(store)["enheter"]
    assert state.gap_since is not None and state.position == position


async def test_failures_shorter_than_failing_after_keep_the_position_and_raise_nothing(world, stub):
    store, config, follower = world
    follow = follower()
    await follow.follow()
    position = _states(store)["enheter"].position
    stub.feed_status = 500
    assert (await follow.follow()).alerts == []
    state = _states(store)["enheter"]
    assert (
        state.position == position
        and state.failing_since is not None
        and "HTTP 500" in (state.last_error or "")
    )
    with store.session() as session:
        assert healthy_feed_sources(session, config, utcnow()) == {"brreg"}, "a short failure is no gap"
    follow.clock = lambda: utcnow() + config.rules.failing_after
    run = await follow.follow()
    assert len(run.alerts) == 1 and _states(store)["enheter"].position == position, "resumable: kept"


async def test_a_company_named_while_it_is_being_checked_is_checked_again_once_released(world, stub):
    store, config, follower = world
    follow = follower()
    await follow.follow()
    busy = stub.orgnrs[3]
    with store.transaction() as session:
        session.exec(
            update(Borrower)
            .where(col(Borrower.registry_id) == busy)
            .values(claimed_by="checker", lease_until=utcnow())
        )  # type: ignore[call-overload]
    stub.mark_changed([busy])
    await follow.follow()
    assert _due(store, utcnow()) == set(), "its running check may have read the old answer: not yet"
    with store.transaction() as session:
        session.exec(update(Borrower).values(claimed_by=None, lease_until=None))  # type: ignore[call-overload]
    await follow.follow()
    assert _due(store, utcnow()) == {busy}
    with store.session() as session:
        assert not any(session.exec(select(Borrower.feed_recheck)))


def test_a_healthy_feed_lengthens_the_full_poll_and_a_gap_brings_it_back_within_the_interval(world):
    """The checker polls a followed source at ``full_interval``; the sweep's reschedule keeps other
    sources within ``interval`` and pulls a source that fell back to polling back within it."""
    from watcher.pipeline import Checker
    from watcher.store import reschedule_beyond_interval

    store, config, _follower = world
    checker = Checker(store, config)
    assert checker.polling_interval("brreg") == config.schedule.interval
    checker.feed_mode = frozenset({"brreg"})
    assert checker.polling_interval("brreg") == timedelta(days=7), "full_interval's default"
    now = utcnow()
    with store.transaction() as session:
        session.exec(update(Borrower).values(next_check_at=now + timedelta(days=6)))  # type: ignore[call-overload]
        kept = reschedule_beyond_interval(
            session, interval=config.schedule.interval, jitter=timedelta(0), now=now, other_than={"brreg"}
        )
        within_full = reschedule_beyond_interval(
            session, interval=timedelta(days=7), jitter=timedelta(0), now=now, sources=["brreg"]
        )
    assert (kept, within_full) == (0, 0), "followed: a week is within its full poll"
    with store.transaction() as session:
        moved = reschedule_beyond_interval(
            session, interval=config.schedule.interval, jitter=timedelta(0), now=now
        )
        latest = max(session.exec(select(Borrower.next_check_at)))
    assert moved == 10 and latest is not None
    assert latest.replace(tzinfo=None) <= (now + config.schedule.interval).replace(tzinfo=None)


def test_companies_house_streams_make_watched_companies_due_and_a_416_is_a_gap(
    tmp_path: Path, sqlite_url: str
):
    """The follower over the Streaming API (a real streaming server on 127.0.0.1): events about a watched
    company number make it due; the stored timepoint is where the next read resumes; 416 opens a gap."""
    import asyncio

    from sources.companies_house import CompaniesHouseSource
    from tests.loopback import serve
    from tests.test_change_feeds import StreamServer, _event

    server = StreamServer(
        [_event(500, "SC612345"), _event(501, "09999999"), _event(502, "sc612345")], gap=0.01
    )
    with serve(server.handler) as url:
        config_path = tmp_path / "watcher.toml"
        config_path.write_text(
            "\n".join(
                [
                    "[database]",
                    f'url = "{sqlite_url}"',
                    "[sources.uk]",
                    'type = "companies_house"',
                    'api_key = "k"',
                    'stream_key = "s"',
                    f'stream_url = "{url}"',
                    'streams = ["officers"]',
                    'stream_window = "1s"',
                ]
            )
            + "\n",
            encoding="utf-8",
        )
        config = load_config(config_path)
        store = open_store(sqlite_url)
        with store.transaction() as session:
            upsert_borrowers(
                session,
                [
                    BorrowerRow(id="uk-1", name="QUAYSIDE LTD", source="uk", registry_id="SC612345"),
                    BorrowerRow(id="uk-2", name="OTHER LTD", source="uk", registry_id="01234567"),
                ],
                actor="test",
            )
            session.exec(update(Borrower).values(next_check_at=utcnow() + timedelta(days=1)))  # type: ignore[call-overload]
        follower = FeedFollower(store, config, CompaniesHouseSource("uk", config.sources["uk"]), instance="a")

        async def follow_three_times():
            try:
                first = await follower.follow()
                await follower.follow()
                server.status = 416
                return first, await follower.follow()
            finally:
                await follower.aclose()

        server.status = 200
        run, gap = asyncio.run(follow_three_times())
        assert run.held and run.entries == 3 and run.marked == 1, "SC612345 named twice, made due once"
        assert _due(store, utcnow()) == {"SC612345"}
        assert [query.get("timepoint") for _path, query, _auth in server.requests] == [None, ["503"], ["503"]]
        assert len(gap.alerts) == 1 and _states(store)["officers"].position is None
        store.dispose()


def test_a_stream_no_longer_configured_leaves_the_source_and_a_second_claim_loses(world):
    """Two claims of one source: the second instance loses; a feed dropped from the config goes with
    its state (a stale gap there would keep the source unhealthy for ever)."""
    from watcher.feeds import claim_feeds

    store, config, _follower = world
    now = utcnow()
    with store.transaction() as session:
        assert claim_feeds(
            session, "brreg", ["enheter", "roller"], instance="a", now=now, lease=timedelta(minutes=1)
        )
    with store.transaction() as session:
        assert not claim_feeds(
            session, "brreg", ["enheter", "roller"], instance="b", now=now, lease=timedelta(minutes=1)
        )
    with store.transaction() as session:
        assert claim_feeds(session, "brreg", ["enheter"], instance="a", now=now, lease=timedelta(minutes=1))
    assert set(_states(store)) == {"enheter"}


def test_a_follower_runs_every_feed_every_although_the_job_that_asks_is_a_little_early(world):
    """The scheduler's job fires every ``Followers.every()`` seconds, a few milliseconds either way: a
    run due at the next tick must not wait a whole extra period (5 s read as 10 s)."""
    from watcher.feeds import Followers

    store, config, _follower = world
    followers = Followers(
        store, config, {"brreg": BrregSource("brreg", config.sources["brreg"])}, instance="a"
    )
    period = followers.every()
    assert period == 30.0, "feed_every 60s: the job looks every 30 s"
    ticks = [0.0, 29.99, 59.98, 89.97, 119.96, 149.95]
    ran = [tick for tick in ticks if followers.due(tick)]
    assert ran == [0.0, 59.98, 119.96], "every 60 s, not every 90"


async def test_a_feed_no_follower_has_read_lately_puts_its_source_back_on_the_normal_poll(world, stub):
    """A follower that stopped (its instance hung, nobody took over) leaves no failure behind: the feed
    is simply not read. Ten feed_every periods (plus a lease) later the source is no longer healthy."""
    store, config, follower = world
    await follower().follow()
    now = utcnow()
    with store.session() as session:
        assert healthy_feed_sources(session, config, now + timedelta(minutes=10)) == {"brreg"}
        assert healthy_feed_sources(session, config, now + timedelta(minutes=11)) == frozenset()
