"""Contract tests of the integration API (issue 17) from its own OpenAPI document, with schemathesis.

The server is the real one (``serve_console``, as ``watcher serve`` runs it) on 127.0.0.1 over a
real store that the real Checker filled from saved registry responses (``tests/deployment.py``):
three parties, their alerts and change events, so reads return data. For every operation of
``/api/v1/openapi.json`` schemathesis generates requests (property-based, derandomized so CI sees
the same examples each run) and sends them with a write token, a read token, an officer's token and
no token, after a few requests naming stored parties and alerts (so 200 answers with data are
checked too); every answer must be documented: no 5xx, a status code the document lists for it, a
body and headers that match the document's schema for that code. SQLite and PostgreSQL alike, with
fewer generated examples on PostgreSQL.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.deployment import FJORDLYS, HARDANGER, LANCHAO, Deployment
from tests.test_api import SECRET, bearer, console_server, new_token
from watcher.api.app import API_PREFIX, OPENAPI_PATH
from watcher.vocabulary import TokenScope

CHANNELS = f"""\
[console]
secret_key = "{SECRET}"

[api]
rate = "100000/s"

[officers.zhang_wei]
name = "张伟"

[officers.li_na]
name = "李娜"

"""
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
"""What a contract means here: no 5xx, and what comes back (code, type, headers, body) is documented."""
EXAMPLES_SQLITE = 12
EXAMPLES_POSTGRESQL = 5


@pytest.fixture(params=["sqlite", "postgresql"])
def world(request, tmp_path: Path, sqlite_url: str) -> Iterator[Deployment]:
    """Three parties with alerts and change events (lanchao: zhang_wei, high; fjordlys: li_na,
    warning; hardanger: no officer, info)."""
    url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else sqlite_url
    deployment = Deployment(tmp_path, url, CHANNELS)
    deployment.baseline_then_change(LANCHAO, replace(FJORDLYS, officer="li_na"), HARDANGER)
    yield deployment
    deployment.close()


def tokens(world: Deployment) -> dict[str, str | None]:
    return {
        "write": new_token(world.store, "loans", TokenScope.WRITE),
        "read": new_token(world.store, "mart"),
        "officer": new_token(world.store, "zhang-feed", TokenScope.WRITE, officer="zhang_wei"),
        "none": None,
    }


def known_cases(world: Deployment) -> dict[str, list[dict[str, Any]]]:
    """Requests naming what is stored, sent before the generated ones (which mostly miss: 404), so the
    richest answers (a party, an alert with its changes and evidence, a written party) are checked too."""
    alerts = [alert.id for alert in world.alerts().values()]
    hardanger = {"name": HARDANGER.name, "source": "no", "registry_id": HARDANGER.registry_id}
    party = {"party_id": HARDANGER.id}
    return {
        "GET /parties": [{}, {"query": {"tag": "zhejiang"}}, {"query": {"limit": 1}}],
        "GET /parties/{party_id}": [{"path": {"party_id": row.id}} for row in (LANCHAO, FJORDLYS, HARDANGER)],
        "PUT /parties/{party_id}": [
            {"path": party, "body": {**hardanger, "legal_rep_on_file": "Erik Lunde"}}
        ],
        "POST /parties:bulk": [
            {"body": {"items": [{**hardanger, "id": HARDANGER.id}, {**hardanger, "id": "b-ny"}]}}
        ],
        "POST /parties/{party_id}/deactivate": [{"path": party, "body": {"reason": "repaid"}}],
        "POST /parties/{party_id}/reactivate": [{"path": party, "body": {"reason": "new loan"}}],
        "GET /alerts": [{}, {"query": {"severity": "warning", "status": "open"}}],
        "GET /alerts/{alert_id}": [{"path": {"alert_id": alert_id}} for alert_id in alerts],
        "POST /alerts/{alert_id}/acknowledge": [{"path": {"alert_id": alerts[0]}, "body": {"by": "张伟"}}],
        "POST /alerts/{alert_id}/close": [
            {"path": {"alert_id": alerts[0]}, "body": {"by": "张伟", "note": "ok"}}
        ],
        "GET /events": [{}, {"query": {"limit": 2}}],
        "GET /status": [{}],
    }


def run_contract(
    client: httpx.Client,
    token: str | None,
    known: dict[str, list[dict[str, Any]]],
    *,
    examples: int,
) -> dict[str, list[int]]:
    """Every operation of the served document against the served API: the known requests, then the
    generated ones. Returns each operation's status codes for the known requests."""
    base = str(client.base_url).rstrip("/")
    document = client.get(API_PREFIX + OPENAPI_PATH).json()
    schema = schemathesis.openapi.from_dict(document)
    headers = bearer(token) if token else {}
    ran: dict[str, list[int]] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        name = f"{operation.method.upper()} {operation.path}"
        ran[name] = []
        for request in known[name]:
            case = operation.Case(
                path_parameters=request.get("path"),
                query=request.get("query"),
                **({"body": request["body"], "media_type": "application/json"} if "body" in request else {}),
            )
            response = case.call_and_validate(
                base_url=base + API_PREFIX, headers=headers, checks=CHECKS, timeout=30
            )
            ran[name].append(response.status_code)

        @given(case=operation.as_strategy())
        @settings(
            max_examples=examples,
            derandomize=True,
            deadline=None,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def conforms(case) -> None:
            case.call_and_validate(base_url=base + API_PREFIX, headers=headers, checks=CHECKS, timeout=30)

        conforms()
    return ran


@pytest.mark.parametrize("who", ["write", "read", "officer", "none"])
def test_every_operation_keeps_to_the_document(world, who):
    """Every operation on both stores; fewer generated examples on PostgreSQL."""
    postgres = world.store.engine.dialect.name == "postgresql"
    token = tokens(world)[who]
    known = known_cases(world)
    with console_server(world.store, world.config) as client:
        ran = run_contract(
            client,
            token,
            known,
            examples=EXAMPLES_POSTGRESQL if postgres else EXAMPLES_SQLITE,
        )
    assert set(ran) == set(known), "the document has the operations this test knows"
    reads = {name: codes for name, codes in ran.items() if name.startswith("GET ")}
    writes = {name: codes for name, codes in ran.items() if not name.startswith("GET ")}
    if who == "none":
        assert {code for codes in ran.values() for code in codes} == {401}
    elif who == "officer":  # zhang_wei: lanchao is theirs, the others are not
        assert ran["GET /parties/{party_id}"] == [200, 404, 404]
        assert ran["PUT /parties/{party_id}"] == [403]
    else:
        assert {code for codes in reads.values() for code in codes} == {200}
        assert {code for codes in writes.values() for code in codes} <= ({200} if who == "write" else {403})


def test_ids_beyond_what_a_store_holds_are_422(world):
    """Found by the contract run on PostgreSQL: an alert id or a cursor past its integer columns was
    a 500 (PostgreSQL refuses to compare it); now 422 with the field path, on both stores."""
    token = tokens(world)["read"]

    def cursor(prefix: str, number: int) -> str:
        return base64.urlsafe_b64encode(f"{prefix}{number}".encode()).decode().rstrip("=")

    with console_server(world.store, world.config) as client:
        for url, params, field in [
            (f"{API_PREFIX}/alerts/{2**31}", {}, ["path", "alert_id"]),
            (f"{API_PREFIX}/alerts", {"cursor": cursor("al1:", 2**31)}, ["query", "cursor"]),
            (f"{API_PREFIX}/events", {"after": cursor("ev1:", 10**17)}, ["query", "after"]),
        ]:
            response = client.get(url, params=params, headers=bearer(token))
            assert response.status_code == 422, (url, response.text)
            assert response.json()["detail"][0]["loc"] == field
        assert client.get(f"{API_PREFIX}/alerts/{2**31 - 1}", headers=bearer(token)).status_code == 404
        last = client.get(
            f"{API_PREFIX}/events", params={"after": cursor("ev1:", 2**31 - 1)}, headers=bearer(token)
        )
        assert last.status_code == 422, "within the column, but beyond this feed: refused, never a 500"
        assert "beyond this feed" in last.json()["detail"][0]["msg"]
