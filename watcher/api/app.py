"""The integration API as a FastAPI app, mounted at :data:`API_PREFIX` in the console's server.

FastAPI runs on the console's Starlette and writes the OpenAPI 3.1 document from the routes' typed
models; nothing of it is written by hand. Each resource group is one module with an ``APIRouter``
listed in :data:`RESOURCES` (see the package's docstring for the pattern).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from importlib.metadata import version
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from watcher.api import alerts, docs, events, parties, status
from watcher.api.common import Api, BodyLimit
from watcher.config import Config
from watcher.models import utcnow
from watcher.store import Store

API_PREFIX = "/api/v1"
OPENAPI_PATH = "/openapi.json"
DOCS_PATH = API_PREFIX + docs.DOCS_PATH
ASSETS_PREFIX = API_PREFIX + docs.ASSETS_PATH + "/"
DOCS_CSP = docs.DOCS_CSP

RESOURCES: tuple[APIRouter, ...] = (parties.router, alerts.router, events.router, status.router)
"""The resource groups, in the order the OpenAPI document lists them."""

DESCRIPTION = """\
The loan system's way in: the watch list, the findings and the deployment's health.

Every endpoint needs `Authorization: Bearer <token>` (a token from `watcher tokens add`); a read
token reads, a write token also writes, and a token made with `--officer` sees only that officer's
parties. Errors are JSON: `{"detail": "…"}`, or for 422 a list of `{"loc": [field path], "msg":
reason, "type": kind}`. See the README's "Integration API".
"""


async def _invalid_request(request: Request, error: Exception) -> JSONResponse:
    """422 with each problem's field path and reason; the rejected input is not echoed back."""
    assert isinstance(error, RequestValidationError)
    detail = [{"loc": list(e["loc"]), "msg": _reason(e), "type": e["type"]} for e in error.errors()]
    return JSONResponse({"detail": detail}, status_code=422)


# The patterns the API's text parameters carry, as people read them (not as regular expressions).
_PATTERN_REASONS = {
    r"^[^\x00]*$": "contains a NUL character",
    r"^[^\x00]*[^\x00\s][^\x00]*$": "must not be blank or contain a NUL character",
}


def _reason(error: Any) -> str:
    """A validation error's message; a pattern is said in words, and pydantic's "Value error, " prefix
    (a validator's own sentence follows it) is dropped."""
    if error["type"] == "string_pattern_mismatch":
        pattern = (error.get("ctx") or {}).get("pattern", "")
        return _PATTERN_REASONS.get(pattern, f"does not match {pattern}")
    return str(error["msg"]).removeprefix("Value error, ")


async def _failed(request: Request, error: Exception) -> JSONResponse:
    """500 as JSON like every other answer; the error itself is logged by the server, not shown."""
    return JSONResponse({"detail": "internal error; the server's log has the details"}, status_code=500)


def create_api(
    store: Store,
    config: Config,
    *,
    clock: Callable[[], datetime] = utcnow,
    resources: Sequence[APIRouter] = RESOURCES,
) -> FastAPI:
    """The API for one deployment; served under :data:`API_PREFIX` by ``console.app.create_app``."""
    app = FastAPI(
        title="Borrower Watcher API",
        version=version("borrower-watcher"),
        description=DESCRIPTION,
        openapi_url=OPENAPI_PATH,
        docs_url=None,
        redoc_url=None,
    )
    app.add_middleware(BodyLimit, max_bytes=config.api.max_body_bytes)
    app.state.api = Api(store, config, clock)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(Exception, _failed)
    for router in resources:
        app.include_router(router)
    app.include_router(docs.router)
    return app
