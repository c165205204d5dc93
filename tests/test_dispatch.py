"""The outbox end to end: routing, real sends, retries, dead letters, crashes, racing instances, digests.

Alerts come from the real Checker reading saved registry responses (``tests/deployment.py``); the
channels are real servers on 127.0.0.1 (``tests/receivers.py``): DingTalk-, WeCom- and Feishu-like
robots that check signatures and answer with vendor error codes, and an aiosmtpd mail server. The
dispatcher's clock is moved past each backoff instead of sleeping. Messages are counted per alert at
each receiver, because "sent exactly once" is what the people at the other end experience.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from sqlmodel import select
from typer.testing import CliRunner

from tests.deployment import (
    ALL_BORROWERS,
    BASELINE_AT,
    CHANGED_AT,
    FJORDLYS,
    LANCHAO,
    Deployment,
    toml_strings,
)
from watcher.cli import app
from watcher.daemon import Daemon
from watcher.dispatch import Dispatcher, DispatchReport
from watcher.importer import BorrowerRow
from watcher.models import ChangeEvent, Delivery, utcnow

if TYPE_CHECKING:
    from tests.receivers import ChatReceiver, SmtpReceiver

pytest_plugins = ["tests.receivers"]  # chat_receiver_factory, smtp_receiver_factory

# Credentials shaped like the real ones (DingTalk: 64 hex token, "SEC…" secret; WeCom: a UUID key),
# so a test can tell whether any of them leaks into output.
DING_TOKEN = "6b1f0e3c9a7d4e2f8c5b0a1d3e6f9c2b7a4d1e8f5c2b9a6d3e0f7c4b1a8d5e2f"
DING_SECRET = "SEC9f2c4e6a8b0d1f3e5c7a9b2d4f6e8a0c1e3b5d7f9a2c4e6b8d0f1a3c5e7b9d"
WECOM_KEY = "693a91f6-7e3b-4bc4-97a0-0ec2f1fa5a3e"
WECOM_NORWAY_KEY = "0c3f2a9e-1d4b-4e8a-b7c6-5f2e9d1a8c4b"
FEISHU_TOKEN = "2f8e4c1a-9b3d-4f7e-8a6c-1d5b9e3f7a2c"
RISK_MAIL = "risk@bank.example"
OPS_MAIL = "ops@bank.example"

SOON = CHANGED_AT + timedelta(seconds=1)
SHANGHAI_OFFSET = timedelta(hours=8)


@dataclass
class Channels:
    ding: ChatReceiver
    wecom: ChatReceiver
    feishu: ChatReceiver
    smtp: SmtpReceiver


@pytest.fixture
def channels(chat_receiver_factory, smtp_receiver_factory) -> Channels:
    """One receiver per channel family, so each can fail on its own."""
    return Channels(
        ding=chat_receiver_factory(dingtalk_secret=DING_SECRET),
        wecom=chat_receiver_factory(),
        feishu=chat_receiver_factory(),
        smtp=smtp_receiver_factory(),
    )


@pytest.fixture
def deploy(tmp_path: Path, sqlite_url: str) -> Iterator[Callable[..., Deployment]]:
    made: list[Deployment] = []

    def make(channel_tables: str, database_url: str | None = None, **options) -> Deployment:
        deployment = Deployment(tmp_path, database_url or sqlite_url, channel_tables, **options)
        made.append(deployment)
        return deployment

    yield make
    for deployment in made:
        deployment.close()


def officer(name: str, urls: list[str], language: str | None = None, officer_id: str = "zhang_wei") -> str:
    speaks = f'language = "{language}"\n' if language else ""
    return f'[officers.{officer_id}]\nname = "{name}"\n{speaks}urls = {toml_strings(urls)}\n\n'


def notifier(name: str, urls: list[str], **settings) -> str:
    lines = [f"[notifiers.{name}]", f"urls = {toml_strings(urls)}"]
    lines += [f"{key} = {json.dumps(value, ensure_ascii=False)}" for key, value in settings.items()]
    return "\n".join(lines) + "\n\n"


def arrivals(texts: list[str], borrower_id: str) -> int:
    """How many messages speak of this borrower's alert (titles carry the borrower id)."""
    return sum(borrower_id in text for text in texts)


def by_borrower(world: Deployment) -> dict[int, str]:
    return {alert.id: borrower_id for borrower_id, alert in world.alerts().items()}


