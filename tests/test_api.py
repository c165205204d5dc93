"""The integration API's foundation (issue 17): tokens, authentication, limits, /status, the OpenAPI
document and the docs page, over real servers on 127.0.0.1 and real SQLite and PostgreSQL stores.

The console's app (``create_app``) is served by ``serve_console`` as ``watcher serve`` does; the
shared dependencies a resource module will use (write scope, request models, pagination, the audit
helper) are exercised through a probe router served by uvicorn the same way, since the foundation
itself has no write endpoint yet.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import APIRouter
from itsdangerous import TimestampSigner
from pydantic import BaseModel, Field
from sqlmodel import col, select
from typer.testing import CliRunner

from sources.brreg import BrregOptions
from watcher.api.app import API_PREFIX, RESOURCES, create_api
from watcher.api.common import (
    WRITE_ERRORS,
    ApiModel,
    Deployment,
    Page,
    PageQuery,
    RateLimiter,
    Reader,
    Writer,
    audit_write,
)
from watcher.api.tokens import Principal, add_token, authenticate, revoke_token
from watcher.cli import app as cli_app
from watcher.config import Config
from watcher.console.app import SESSION_COOKIE, ConsoleSessions, serve_console
from watcher.health import read_health
from watcher.models import ApiToken, AuditLog, Borrower, SecuresLink
from watcher.serving import serve_until_stopped
from watcher.store import Store, open_store
from watcher.units import Rate
from watcher.visibility import scoped
from watcher.vocabulary import AuditAction, TokenScope

SECRET = "api-test-console-secret-0123456789abcdef"
OFFICERS = {"zhang_wei": {"name": "张伟"}, "li_na": {"name": "李娜"}}
RUNNER = CliRunner()


def make_config(url: str, **api: Any) -> Config:
    return Config.model_validate(
        {"database": {"url": url}, "console": {"secret_key": SECRET}, "officers": OFFICERS, "api": api}
    )


def new_token(
    store: Store, name: str, scope: TokenScope = TokenScope.READ, officer: str | None = None
) -> str:
    with store.transaction() as session:
        _row, token = add_token(session, name=name, scope=scope, officer_id=officer, actor="test")
    return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class Served:
    """An ASGI server on its own event loop in a thread, on a free loopback port: ``serve_console``
    (the console with the API mounted, as ``watcher serve`` runs it) or uvicorn with any app."""

    def __init__(self, serve) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.base = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.loop = asyncio.new_event_loop()
        self.stop = asyncio.Event()
        self.error: BaseException | None = None
        self.serve = serve
        self.thread = threading.Thread(target=self._run, name="api-server", daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self.serve(self.stop, self.sock))
        except BaseException as error:  # reported by close()
            self.error = error
        finally:
            self.loop.close()

    def __enter__(self) -> httpx.Client:
        self.thread.start()
        self.client = httpx.Client(base_url=self.base, timeout=30)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                self.client.get("/favicon.ico")
                return self.client
            except httpx.TransportError:
                time.sleep(0.05)
        raise AssertionError(f"no server on {self.base} (error: {self.error!r})")

    def __exit__(self, *exc: object) -> None:
        self.client.close()
        self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join(timeout=15)
        self.sock.close()
        assert not self.thread.is_alive(), "the server did not stop"
        assert self.error is None, f"the server failed: {self.error!r}"


def console_server(store: Store, config: Config) -> Served:
    return Served(lambda stop, sock: serve_console(store, config, stop, sock=sock))


def app_server(app) -> Served:
    async def serve(stop, sock):
        await serve_until_stopped(
            app, stop, host="127.0.0.1", port=0, what="api", start_error=RuntimeError, sock=sock
        )

    return Served(serve)


@pytest.fixture
def store(sqlite_url) -> Iterator[Store]:
    opened = open_store(sqlite_url)
    yield opened
    opened.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def any_store(request, sqlite_url) -> Iterator[Store]:
    url = sqlite_url if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    opened = open_store(url)
    yield opened
    opened.dispose()


# -- tokens: the command line and the store ---------------------------------------------------------


def write_config_file(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "watcher.toml"
    path.write_text(f'[database]\nurl = "{url}"\n\n[officers.zhang_wei]\nname = "张伟"\n', encoding="utf-8")
    return path


def cli(config_path: Path, *args: str):
    return RUNNER.invoke(cli_app, ["--config", str(config_path), *args])


def test_tokens_command_line_round_trip(any_store, tmp_path):
    """add prints the token once (and says so), stores only a salted hash; list and revoke; audited."""
    url = any_store.engine.url.render_as_string(hide_password=False)
    path = write_config_file(tmp_path, url)

    added = cli(path, "tokens", "add", "loan-system", "--scope", "write", "--officer", "zhang_wei")
    assert added.exit_code == 0, added.output
    token = added.stdout.strip()
    assert re.fullmatch(r"bwt_[0-9a-f]{16}_[A-Za-z0-9_-]{43}", token)
    assert "only time it is shown" in added.stderr
    assert cli(path, "tokens", "add", "data-mart", "--scope", "read").exit_code == 0
    duplicate = cli(path, "tokens", "add", "loan-system", "--scope", "read")
    assert duplicate.exit_code == 2 and "already exists" in duplicate.stderr
    unknown_officer = cli(path, "tokens", "add", "other", "--scope", "read", "--officer", "nobody")
    assert unknown_officer.exit_code == 2 and "nobody" in unknown_officer.stderr

    with any_store.session() as session:
        row = session.exec(select(ApiToken).where(ApiToken.name == "loan-system")).one()
        secret = token.split("_", 2)[2]
        stored = " ".join(str(value) for value in row.model_dump().values())
        assert secret not in stored and token not in stored
        assert len(row.secret_hash) == 64 and len(row.salt) == 32
        assert (row.scope, row.officer_id, row.revoked_at) == ("write", "zhang_wei", None)
        assert authenticate(session, token) == Principal(row.id, "loan-system", TokenScope.WRITE, "zhang_wei")
        assert authenticate(session, token[:-1] + ("A" if token[-1] != "A" else "B")) is None

    listed = cli(path, "tokens", "list", "--format", "json")
    assert listed.exit_code == 0
    rows = {entry["name"]: entry for entry in json.loads(listed.stdout)}
    assert rows["loan-system"]["scope"] == "write" and rows["loan-system"]["officer"] == "zhang_wei"
    assert rows["data-mart"]["officer"] is None and rows["data-mart"]["active"] is True
    assert rows["loan-system"]["last_used_at"] is not None and rows["data-mart"]["last_used_at"] is None
    assert token not in listed.stdout and "hash" not in listed.stdout
    table = cli(path, "tokens", "list")
    assert table.exit_code == 0 and "loan-system" in table.stdout and token not in table.stdout

    assert cli(path, "tokens", "revoke", "loan-system").exit_code == 0
    again = cli(path, "tokens", "revoke", "loan-system")
    assert again.exit_code == 2 and "already revoked" in again.stderr
    assert cli(path, "tokens", "revoke", "nope").exit_code == 2
    assert json.loads(cli(path, "tokens", "list", "--format", "json").stdout)[1]["active"] is False
    with any_store.session() as session:
        assert authenticate(session, token) is None
        trail = session.exec(
            select(AuditLog).where(col(AuditLog.subject_type) == "api_token").order_by(col(AuditLog.id))
        ).all()
    assert [(r.actor, r.action, r.subject_id) for r in trail] == [
        ("cli", AuditAction.API_TOKEN_ADDED, "loan-system"),
        ("cli", AuditAction.API_TOKEN_ADDED, "data-mart"),
        ("cli", AuditAction.API_TOKEN_REVOKED, "loan-system"),
    ]
    assert json.loads(trail[0].detail or "{}") == {"officer": "zhang_wei", "scope": "write"}


def test_an_officers_token_sees_that_officers_parties_and_those_securing_them(any_store):
    """The API's principal is scoped by the console's rule (watcher.visibility), in SQL."""
    with any_store.transaction() as session:
        for party, officer in (
            ("b-zhang", "zhang_wei"),
            ("b-li", "li_na"),
            ("g-zhang", None),
            ("b-none", None),
        ):
            session.add(Borrower(id=party, name=party, source="brreg", registry_id=party, officer=officer))
        session.flush()
        session.add(SecuresLink(party_id="g-zhang", borrower_id="b-zhang"))
    zhang = Principal(1, "zhang", TokenScope.READ, "zhang_wei")
    everyone = Principal(2, "all", TokenScope.READ, None)
    with any_store.session() as session:
        seen = set(session.exec(scoped(select(Borrower.id), zhang)))
        assert seen == {"b-zhang", "g-zhang"}
        assert set(session.exec(scoped(select(Borrower.id), everyone))) == {
            "b-zhang",
            "b-li",
            "g-zhang",
            "b-none",
        }


def test_the_rate_limiter_refills_evenly():
    now = [0.0]
    limiter = RateLimiter(Rate(2, timedelta(seconds=1)), clock=lambda: now[0])
    assert limiter.take("a") == 0 and limiter.take("a") == 0
    assert limiter.take("a") == pytest.approx(0.5)
    assert limiter.take("b") == 0  # per token
    now[0] = 0.5
    assert limiter.take("a") == 0 and limiter.take("a") > 0


# -- the console's server: authentication, headers, /status ----------------------------------------


def test_no_api_without_a_valid_token(any_store):
    """On SQLite and PostgreSQL: the token is looked up, proved, and refused once revoked."""
    store = any_store
    config = make_config(str(store.engine.url))
    token = new_token(store, "monitor")
    with console_server(store, config) as client:
        for headers in (
            {},
            {"Authorization": "Basic dXNlcjpwYXNz"},
            {"Authorization": "Bearer"},
            bearer("bwt_0000000000000000_" + "A" * 43),
            bearer("not-a-token"),
        ):
            response = client.get(f"{API_PREFIX}/status", headers=headers)
            assert response.status_code == 401, headers
            assert response.headers["content-type"] == "application/json"
            assert response.headers["www-authenticate"].startswith("Bearer ")
            assert isinstance(response.json()["detail"], str)
        assert client.get(f"{API_PREFIX}/status", headers=bearer(token)).status_code == 200
        with store.transaction() as session:
            revoke_token(session, "monitor", actor="test")
        revoked = client.get(f"{API_PREFIX}/status", headers=bearer(token))
        assert revoked.status_code == 401 and 'error="invalid_token"' in revoked.headers["www-authenticate"]


def test_status_is_watcher_status_json_for_a_deployment_wide_token(store):
    config = make_config(str(store.engine.url)).model_copy(
        update={"sources": {"brreg": BrregOptions(type="brreg")}}  # followed by change feeds
    )
    reader = new_token(store, "monitor")
    officer = new_token(store, "zhang-feed", officer="zhang_wei")
    with store.transaction() as session:
        session.add(Borrower(id="b-1", name="b-1", source="brreg", registry_id="1", consecutive_failures=2))
    _a_followed_feed(store, config)  # the feeds' fields too: the API's model must carry every one
    with console_server(store, config) as client:
        response = client.get(f"{API_PREFIX}/status", headers=bearer(reader))
        refused = client.get(f"{API_PREFIX}/status", headers=bearer(officer))
    assert response.status_code == 200
    with store.session() as session:
        expected = read_health(session, config).as_json()
    got = response.json()
    for body in (got, expected):  # the times differ by when each was read; the rest must not
        body.pop("checked_at")
        for feed in body["feeds"]:
            assert feed.pop("lag_seconds") >= 0
    assert _times_parsed(got) == _times_parsed(expected)
    assert got["ok"] is False and got["failing_borrowers"][0]["id"] == "b-1"
    assert got["feeds"][0]["failing_since"] is not None, "every field of a feed, as the CLI says it"
    assert refused.status_code == 403 and "zhang_wei" in refused.json()["detail"]


def _a_followed_feed(store, config) -> None:
    """One feed of ``brreg`` as its follower leaves it (``watcher.feeds``), failing, so every field is set."""
    from datetime import timedelta

    from sources.change_feed import FeedBatch
    from watcher.errors import TransientError
    from watcher.feeds import advance, claim_feeds, fail
    from watcher.models import utcnow

    now, lease = utcnow(), timedelta(minutes=1)
    with store.transaction() as session:
        assert claim_feeds(session, "brreg", ["enheter"], instance="a", now=now, lease=lease)
        advance(
            session,
            config,
            "brreg",
            "enheter",
            FeedBatch((), "id:7", True),
            instance="a",
            now=now,
            lease=lease,
        )
        fail(session, config, "brreg", "enheter", TransientError("HTTP 503"), instance="a", now=now)


def _times_parsed(value: Any) -> Any:
    """``…+00:00`` (the CLI) and ``…Z`` (pydantic) are the same moment."""
    if isinstance(value, dict):
        return {key: _times_parsed(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_times_parsed(item) for item in value]
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d\d-\d\dT.*", value):
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value


def test_api_answers_carry_the_security_headers_and_never_a_cookie(store):
    """Same SecurityHeaders as the console; the console's session cookie is neither read nor set."""
    config = make_config(str(store.engine.url))
    token = new_token(store, "monitor")
    session_data = base64.b64encode(json.dumps({"sid": "console-session"}).encode())
    cookie = TimestampSigner(SECRET).sign(session_data).decode()
    with console_server(store, config) as client:
        signed_in = {"Cookie": f"{SESSION_COOKIE}={cookie}"}
        answers = [
            client.get(f"{API_PREFIX}/status", headers={**bearer(token), **signed_in}),
            client.get(f"{API_PREFIX}/status", headers=signed_in),
            client.get(f"{API_PREFIX}/openapi.json", headers=signed_in),
            client.get(f"{API_PREFIX}/docs", headers=signed_in),
            client.get(f"{API_PREFIX}/no-such-thing", headers={**bearer(token), **signed_in}),
        ]
    for response in answers:
        assert "set-cookie" not in response.headers, response.url
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
        assert response.headers["cache-control"] == "no-store"
        assert "server" not in response.headers
        assert "cookie" not in response.headers.get("vary", "").lower()
    assert answers[1].status_code == 401  # a console session is no API credential
    assert answers[4].status_code == 404 and answers[4].json() == {"detail": "Not Found"}


