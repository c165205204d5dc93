"""End to end in a real browser: headless Chromium (Debian's chromium + chromium-driver, via Selenium)
against the console served by uvicorn through ``serve_console`` on 127.0.0.1.

A reviewer signs in, acknowledges an alert with a note, and finds on the borrower's timeline who
acknowledged it and when. The planted registry text of ``tests/test_console.py`` must show as text
and run nothing. The screenshots (timeline, listings, portfolio) are taken on every run; with
WATCHER_UPDATE_SCREENSHOTS=1 they also refresh ``docs/screenshots/console-*.png`` for reviewers.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path

import pytest

from tests.test_console import PASSWORD, STORED_LEGAL_REP, ConsoleWorld
from tests.test_console_connections import ConnectionWorld
from tests.test_console_listings import ListingWorld
from watcher.console.app import serve_console

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
INSTALL_HINT = (
    "the console's browser test needs Debian's chromium and chromium-driver: "
    "apt-get install -y chromium chromium-driver (.ci/run does this)"
)
WAIT_SECONDS = 20
SCREENSHOT = Path(__file__).resolve().parents[1] / "docs" / "screenshots" / "console-timeline.png"


class ServedConsole:
    """``serve_console`` on its own event loop in a thread, on a socket bound to a free loopback port."""

    def __init__(self, world: ConsoleWorld, config=None) -> None:
        self.config = config or world.config
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self.loop = asyncio.new_event_loop()
        self.stop = asyncio.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(world,), name="console", daemon=True)

    def _run(self, world: ConsoleWorld) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(serve_console(world.store, self.config, self.stop, sock=self.sock))
        except BaseException as error:  # reported by close()
            self.error = error
        finally:
            self.loop.close()

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.base}/login", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"the console did not answer on {self.base} (error: {self.error!r})")

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join(timeout=15)
        self.sock.close()
        assert not self.thread.is_alive(), "serve_console did not stop when its stop event was set"
        assert self.error is None, f"serve_console failed: {self.error!r}"


def arrived(browser, url: str) -> None:
    """Wait until a click's navigation has landed on ``url`` (query and all, up to any fragment)."""
    from selenium.webdriver.support.wait import WebDriverWait

    WebDriverWait(browser, WAIT_SECONDS).until(
        lambda b: (
            b.current_url.split("#")[0] == url
            and b.execute_script("return document.readyState") == "complete"
        ),
        message=f"never arrived at {url}",
    )


@pytest.fixture
def browser(tmp_path) -> Iterator:
    if shutil.which("chromium") is None and not Path(CHROMIUM).exists():
        pytest.fail(f"chromium is not installed; {INSTALL_HINT}")
    if not Path(CHROMEDRIVER).exists():
        pytest.fail(f"chromedriver is not installed; {INSTALL_HINT}")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        "--window-size=1280,900",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def served(tmp_path, sqlite_url) -> Iterator[tuple[ConsoleWorld, ServedConsole]]:
    world = ConsoleWorld(tmp_path, sqlite_url)
    console = ServedConsole(world)
    console.start()
    try:
        yield world, console
    finally:
        console.close()
        world.deployment.close()