# -- 1. routing --------------------------------------------------------------------------------------


def test_each_matching_target_gets_a_row_per_url_and_one_message_in_its_language(channels, deploy):
    ding, wecom, feishu, smtp = channels.ding, channels.wecom, channels.feishu, channels.smtp
    world = deploy(
        officer("张伟", [ding.dingtalk_url(DING_TOKEN, DING_SECRET)], language="en")
        + notifier("risk_desk", [smtp.url(RISK_MAIL), wecom.wecom_url(WECOM_KEY)], min_severity="high")
        + notifier("zhejiang_team", [feishu.feishu_url(FEISHU_TOKEN)], tags=["zhejiang"])
        + notifier("norway_only", [wecom.wecom_url(WECOM_NORWAY_KEY)], sources=["no"])
        + notifier("warnings", [smtp.url(OPS_MAIL)], min_severity="warning")
    )
    world.baseline_then_change()
    borrower_of = by_borrower(world)
    rows = sorted((borrower_of[d.alert_id], d.target, d.channel) for d in world.deliveries())
    assert rows == sorted(
        [
            # high, officer zhang_wei, tag zhejiang, source cn: everything except norway_only
            ("b-lanchao", "officer:zhang_wei", "dingtalk"),
            ("b-lanchao", "notifier:risk_desk", "mailto"),
            ("b-lanchao", "notifier:risk_desk", "wecombot"),
            ("b-lanchao", "notifier:zhejiang_team", "feishu"),
            ("b-lanchao", "notifier:warnings", "mailto"),
            # warning, no officer, source no: still reaches the notifiers it matches
            ("b-fjordlys", "notifier:norway_only", "wecombot"),
            ("b-fjordlys", "notifier:warnings", "mailto"),
            # info: below "warnings" and "risk_desk"
            ("b-hardanger", "notifier:norway_only", "wecombot"),
        ]
    )
    assert world.dispatch(SOON) == DispatchReport(sent=8)
    assert {(d.status, d.attempts) for d in world.deliveries()} == {("sent", 1)}

    # The officer reads English (and DingTalk accepted the 加签 signature, or nothing would count).
    [officer_text] = ding.texts(DING_TOKEN)
    assert "[High risk]" in officer_text and "(b-lanchao)" in officer_text
    assert "Legal representative 王建国 → 李娜" in officer_text
    assert "法定代表人" not in officer_text and "高风险" not in officer_text
    # Everyone else reads the default zh-CN.
    for text in (*feishu.texts(), *wecom.texts(WECOM_KEY), *smtp.texts(RISK_MAIL)):
        assert "【高风险】" in text and "法定代表人 王建国 → 李娜" in text and "b-lanchao" in text
    assert [arrivals(wecom.texts(WECOM_NORWAY_KEY), b) for b in ("b-fjordlys", "b-hardanger")] == [1, 1]
    assert "【警示】" in " ".join(wecom.texts(WECOM_NORWAY_KEY))
    assert "【提示】" in " ".join(wecom.texts(WECOM_NORWAY_KEY))
    ops_mail = smtp.texts(OPS_MAIL)
    assert [arrivals(ops_mail, b) for b in ("b-lanchao", "b-fjordlys", "b-hardanger")] == [1, 1, 0]
    assert (len(ding.accepted), len(feishu.accepted), len(wecom.accepted), len(smtp.mails)) == (1, 1, 3, 3)
    # Each channel shows the alert's severity in its own terms: the card's colour, the mail's importance.
    assert feishu.accepted[0].payload["card"]["header"]["template"] == "orange"
    importance = {(m.recipients, m.message["Importance"]) for m in smtp.mails if "b-lanchao" in m.subject}
    assert importance == {((RISK_MAIL,), "high"), ((OPS_MAIL,), "high")}
    assert {m.message["Importance"] for m in smtp.mails if "b-fjordlys" in m.subject} == {None}

    # Nothing is due any more: a later pass sends nothing twice.
    assert world.dispatch(SOON + timedelta(days=1)) == DispatchReport()
    assert (len(ding.requests), len(feishu.requests), len(wecom.requests), len(smtp.mails)) == (1, 1, 3, 3)