async def test_the_api_has_no_session_the_console_has():
    """The console's session middleware steps aside for /api/v1: no cookie is read there."""
    seen: dict[str, bool] = {}

    async def inner(scope, receive, send):
        seen[scope["path"]] = "session" in scope

    sessions = ConsoleSessions(inner, secret_key=SECRET, session_cookie=SESSION_COOKIE)
    for path in ("/login", f"{API_PREFIX}/status", API_PREFIX, "/api/v10"):
        await sessions({"type": "http", "path": path, "headers": []}, None, None)
    assert seen == {"/login": True, f"{API_PREFIX}/status": False, API_PREFIX: False, "/api/v10": True}


# -- the OpenAPI document and the docs page ---------------------------------------------------------


def test_the_openapi_document_is_valid_3_1_and_lists_status(store):
    from openapi_spec_validator import OpenAPIV31SpecValidator

    config = make_config(str(store.engine.url))
    with console_server(store, config) as client:
        document = client.get(f"{API_PREFIX}/openapi.json").json()
    assert document["openapi"].startswith("3.1.")
    assert list(OpenAPIV31SpecValidator(document).iter_errors()) == []
    assert document["servers"] == [{"url": API_PREFIX}]
    status = document["paths"]["/status"]["get"]
    assert status["security"] == [{"token": []}]
    assert document["components"]["securitySchemes"]["token"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "A token made by `watcher tokens add NAME --scope read|write [--officer ID]`.",
    }
    assert {"200", "401", "403", "429"} <= set(status["responses"])
    assert status["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/StatusReport"
    }
    assert "/docs" not in document["paths"] and "/docs/assets/{name}" not in document["paths"]