def test_a_reviewer_acknowledges_an_alert_and_the_timeline_shows_who(served, browser, tmp_path):
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.wait import WebDriverWait

    world, console = served
    fjordlys = world.alert_ids()["b-fjordlys"]

    browser.get(f"{console.base}/alerts?lang=en")
    assert "/login" in browser.current_url, "an unsigned visitor is sent to sign in"
    browser.find_element(By.ID, "username").send_keys("risk")
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    browser.find_element(By.ID, "sign-in").click()
    arrived(browser, f"{console.base}/alerts?lang=en")
    assert browser.find_element(By.ID, "current-user").text == "Risk Desk"

    card = browser.find_element(By.ID, f"alert-{fjordlys}")
    assert "Warning" in card.text and "FJORDLYS SJØMAT AS" in card.text
    assert len(card.find_elements(By.TAG_NAME, "textarea")) == 1, "one note box for both buttons"
    card.find_element(By.CSS_SELECTOR, "form.actions textarea").send_keys("Called the CFO: new CEO confirmed")
    card.find_element(By.CSS_SELECTOR, "form.actions button.ack").click()
    flash = WebDriverWait(browser, WAIT_SECONDS).until(lambda b: b.find_elements(By.CSS_SELECTOR, ".flash"))
    assert f"Alert #{fjordlys} acknowledged." in flash[0].text
    assert not browser.find_elements(By.CSS_SELECTOR, f"#alert-{fjordlys}"), "no longer in the open inbox"

    stored = world.alert(fjordlys)
    assert (stored.status, stored.acknowledged_by, stored.note) == (
        "acknowledged",
        "Risk Desk",
        "Called the CFO: new CEO confirmed",
    )
    [audit_row] = world.audit("alert.acknowledged")
    assert audit_row.actor == "Risk Desk"

    browser.find_element(By.LINK_TEXT, "Portfolio").click()
    arrived(browser, f"{console.base}/")
    browser.find_element(By.LINK_TEXT, "b-fjordlys").click()
    arrived(browser, f"{console.base}/borrower?id=b-fjordlys")
    acknowledged = browser.find_element(By.CSS_SELECTOR, "#timeline .ack-by").text
    assert "Acknowledged by Risk Desk" in acknowledged
    assert re.search(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}", acknowledged), "and when"
    assert "Called the CFO" in browser.find_element(By.ID, "timeline").text
    assert "Alert acknowledged" in browser.find_element(By.ID, "audit").text, "audit actions read as words"

    shot = tmp_path / "console-timeline.png"
    assert browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000
    if os.environ.get("WATCHER_UPDATE_SCREENSHOTS"):  # refresh the committed picture on purpose only
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, SCREENSHOT)

    # The planted registry text shows as text and runs nothing (escaping, and the CSP behind it).
    browser.get(f"{console.base}/borrower?id=b-lanchao")
    assert STORED_LEGAL_REP in browser.find_element(By.ID, "timeline").text
    assert browser.find_element(By.ID, "borrower-name").text.startswith('<script>alert("name")</script>')
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.text  # noqa: B018 (reading it is the check)


LISTINGS_SCREENSHOT = SCREENSHOT.with_name("console-listings.png")


@pytest.fixture
def served_listings(tmp_path, sqlite_url) -> Iterator[tuple[ListingWorld, ServedConsole]]:
    world = ListingWorld(tmp_path, sqlite_url)
    console = ServedConsole(world.deployment)
    console.start()
    try:
        yield world, console
    finally:
        console.close()
        world.deployment.close()


def test_an_officer_reads_a_borrowers_risk_listings_in_both_languages(served_listings, browser, tmp_path):
    """The listings in force stand first and marked, unknown lists say so, hostile text runs nothing."""
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.by import By

    _world, console = served_listings
    browser.get(f"{console.base}/login")
    browser.find_element(By.ID, "username").send_keys("zhang")
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    browser.find_element(By.ID, "sign-in").click()
    arrived(browser, f"{console.base}/")

    for lang, active, not_fetched in (("zh-CN", "有效", "未获取"), ("en", "Active", "not fetched")):
        browser.get(f"{console.base}/borrower?id=b-risky&lang={lang}")
        abnormal = browser.find_element(By.ID, "section-abnormal_operation")
        states = [row.get_attribute("class") for row in abnormal.find_elements(By.CSS_SELECTOR, "tr.listing")]
        assert states == ["listing listing-active", "listing listing-removed"]
        badge = abnormal.find_element(By.CSS_SELECTOR, ".state-badge-active")
        assert badge.text == active and badge.value_of_css_property("color") == "rgba(255, 255, 255, 1)"
        assert browser.find_element(By.CSS_SELECTOR, "#section-bankruptcy .not-fetched").text == not_fetched
        pledge = browser.find_element(By.ID, "section-equity_pledge").text
        assert '<svg/onload=alert("pledgee")' in pledge, "hostile registry text shows as text"
        # Every section fits the page: nothing wider than the viewport (no sideways scrolling).
        assert browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
        with pytest.raises(NoAlertPresentException):
            browser.switch_to.alert.text  # noqa: B018 (reading it is the check)

    height = browser.execute_script("return document.body.scrollHeight")
    browser.set_window_size(1280, height + 100)
    shot = tmp_path / "console-listings.png"
    assert browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000
    if os.environ.get("WATCHER_UPDATE_SCREENSHOTS"):  # refresh the committed picture on purpose only
        shutil.copyfile(shot, LISTINGS_SCREENSHOT)