def test_each_target_reads_the_detection_time_in_its_own_zone(channels, deploy):
    """Issue 14: an officer with [officers.<id>] timezone reads Oslo time; notifiers read [watcher] timezone
    (Asia/Shanghai here); neither reads UTC, and each says the offset."""
    ding, smtp = channels.ding, channels.smtp
    officer_table = officer("Kari", [ding.dingtalk_url(DING_TOKEN, DING_SECRET)], language="en")
    world = deploy(
        officer_table.replace('name = "Kari"\n', 'name = "Kari"\ntimezone = "Europe/Oslo"\n')
        + notifier("risk_desk", [smtp.url(RISK_MAIL)], min_severity="high")
    )
    world.baseline_then_change()
    world.dispatch(SOON)
    [officer_text] = ding.texts(DING_TOKEN)
    assert "detected 2026-03-03 03:00 +01:00" in officer_text  # CHANGED_AT is 02:00 UTC
    [desk_text] = smtp.texts(RISK_MAIL)
    assert "检测时间：2026-03-03 10:00 +08:00" in desk_text
    assert "UTC" not in officer_text + desk_text


def test_a_url_listed_twice_is_one_destination(channels, deploy):
    url = channels.wecom.wecom_url(WECOM_KEY)
    world = deploy(officer("张伟", [url, url]))
    world.baseline_then_change(LANCHAO)
    assert [d.target for d in world.deliveries()] == ["officer:zhang_wei"]
    assert world.dispatch(SOON) == DispatchReport(sent=1)
    assert len(channels.wecom.requests) == 1


# -- 2. one failing channel -----------------------------------------------------------------------------


def test_one_rejecting_channel_is_retried_while_the_others_are_sent(channels, deploy):
    ding, wecom, smtp = channels.ding, channels.wecom, channels.smtp
    world = deploy(
        officer("张伟", [ding.dingtalk_url(DING_TOKEN, DING_SECRET)])
        + notifier("risk_desk", [wecom.wecom_url(WECOM_KEY), smtp.url(RISK_MAIL)], min_severity="high")
    )
    world.baseline_then_change(LANCHAO)
    # HTTP 200 with an error code: the rejection apprise would have reported as sent.
    ding.reject_with(310000, "keywords not in content")
    assert world.dispatch(SOON) == DispatchReport(sent=2, failed=1)

    rows = {d.channel: d for d in world.deliveries()}
    ding_row = rows["dingtalk"]
    assert (ding_row.status, ding_row.attempts) == ("pending", 1)
    assert ding_row.next_attempt_at > SOON and "310000" in ding_row.last_error
    assert DING_TOKEN not in ding_row.last_error and DING_SECRET not in ding_row.last_error
    assert ding_row.claimed_by is None and ding_row.lease_until is None
    assert {(rows[c].status, rows[c].attempts) for c in ("wecombot", "mailto")} == {("sent", 1)}
    assert arrivals(wecom.texts(), "b-lanchao") == 1 and arrivals(smtp.texts(), "b-lanchao") == 1
    assert (len(ding.requests), len(ding.accepted)) == (1, 0)

    # The robot is fixed; the row waits for its backoff, then goes out once.
    ding.accept()
    assert world.dispatch(SOON) == DispatchReport()
    retry_at = ding_row.next_attempt_at + timedelta(seconds=1)
    assert world.dispatch(retry_at) == DispatchReport(sent=1)
    [ding_row] = [d for d in world.deliveries() if d.channel == "dingtalk"]
    assert (ding_row.status, ding_row.attempts, ding_row.last_error) == ("sent", 2, None)
    assert arrivals(ding.texts(), "b-lanchao") == 1
    assert arrivals(wecom.texts(), "b-lanchao") == 1 and arrivals(smtp.texts(), "b-lanchao") == 1


# -- 3. outage and recovery -----------------------------------------------------------------------------