def test_the_docs_page_loads_only_assets_served_here(store):
    config = make_config(str(store.engine.url))
    with console_server(store, config) as client:
        page = client.get(f"{API_PREFIX}/docs")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        urls = re.findall(r'(?:src|href|data-openapi)="([^"]+)"', page.text)
        assert len(urls) == 5
        for url in urls:
            assert not re.match(r"(?i)(https?:)?//", url), url
            asset = client.get(url)
            assert asset.status_code == 200, url
            assert len(asset.content) > 100
        policy = page.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "'unsafe-inline'" not in policy and "http" not in policy
        assert "<script>" not in page.text  # no inline script: the CSP would block it
        script = client.get(f"{API_PREFIX}/docs/assets/swagger-ui-bundle.js")
        assert script.headers["content-type"].startswith("text/javascript")
        assert "cache-control" not in script.headers  # static: may be cached
        assert client.get(f"{API_PREFIX}/docs/assets/..%2Fapp.py").status_code == 404


CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def test_the_docs_page_renders_in_a_browser_under_its_csp(store, tmp_path):
    """Swagger UI reads the 3.1 document and shows /status; the browser reports no CSP violation."""
    if shutil.which("chromium") is None and not Path(CHROMIUM).exists():
        pytest.fail(
            "chromium is not installed: apt-get install -y chromium chromium-driver (.ci/run does this)"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.support.wait import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-dev-shm-usage",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    config = make_config(str(store.engine.url))
    with console_server(store, config) as client:
        driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
        try:
            driver.get(f"{client.base_url}{API_PREFIX}/docs")
            WebDriverWait(driver, 20).until(
                lambda d: "/status" in d.find_element("css selector", "body").text,
                message="Swagger UI never showed /status",
            )
            text = driver.find_element("css selector", "body").text
            log = driver.get_log("browser")
        finally:
            driver.quit()
    assert "Borrower Watcher API" in text and "OAS 3.1" in text
    assert not [entry for entry in log if "Content Security Policy" in entry["message"]], log
    assert not [entry for entry in log if entry["level"] == "SEVERE"], log


# -- what resource modules share: write scope, bodies, limits, pages, audit ------------------------


class Note(ApiModel):
    subject: str = Field(min_length=1, max_length=64)
    count: int = Field(ge=0)
    items: list[str] = []


class Item(BaseModel):
    n: int


probe = APIRouter(tags=["probe"])


@probe.post("/notes", responses=WRITE_ERRORS)
def post_note(note: Note, who: Writer, api: Deployment) -> dict[str, int]:
    with api.store.transaction() as session:
        audit_write(
            session,
            who,
            AuditAction.BORROWER_UPDATED,
            subject_type="probe",
            subject_id=note.subject,
            detail={"count": note.count},
        )
    return {"items": len(note.items)}


@probe.get("/numbers")
def numbers(who: Reader, page: PageQuery) -> Page[Item]:
    start = int(page.cursor or 0)
    end = min(start + page.limit, 2500)
    return Page.of([Item(n=n) for n in range(start, end)], str(end) if end < 2500 else None)


@probe.get("/broken")
def broken(who: Reader) -> Item:
    raise RuntimeError("a bug")


@contextmanager
def probe_server(store: Store, **api: Any) -> Iterator[httpx.Client]:
    config = make_config(str(store.engine.url), **api)
    with app_server(create_api(store, config, resources=(*RESOURCES, probe))) as client:
        yield client


def test_a_read_token_may_not_write_and_a_write_is_audited_with_the_tokens_name(store):
    reader, writer = new_token(store, "mart"), new_token(store, "loans", TokenScope.WRITE)
    body = {"subject": "b-1", "count": 3, "items": ["x"]}
    with probe_server(store) as client:
        refused = client.post("/notes", json=body, headers=bearer(reader))
        accepted = client.post("/notes", json=body, headers=bearer(writer))
        anonymous = client.post("/notes", json=body)
    assert refused.status_code == 403 and "read-only" in refused.json()["detail"]
    assert accepted.status_code == 200 and accepted.json() == {"items": 1}
    assert anonymous.status_code == 401
    with store.session() as session:
        rows = session.exec(select(AuditLog).where(col(AuditLog.subject_type) == "probe")).all()
    assert [(r.actor, r.action, r.subject_id) for r in rows] == [
        ("api:loans", AuditAction.BORROWER_UPDATED, "b-1")
    ]


def test_bad_input_is_422_with_the_field_path_and_reason(store):
    writer = new_token(store, "loans", TokenScope.WRITE)
    headers = {**bearer(writer), "Content-Type": "application/json"}
    with probe_server(store) as client:
        malformed = client.post("/notes", content=b'{"subject": "b-1", "count": ', headers=headers)
        unknown = client.post("/notes", json={"subject": "b-1", "count": 1, "colour": "red"}, headers=headers)
        invalid = client.post("/notes", json={"subject": "", "count": -1}, headers=headers)
        not_an_object = client.post("/notes", json=[1, 2], headers=headers)
    assert malformed.status_code == 422
    assert malformed.json()["detail"][0]["loc"][0] == "body"
    assert malformed.json()["detail"][0]["type"] == "json_invalid"
    assert unknown.status_code == 422
    assert [(e["loc"], e["type"]) for e in unknown.json()["detail"]] == [
        (["body", "colour"], "extra_forbidden")
    ]
    assert invalid.status_code == 422
    problems = {tuple(e["loc"]): e for e in invalid.json()["detail"]}
    assert set(problems) == {("body", "subject"), ("body", "count")}
    assert "greater than or equal to 0" in problems[("body", "count")]["msg"]
    assert all(set(e) == {"loc", "msg", "type"} for e in invalid.json()["detail"])  # input not echoed
    assert not_an_object.status_code == 422


def test_a_failure_is_a_json_500_that_tells_nothing_of_the_error(store):
    reader = new_token(store, "mart")
    with probe_server(store) as client:
        response = client.get("/broken", headers=bearer(reader))
    assert response.status_code == 500
    assert response.json() == {"detail": "internal error; the server's log has the details"}


def test_pages_are_limited_to_1000_items(store):
    reader = new_token(store, "mart")
    with probe_server(store) as client:
        first = client.get("/numbers", headers=bearer(reader)).json()
        assert len(first["items"]) == 100 and first["next_cursor"] == "100"
        seen, cursor = [], None
        while True:
            params = {"limit": 1000, **({"cursor": cursor} if cursor else {})}
            page = client.get("/numbers", params=params, headers=bearer(reader)).json()
            seen += [item["n"] for item in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == list(range(2500))
        for limit in (0, 1001, "many"):
            refused = client.get("/numbers", params={"limit": limit}, headers=bearer(reader))
            assert refused.status_code == 422
            assert refused.json()["detail"][0]["loc"] == ["query", "limit"]


def test_bodies_over_max_body_bytes_are_refused_before_they_are_read_whole(store):
    writer = new_token(store, "loans", TokenScope.WRITE)
    limit = 64 * 1024
    small = {"subject": "b-1", "count": 1, "items": ["x" * 100] * 100}
    big = {"subject": "b-1", "count": 1, "items": ["x" * 100] * 1000}
    assert len(json.dumps(small)) < limit < len(json.dumps(big))
    with probe_server(store, max_body_bytes=limit) as client:
        assert client.post("/notes", json=small, headers=bearer(writer)).status_code == 200
        declared = client.post("/notes", json=big, headers=bearer(writer))
        assert declared.status_code == 413
        assert declared.json() == {"detail": f"the request body is larger than {limit} bytes"}

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
            payload = json.dumps(big).encode()
            for start in range(0, len(payload), 8192):
                yield payload[start : start + 8192]

        streamed = client.post(
            "/notes", content=chunks(), headers={**bearer(writer), "Content-Type": "application/json"}
        )
        assert streamed.status_code == 413 and "larger than" in streamed.json()["detail"]
        # Unauthenticated and oversized: refused on its declared size, never read.
        assert client.post("/notes", json=big).status_code == 413


def test_a_bulk_upsert_of_10000_parties_fits_the_default_body_limit(store):
    writer = new_token(store, "loans", TokenScope.WRITE)
    party = "b-000000,杭州澜潮智能装备有限公司,qichacha,91330106MA2CCXXXXX,zhang_wei,制造;重点,borrower,"
    body = {"subject": "bulk", "count": 10_000, "items": [party] * 10_000}
    assert len(json.dumps(body, ensure_ascii=False).encode()) > 1_000_000
    with probe_server(store) as client:
        response = client.post("/notes", json=body, headers=bearer(writer))
    assert response.status_code == 200 and response.json() == {"items": 10_000}


def test_each_token_has_its_own_rate_and_hears_when_to_retry(store):
    first, second = new_token(store, "mart"), new_token(store, "loans")
    with probe_server(store, rate="3/1m") as client:
        answers = [client.get("/numbers", headers=bearer(first)) for _ in range(4)]
        other = client.get("/numbers", headers=bearer(second))
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert 1 <= int(answers[3].headers["retry-after"]) <= 20
    assert "mart" in answers[3].json()["detail"]
    assert other.status_code == 200
