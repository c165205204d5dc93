"""The console shows a deactivated borrower as inactive (portfolio, borrower page, status) in zh-CN
and en, labels the lifecycle's audit entries, and leaves inactive borrowers out of the health numbers.

The deployment is ``tests/test_console.py``'s ConsoleWorld (real pipeline, real SQLite)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from sqlmodel import update

from tests.test_console import ConsoleWorld, signed_in
from watcher.console.i18n import AUDIT_ACTION_LABEL
from watcher.lifecycle import deactivate
from watcher.models import Borrower, utcnow
from watcher.vocabulary import AuditAction, Language


@pytest.fixture
def world(tmp_path, sqlite_url) -> Iterator[ConsoleWorld]:
    """b-fjordlys deactivated by its officer 李娜, with a failing streak from before."""
    made = ConsoleWorld(tmp_path, sqlite_url)
    with made.store.transaction() as session:
        session.exec(
            update(Borrower)
            .where(Borrower.id == "b-fjordlys")
            .values(consecutive_failures=5, last_error_kind="transient")
        )
        deactivate(session, ["b-fjordlys"], actor="李娜", now=utcnow(), reason="贷款已结清")
    yield made
    made.deployment.close()


def row_of(html: str, borrower_id: str) -> str:
    match = re.search(
        rf'<tr class="([^"]*)">\s*<td><a href="/borrower\?id={borrower_id}">.*?</tr>', html, re.S
    )
    assert match, f"no portfolio row for {borrower_id}"
    return match[0]


def test_portfolio_marks_the_inactive_borrower_and_not_as_failing(world):
    client = signed_in(world, "risk")
    html = client.get("/").text
    inactive, watched = row_of(html, "b-fjordlys"), row_of(html, "b-hardanger")
    assert 'class=" inactive"' in inactive and "已停止监控（自 20" in inactive
    assert "⚠" not in inactive, "an inactive borrower is not checked, so not marked as failing"
    assert "inactive" not in watched and "已停止监控" not in watched
    english = client.get("/?lang=en").text
    assert "Inactive since 20" in row_of(english, "b-fjordlys")


def test_borrower_page_says_since_when_and_labels_the_audit_entry(world):
    client = signed_in(world, "li")
    html = client.get("/borrower?id=b-fjordlys").text
    state = re.search(r'<dd id="monitoring-state">(.*?)</dd>', html, re.S)
    assert state and "已停止监控（自 20" in state[1]
    assert "停止监控" in html and "贷款已结清" in html and "李娜" in html
    english = client.get("/borrower?id=b-fjordlys&lang=en").text
    assert "Inactive since 20" in english and "Monitoring stopped" in english
    other = signed_in(world, "risk").get("/borrower?id=b-hardanger&lang=en").text
    assert re.search(r'<dd id="monitoring-state">\s*Watched\s*</dd>', other)


def test_status_counts_inactive_borrowers_apart_from_the_health_numbers(world):
    html = signed_in(world, "risk").get("/status?lang=en").text
    card = re.search(r'<div class="card" id="inactive-count"><div class="num">(\d+)</div>', html)
    assert card and card[1] == "1"
    assert "b-fjordlys" not in html, "an inactive borrower is not listed as failing"
    officer = signed_in(world, "li").get("/status?lang=en").text
    assert re.search(r'id="inactive-count"><div class="num">1<', officer)
    assert 'id="inactive-count"' not in signed_in(world, "zhang").get("/status").text


@pytest.mark.parametrize("language", list(Language))
def test_every_audit_action_has_a_label(language):
    assert set(AUDIT_ACTION_LABEL[language]) == set(AuditAction)
    assert all(label.strip() for label in AUDIT_ACTION_LABEL[language].values())