def test_an_outage_of_every_channel_delays_but_loses_and_duplicates_nothing(channels, deploy):
    ding, wecom, feishu, smtp = channels.ding, channels.wecom, channels.feishu, channels.smtp
    world = deploy(
        officer("张伟", [ding.dingtalk_url(DING_TOKEN, DING_SECRET)])
        + notifier("everyone", [wecom.wecom_url(WECOM_KEY), feishu.feishu_url(FEISHU_TOKEN), smtp.url()])
    )
    world.baseline_then_change()
    total = 4 + 3 + 3  # b-lanchao also reaches its officer
    before = world.summary()
    assert (before.deliveries_pending, before.deliveries_retrying, before.deliveries_dead) == (total, 0, 0)

    ding.fail_with_http(500)
    wecom.reject_with(93000, "invalid webhook url")
    feishu.reject_with(19024, "Key Words Not Found")
    smtp.down()
    now, delays_per_round = SOON, []
    for round_number in range(1, 4):
        assert world.dispatch(now) == DispatchReport(failed=total)
        summary = world.summary()
        assert (summary.deliveries_pending, summary.deliveries_retrying, summary.deliveries_dead) == (
            0,
            total,
            0,
        )
        rows = world.deliveries()
        assert {(d.status, d.attempts) for d in rows} == {("pending", round_number)}
        errors = {d.channel: d.last_error for d in rows}
        assert "HTTP 500" in errors["dingtalk"] and "93000" in errors["wecombot"]
        assert "19024" in errors["feishu"] and errors["mailto"]
        # Before the backoff ends nothing is tried again.
        assert world.dispatch(now + timedelta(seconds=20)) == DispatchReport()
        delays_per_round.append([d.next_attempt_at - now for d in rows])
        now = max(d.next_attempt_at for d in rows) + timedelta(seconds=1)
    # Exponential backoff: every delay of a round is longer than every delay of the round before.
    for earlier, later in zip(delays_per_round, delays_per_round[1:], strict=False):
        assert min(later) > max(earlier)
    assert (len(ding.accepted), len(wecom.accepted), len(feishu.accepted), len(smtp.mails)) == (0, 0, 0, 0)

    ding.accept()
    wecom.accept()
    feishu.accept()
    smtp.up()
    assert world.dispatch(now) == DispatchReport(sent=total)
    for borrower in ("b-lanchao", "b-fjordlys", "b-hardanger"):
        for receiver in (wecom, feishu, smtp):
            assert arrivals(receiver.texts(), borrower) == 1, (borrower, receiver)
    assert arrivals(ding.texts(), "b-lanchao") == 1 and len(ding.accepted) == 1
    assert {(d.status, d.attempts) for d in world.deliveries()} == {("sent", 4)}
    after = world.summary()
    assert (after.deliveries_pending, after.deliveries_retrying, after.deliveries_dead) == (0, 0, 0)


# -- 4. dead letters ----------------------------------------------------------------------------------


def test_a_target_that_always_fails_goes_dead_after_max_attempts_and_is_audited(channels, deploy):
    ding, smtp = channels.ding, channels.smtp
    world = deploy(
        notifier("flaky_robot", [ding.dingtalk_url(DING_TOKEN, DING_SECRET)], max_attempts=2)
        + notifier("mail", [smtp.url()])
    )
    world.baseline_then_change(LANCHAO, FJORDLYS)
    ding.reject_with(310000, "keywords not in content")
    assert world.dispatch(SOON) == DispatchReport(sent=2, failed=2)
    robot_rows = world.deliveries()
    next_try = max(d.next_attempt_at for d in robot_rows) + timedelta(seconds=1)
    assert world.dispatch(next_try) == DispatchReport(dead=2)

    robot_rows = [d for d in world.deliveries() if d.target == "notifier:flaky_robot"]
    assert [(d.status, d.attempts) for d in robot_rows] == [("dead", 2), ("dead", 2)]
    assert all("310000" in d.last_error for d in robot_rows)
    dead_audit = world.audit_rows("delivery.dead")
    assert sorted(int(a.subject_id) for a in dead_audit) == sorted(d.id for d in robot_rows)
    for entry in dead_audit:
        detail = json.loads(entry.detail)
        assert (entry.actor, entry.subject_type) == ("watcher", "delivery")
        assert (detail["target"], detail["attempts"]) == ("notifier:flaky_robot", 2)
        assert "310000" in detail["error"] and DING_TOKEN not in entry.detail
    summary = world.summary()
    assert (summary.deliveries_pending, summary.deliveries_retrying, summary.deliveries_dead) == (0, 0, 2)

    # Dead is final: no more attempts, and the other target was never held up.
    assert world.dispatch(next_try + timedelta(days=1)) == DispatchReport()
    assert len(ding.requests) == 4
    mail_rows = [d for d in world.deliveries() if d.target == "notifier:mail"]
    assert [(d.status, d.attempts) for d in mail_rows] == [("sent", 1), ("sent", 1)]
    assert [arrivals(smtp.texts(), b) for b in ("b-lanchao", "b-fjordlys")] == [1, 1]