PORTFOLIO_SCREENSHOT = SCREENSHOT.with_name("console-portfolio.png")
# Alerts of earlier weeks (weeks before the current one, severity), beside the pipeline's three of
# this week: what a portfolio's quarter looks like on the chart.
EARLIER_ALERTS = {
    11: ("info",),
    10: ("warning", "info"),
    9: (),
    8: ("high", "warning", "info", "info"),
    7: ("warning",),
    6: ("critical", "high", "info"),
    5: ("info", "info"),
    4: ("warning", "warning", "info"),
    3: (),
    2: ("high", "info"),
    1: ("critical", "warning", "warning", "info", "info"),
}


def plant_alert_weeks(world: ConsoleWorld, now: datetime) -> None:
    """The pipeline's three alerts moved into this week (the served console keeps the real time) and
    closed alerts of the weeks before, on the three borrowers in turn, in the deployment's zone."""
    from sqlmodel import select

    from watcher.models import Alert

    zone = world.config.watcher.zone
    local = now.astimezone(zone)
    monday = datetime.combine(local.date() - timedelta(days=local.weekday()), clock_time(), tzinfo=zone)
    borrowers = ("b-lanchao", "b-fjordlys", "b-hardanger")
    with world.store.transaction() as session:
        for alert in session.exec(select(Alert)):
            alert.created_at = max(monday, now - timedelta(minutes=1)).astimezone(UTC)
            session.add(alert)
        for weeks_back, severities in EARLIER_ALERTS.items():
            for index, severity in enumerate(severities):
                borrower_id = borrowers[(weeks_back + index) % len(borrowers)]
                created = (monday - timedelta(weeks=weeks_back, hours=-12 - index * 20)).astimezone(UTC)
                session.add(
                    Alert(
                        borrower_id=borrower_id,
                        source="cn" if borrower_id == "b-lanchao" else "no",
                        severity=severity,
                        status="closed",
                        created_at=created,
                        closed_by="Risk Desk",
                        closed_at=created + timedelta(days=1),
                    )
                )


def test_the_portfolio_overview_draws_the_weeks_alerts_and_the_sources(served, browser, tmp_path):
    """The overview reads at a glance in a real browser: tiles, a chart of 12 weeks with its bars
    drawn in the stylesheet's colours (the CSP allows no inline style), the sources' health."""
    from selenium.webdriver.common.by import By

    world, console = served
    plant_alert_weeks(world, datetime.now(UTC))
    with world.store.transaction() as session:
        from watcher.models import Borrower

        hardanger = session.get(Borrower, "b-hardanger")
        hardanger.consecutive_failures, hardanger.last_error_kind = 3, "transient"
        session.add(hardanger)

    browser.get(f"{console.base}/login")
    browser.find_element(By.ID, "username").send_keys("risk")
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    browser.find_element(By.ID, "sign-in").click()
    arrived(browser, f"{console.base}/")

    for lang, title, critical in (
        ("en", "New alerts per week, last 12 weeks", "Critical"),
        ("zh-CN", "近 12 周每周新增预警", "严重"),
    ):
        browser.get(f"{console.base}/?lang={lang}")
        chart = browser.find_element(By.CSS_SELECTOR, "#weekly svg.chart")
        assert browser.find_element(By.CSS_SELECTOR, "#weekly h2").text == title
        assert chart.size["width"] > 400 and chart.size["height"] > 120, (
            "the chart is drawn at a readable size"
        )
        weeks = chart.find_elements(By.CSS_SELECTOR, "g.week")
        assert len(weeks) == 12
        totals = [int(week.get_attribute("data-total")) for week in weeks]
        assert totals == [len(EARLIER_ALERTS.get(back, ())) for back in range(11, 0, -1)] + [3]
        critical_bar = chart.find_element(By.CSS_SELECTOR, "rect.bar-critical")
        assert critical_bar.value_of_css_property("fill") == "rgb(142, 16, 32)", "coloured by the stylesheet"
        tile = browser.find_element(By.CSS_SELECTOR, "#by-severity .tile-critical")
        assert critical in tile.text
        assert browser.find_element(By.CSS_SELECTOR, "#by-severity .tile-high .num").text == "1"
        failing = browser.find_element(By.CSS_SELECTOR, '#source-overview tr[data-source="no"]')
        assert "failing" in failing.get_attribute("class")
        assert not browser.find_element(By.ID, "weekly-table").is_displayed(), (
            "the table waits behind its summary"
        )
        assert browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")

    browser.find_element(By.CSS_SELECTOR, "details.chart-table summary").click()
    assert browser.find_element(By.ID, "weekly-table").is_displayed(), "no script needed to open it"
    browser.find_element(By.CSS_SELECTOR, "details.chart-table summary").click()

    browser.get(f"{console.base}/?lang=en")  # the CI's Chromium has no CJK font to draw zh-CN with
    height = browser.execute_script("return document.body.scrollHeight")
    browser.set_window_size(1280, min(height + 100, 1400))
    shot = tmp_path / "console-portfolio.png"
    assert browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000
    if os.environ.get("WATCHER_UPDATE_SCREENSHOTS"):  # refresh the committed picture on purpose only
        shutil.copyfile(shot, PORTFOLIO_SCREENSHOT)