# -- 5. a crash between send and commit ----------------------------------------------------------------


def _watcher_check(config: Path, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "watcher", "--config", str(config), "check"],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_a_process_killed_between_send_and_commit_resends_at_most_once(
    database, request, channels, deploy, tmp_path
):
    ding, wecom, smtp = channels.ding, channels.wecom, channels.smtp
    url = request.getfixturevalue("sqlite_url" if database == "sqlite" else "postgres_url")
    world = deploy(
        officer("张伟", [ding.dingtalk_url(DING_TOKEN, DING_SECRET)])
        + notifier("everyone", [wecom.wecom_url(WECOM_KEY), smtp.url()]),
        database_url=url,
    )
    world.add(*ALL_BORROWERS)
    world.stage(0)
    world.check(utcnow() - timedelta(days=1))
    world.stage(1)

    # `watcher check` finds the changes, stores alerts and outbox rows, and starts sending; DingTalk
    # takes the first message and the process dies before it learns the answer.
    ding.kill_client_on_first_message()
    first = _watcher_check(world.config_path, tmp_path)
    ding.set_client_pid(first.pid)
    _, stderr = first.communicate(timeout=60)
    assert first.returncode == -signal.SIGKILL, stderr
    assert arrivals(ding.texts(), "b-lanchao") == 1
    alerts = world.alerts()
    assert set(alerts) == {"b-lanchao", "b-fjordlys", "b-hardanger"}
    rows = world.deliveries()
    assert len(rows) == 7
    assert all(d.status == "pending" and d.claimed_by and d.lease_until > utcnow() for d in rows)

    # A new process right away: the dead one's claims still hold, so nothing is sent twice yet.
    second = _watcher_check(world.config_path, tmp_path)
    stdout, stderr = second.communicate(timeout=60)
    assert second.returncode == 0, stderr
    assert "unchanged" in stdout
    assert arrivals(ding.texts(), "b-lanchao") == 1

    # Once the lease has run out, the next dispatcher sends everything the dead one left.
    report = world.dispatch(utcnow() + timedelta(minutes=11), instance="after-the-crash")
    assert report.sent == 7 and report.failed == report.dead == 0
    assert {d.status for d in world.deliveries()} == {"sent"}
    for borrower in alerts:
        assert 1 <= arrivals(wecom.texts(), borrower) <= 2
        assert 1 <= arrivals(smtp.texts(), borrower) <= 2
    assert arrivals(ding.texts(), "b-lanchao") == 2  # the one message whose answer died with the process


# -- 6. two instances racing ----------------------------------------------------------------------------

SECOND_TOKEN = DING_TOKEN[::-1]


def _due_rows(deploy, ding: ChatReceiver, database_url: str, alerts: int) -> Deployment:
    """``alerts`` borrowers with the same registry entry, each alert for two DingTalk robots: all due now."""
    world = deploy(
        officer("张伟", [ding.dingtalk_url(DING_TOKEN), ding.dingtalk_url(SECOND_TOKEN)]),
        database_url=database_url,
    )
    world.add(
        *(
            BorrowerRow(
                id=f"b-{number:02d}",
                name=f"杭州澜潮{number:02d}号智能装备有限公司",
                source="cn",
                registry_id=LANCHAO.registry_id,
                officer="zhang_wei",
            )
            for number in range(alerts)
        )
    )
    world.stage(0, "b-lanchao")
    world.check(BASELINE_AT)
    world.stage(1, "b-lanchao")
    world.check(CHANGED_AT)
    assert len(world.deliveries()) == 2 * alerts
    return world


async def _first_lease_ran_out(world: Deployment, instance: str) -> None:
    """Return once ``instance`` has claimed rows and the lease stored on that first claim has ended."""

    def leases() -> list[datetime]:
        claimed = world.deliveries(Delivery.claimed_by == instance)
        return [row.lease_until for row in claimed if row.lease_until is not None]

    while not (first := await asyncio.to_thread(leases)):
        await asyncio.sleep(0.01)
    while (left := (min(first) - utcnow()).total_seconds()) >= 0:
        await asyncio.sleep(left)


def _received_per_row(ding: ChatReceiver) -> Counter:
    return Counter((m.token, re.search(r"b-\d\d", m.text).group()) for m in ding.accepted)


@pytest.mark.parametrize("database", ["postgresql", "sqlite"])
def test_two_dispatchers_racing_over_fifty_rows_send_each_exactly_once(
    database, request, chat_receiver_factory, deploy
):
    ding = chat_receiver_factory(delay=0.01)
    database_url = request.getfixturevalue("postgres_url" if database == "postgresql" else "sqlite_url")
    world = _due_rows(deploy, ding, database_url, alerts=25)

    async def race() -> list[DispatchReport]:
        racers = [
            Dispatcher(world.store, world.config, instance=name, batch=5, concurrency=4)
            for name in ("watcher-a", "watcher-b")
        ]
        try:
            return await asyncio.gather(*(racer.dispatch_due() for racer in racers))
        finally:
            for racer in racers:
                racer.close()

    reports = asyncio.run(race())
    assert sum(r.sent for r in reports) == 50 and all(r.sent > 0 for r in reports), reports
    received = _received_per_row(ding)
    assert len(received) == 50 and set(received.values()) == {1}
    assert {(d.status, d.attempts) for d in world.deliveries()} == {("sent", 1)}


def test_a_batch_that_outlasts_its_lease_is_handed_back_not_sent_twice(
    chat_receiver_factory, deploy, request
):
    """A claim is only good for its lease: a slow instance must not keep sending rows another one
    may already have claimed because their lease ran out while they waited their turn."""
    ding = chat_receiver_factory(delay=0.1)  # 20 rows one at a time take ~3 s, the lease lasts 1.2 s
    world = _due_rows(deploy, ding, request.getfixturevalue("postgres_url"), alerts=10)
    lease = timedelta(seconds=1.2)

    async def slow_and_quick() -> list[DispatchReport]:
        slow = Dispatcher(world.store, world.config, instance="slow", batch=20, concurrency=1, lease=lease)
        quick = Dispatcher(world.store, world.config, instance="quick", batch=2, concurrency=2, lease=lease)

        async def quick_later() -> DispatchReport:
            await _first_lease_ran_out(world, "slow")
            return await quick.dispatch_due()

        try:
            return await asyncio.gather(slow.dispatch_due(), quick_later())
        finally:
            slow.close()
            quick.close()

    reports = asyncio.run(slow_and_quick())
    received = _received_per_row(ding)
    assert len(received) == 20 and set(received.values()) == {1}, reports
    assert {d.status for d in world.deliveries()} == {"sent"}
    assert sum(r.sent for r in reports) == 20


# -- 7. daily digest ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changed_at", "digest_at"),
    [
        # 10:00 in Shanghai: the next 09:00 is tomorrow's.
        (CHANGED_AT, datetime(2026, 3, 4, 1, 0, tzinfo=UTC)),
        # 08:30 in Shanghai: today's 09:00 is still ahead.
        (datetime(2026, 3, 3, 0, 30, tzinfo=UTC), datetime(2026, 3, 3, 1, 0, tzinfo=UTC)),
    ],
)
def test_lower_severities_wait_for_the_digest_and_high_goes_at_once(channels, deploy, changed_at, digest_at):
    wecom = channels.wecom
    world = deploy(notifier("daily", [wecom.wecom_url(WECOM_KEY)], digest="09:00", min_severity="info"))
    world.baseline_then_change(changed_at=changed_at)
    rows = {by_borrower(world)[d.alert_id]: d for d in world.deliveries()}
    assert (rows["b-lanchao"].status, rows["b-lanchao"].next_attempt_at) == ("pending", changed_at)
    for borrower in ("b-fjordlys", "b-hardanger"):
        assert (rows[borrower].status, rows[borrower].next_attempt_at) == ("held", digest_at)
    assert (digest_at + SHANGHAI_OFFSET).hour == 9

    # The high alert is not held.
    assert world.dispatch(changed_at + timedelta(seconds=1)) == DispatchReport(sent=1)
    [high] = wecom.texts()
    assert "【高风险】" in high and "b-lanchao" in high
    # Nothing of the digest before 09:00.
    assert world.dispatch(digest_at - timedelta(minutes=1)) == DispatchReport()
    assert len(wecom.requests) == 1
    assert {d.status for d in world.deliveries() if d.id != rows["b-lanchao"].id} == {"held"}

    # At 09:00 one message lists every held alert.
    assert world.dispatch(digest_at + timedelta(seconds=30)) == DispatchReport(sent=2)
    assert len(wecom.requests) == 2
    digest = wecom.texts()[1]
    day = (digest_at + SHANGHAI_OFFSET).date().isoformat()
    assert f"【汇总】{day} 共 2 条提示/警示" in digest
    assert "【警示】FJORDLYS SJØMAT AS（b-fjordlys）" in digest
    assert "【提示】HARDANGER BETONG AS（b-hardanger）" in digest
    assert "b-lanchao" not in digest
    assert {(d.status, d.sent_at) for d in world.deliveries() if d.id != rows["b-lanchao"].id} == {
        ("sent", digest_at + timedelta(seconds=30))
    }
    assert world.dispatch(digest_at + timedelta(days=1)) == DispatchReport()
    assert len(wecom.requests) == 2