CONNECTIONS_SCREENSHOT = SCREENSHOT.with_name("console-connections.png")


@pytest.fixture
def served_connections(tmp_path, sqlite_url) -> Iterator[tuple[ConnectionWorld, ServedConsole]]:
    world = ConnectionWorld(tmp_path, sqlite_url)
    console = ServedConsole(world.deployment)
    console.start()
    try:
        yield world, console
    finally:
        console.close()
        world.close()


def _sign_in(browser, console: ServedConsole, username: str) -> None:
    from selenium.webdriver.common.by import By

    browser.delete_all_cookies()
    browser.get(f"{console.base}/login")
    browser.find_element(By.ID, "username").send_keys(username)
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    browser.find_element(By.ID, "sign-in").click()
    arrived(browser, f"{console.base}/")


def test_a_partys_neighbourhood_is_drawn_and_scoped_in_the_browser(served_connections, browser, tmp_path):
    """The drawing shows in a real browser under the CSP: nodes laid out, the risky marked in red,
    possible links dashed, a visible party's node a link to its page; an officer's drawing names
    none of the parties they may not see."""
    from selenium.webdriver.common.by import By

    _world, console = served_connections
    _sign_in(browser, console, "risk")
    browser.get(f"{console.base}/borrower?id=b-alpha&lang=zh-CN")
    drawing = browser.find_element(By.CSS_SELECTOR, "#neighbourhood svg")
    assert drawing.size["width"] > 200 and drawing.size["height"] > 100, "drawn at a readable size"
    nodes = drawing.find_elements(By.CSS_SELECTOR, "g.node")
    assert len(nodes) == 9  # five parties, four people
    risky = drawing.find_elements(By.CSS_SELECTOR, "g.node.risky polygon")
    assert risky and all(shape.get_attribute("stroke") == "#b00020" for shape in risky)
    assert drawing.find_elements(By.CSS_SELECTOR, "g.edge.possible path[stroke-dasharray]")
    assert browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
    height = browser.execute_script("return document.body.scrollHeight")
    browser.set_window_size(1280, min(height + 100, 1600))
    browser.execute_script("document.getElementById('connections-heading').scrollIntoView()")
    shot = tmp_path / "console-connections.png"
    assert browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000
    if os.environ.get("WATCHER_UPDATE_SCREENSHOTS"):  # refresh the committed picture on purpose only
        shutil.copyfile(shot, CONNECTIONS_SCREENSHOT)

    gamma = drawing.find_element(By.CSS_SELECTOR, 'a[href="/borrower?id=b-gamma"]')
    gamma.click()
    arrived(browser, f"{console.base}/borrower?id=b-gamma")
    assert browser.find_element(By.ID, "borrower-name").text == "伽马物流有限公司"

    _sign_in(browser, console, "zhang")
    browser.get(f"{console.base}/borrower?id=b-alpha&lang=zh-CN")
    drawing = browser.find_element(By.CSS_SELECTOR, "#neighbourhood svg")
    labels = [node.text for node in drawing.find_elements(By.CSS_SELECTOR, "g.node")]
    assert labels.count("另一关联方（无权查看）") == 2 and "赵敏" not in labels
    assert not any("贝塔" in label or "b-beta" in label for label in labels)
    assert not drawing.find_elements(By.CSS_SELECTOR, "g.node.hidden a"), "no link to a hidden party"