# -- 9. `watcher notify test` ------------------------------------------------------------------------

RUNNER = CliRunner()


def cli(config: Path, *args: str):
    return RUNNER.invoke(app, ["--config", str(config), *args], catch_exceptions=False)


def test_notify_test_reports_each_url_and_never_shows_secrets(channels, deploy):
    ding, wecom, smtp = channels.ding, channels.wecom, channels.smtp
    world = deploy(
        officer("张伟", [smtp.url("zw@bank.example")])
        + notifier("robots", [ding.dingtalk_url(DING_TOKEN, DING_SECRET)])
        + notifier("broken", [wecom.wecom_url(WECOM_KEY)])
    )
    wecom.reject_with(93000, "invalid webhook url")

    everything = cli(world.config_path, "notify", "test")
    assert everything.exit_code == 1
    lines = everything.stdout.splitlines()
    assert len(lines) == 3
    [broken] = [line for line in lines if line.startswith("notifier:broken ")]
    assert "wecombot://" in broken and "FAILED" in broken and "errcode 93000" in broken
    [robots] = [line for line in lines if line.startswith("notifier:robots ")]
    assert "dingtalk://" in robots and robots.endswith(": ok")
    [mail] = [line for line in lines if line.startswith("officer:zhang_wei ")]
    assert "mailto://" in mail and mail.endswith(": ok")
    for secret in (DING_TOKEN, DING_SECRET, WECOM_KEY):
        assert secret not in everything.output
    assert len(ding.accepted) == 1 and "测试" in ding.texts()[0]
    assert len(wecom.requests) == 1 and len(smtp.mails) == 1

    only_robots = cli(world.config_path, "notify", "test", "--notifier", "robots")
    assert only_robots.exit_code == 0, only_robots.output
    assert [line.split()[0] for line in only_robots.stdout.splitlines()] == ["notifier:robots"]
    assert len(ding.accepted) == 2 and len(wecom.requests) == 1 and len(smtp.mails) == 1

    unknown = cli(world.config_path, "notify", "test", "--notifier", "nobody")
    assert unknown.exit_code == 2
    assert "nobody" in unknown.stderr and "robots" in unknown.stderr
    assert len(ding.requests) == 2 and len(wecom.requests) == 1 and len(smtp.mails) == 1


def test_notify_test_reports_a_sender_that_raises_as_failed_and_tests_the_rest(channels, deploy):
    """A typo in ``api=`` (port 80800) makes the sender raise instead of answering; that URL's line
    says FAILED and the other URLs are still tested, rather than the command dying in a traceback."""
    typo = f"dingtalk://{DING_TOKEN}/?api=http://127.0.0.1:80800/robot/send"
    world = deploy(notifier("robots", [typo, channels.wecom.wecom_url(WECOM_KEY)]))
    result = cli(world.config_path, "notify", "test")
    assert result.exit_code == 1, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    assert any("dingtalk://" in line and "FAILED" in line for line in lines)
    assert any("wecombot://" in line and line.endswith(": ok") for line in lines)
    assert len(channels.wecom.accepted) == 1


def test_notify_test_never_prints_a_short_token_whole(channels, deploy):
    """A hint of the token's last characters tells robots apart, but must not be the whole token."""
    world = deploy(notifier("robots", [channels.ding.dingtalk_url("tok", DING_SECRET)]))
    result = cli(world.config_path, "notify", "test")
    assert result.exit_code == 0, result.output
    assert "tok" not in result.stdout


# -- 10. `watcher check --no-notify`, then `watcher check` -------------------------------------------


def test_check_no_notify_stores_alerts_and_the_next_check_sends_them(channels, deploy):
    wecom, smtp = channels.wecom, channels.smtp
    world = deploy(notifier("everyone", [wecom.wecom_url(WECOM_KEY), smtp.url()]))
    world.add(*ALL_BORROWERS)
    world.stage(0)
    baseline = cli(world.config_path, "check")
    assert baseline.exit_code == 0, baseline.output
    world.stage(1)

    stored = cli(world.config_path, "check", "--no-notify")
    assert stored.exit_code == 0, stored.output
    assert "3 alert(s)" in stored.stdout and "nothing sent" in stored.stdout
    assert {(d.status, d.attempts) for d in world.deliveries()} == {("pending", 0)}
    assert len(world.deliveries()) == 6
    assert world.summary(utcnow()).deliveries_pending == 6
    assert (len(wecom.requests), len(smtp.mails)) == (0, 0)

    world.stage(1)  # nothing changes in the registries
    sent = cli(world.config_path, "check")
    assert sent.exit_code == 0, sent.output
    assert "0 alert(s)" in sent.stdout and "deliveries: 6 sent, 0 failed" in sent.stdout
    assert {(d.status, d.attempts) for d in world.deliveries()} == {("sent", 1)}
    for borrower in ("b-lanchao", "b-fjordlys", "b-hardanger"):
        assert arrivals(wecom.texts(), borrower) == 1 and arrivals(smtp.texts(), borrower) == 1
    summary = world.summary(utcnow())
    assert (summary.deliveries_pending, summary.deliveries_retrying, summary.deliveries_dead) == (0, 0, 0)


# -- 8. what the daemon's log says -------------------------------------------------------------------


def test_the_daemon_log_names_each_alert_and_each_failed_delivery(channels, deploy, caplog):
    """One line per alert raised (id, borrower, categories, severity) and one per failed delivery
    (target, masked channel, attempt, reason), besides the summary line; no token or secret."""
    ding, wecom = channels.ding, channels.wecom
    world = deploy(
        officer("张伟", [ding.dingtalk_url(DING_TOKEN, DING_SECRET)])
        + notifier("norway_only", [wecom.wecom_url(WECOM_KEY)], sources=["no"])
    )
    world.add(*ALL_BORROWERS)
    world.stage(0)
    world.check(BASELINE_AT)
    world.stage(1)
    ding.reject_with(310000, "keywords not in content")
    caplog.set_level(logging.INFO, logger="watcher")

    async def one_sweep() -> None:
        daemon = Daemon(world.store, world.config, instance="log-test")
        try:
            await daemon._sweep()
            while daemon._busy:  # the delivery the sweep started
                await asyncio.gather(*list(daemon._busy))
        finally:
            await daemon.checker.aclose()
            daemon.dispatcher.close()

    asyncio.run(one_sweep())

    lines = [record.getMessage() for record in caplog.records]
    assert "checked 3 borrower(s): 0 failed, 3 alert(s)" in lines
    alerts = world.alerts()
    with world.store.session() as session:
        events = session.exec(select(ChangeEvent.alert_id, ChangeEvent.category)).all()
    categories = {
        borrower_id: sorted({category for alert_id, category in events if alert_id == alert.id})
        for borrower_id, alert in alerts.items()
    }
    for row in ALL_BORROWERS:
        alert = alerts[row.id]
        # A signatory on file that no longer matches the registry is part of what the alert says.
        named = categories[row.id] + (["signatory_mismatch"] if alert.signatory_mismatch else [])
        expected = (
            f"alert #{alert.id} raised: borrower {row.id} ({row.name}), change, "
            f"severity {alert.severity}, categories {', '.join(named)}"
        )
        assert expected in lines
    assert alerts["b-lanchao"].signatory_mismatch, "the sample's legal representative left: 王建国 ≠ 李娜"
    assert "legal_representative" in categories["b-lanchao"]

    lanchao = alerts["b-lanchao"].id
    failures = [line for line in lines if line.startswith("delivery of alert")]
    assert failures == [
        f"delivery of alert #{lanchao} to officer:zhang_wei via dingtalk://…{DING_TOKEN[-4:]} failed "
        "(attempt 1 of 8): errcode 310000: keywords not in content"
    ], failures
    summaries = [line for line in lines if line.startswith("deliveries:")]
    assert summaries == ["deliveries: 2 sent, 1 failed (will retry), 0 dead"], "one summary per dispatch"
    for secret in (DING_TOKEN, DING_SECRET, WECOM_KEY):
        assert secret not in caplog.text
