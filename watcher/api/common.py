"""What every endpoint of the API shares: the deployment, the caller (token, scope, officer, rate),
request models that refuse unknown fields, pagination, the error body and the audit helper.

A resource module declares its routes with these and nothing else of its own for authentication:
``who: Reader`` (any valid token) or ``who: Writer`` (a write token), ``api: Deployment`` for the
store and config, ``page: PageQuery`` for ``limit``/``cursor``, :func:`audit_write` for the trail.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, HTTPException, Query, Request, status
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import Session
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from watcher.api.tokens import Principal, authenticate
from watcher.config import Config
from watcher.models import utcnow
from watcher.store import Store, audit
from watcher.units import Rate
from watcher.vocabulary import AuditAction

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
MAX_ID = 2**31 - 1
"""The highest id a stored row can have (PostgreSQL's integer columns): a larger one in a path or
cursor is 422, as PostgreSQL refuses to compare it with an id column (was 500)."""
REALM = "borrower-watcher"


class RateLimiter:
    """A token bucket per API token: ``rate.count`` requests at once, refilled evenly over ``rate.per``.
    Kept in memory: each process serving the API limits its own share."""

    def __init__(self, rate: Rate, clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = float(rate.count)
        self.per_second = rate.count / rate.per.total_seconds()
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """0 when ``key`` may go ahead (one request taken), else the seconds until it may."""
        with self._lock:
            now = self.clock()
            tokens, then = self._buckets.get(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - then) * self.per_second)
            if tokens >= 1:
                self._buckets[key] = (tokens - 1, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1 - tokens) / self.per_second


@dataclass
class Api:
    """The deployment every request works with (``app.state.api``)."""

    store: Store
    config: Config
    clock: Callable[[], datetime] = utcnow
    limiter: RateLimiter = field(init=False)

    def __post_init__(self) -> None:
        self.limiter = RateLimiter(self.config.api.rate)


def deployment(request: Request) -> Api:
    api: Api = request.app.state.api
    return api


Deployment = Annotated[Api, Depends(deployment)]


class BodyLimit:
    """Refuses request bodies over ``max_bytes`` with 413 before they are read whole: at once when
    ``Content-Length`` says so, else as soon as the chunks received pass the limit."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _too_large(self) -> HTTPException:
        return HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE, f"the request body is larger than {self.max_bytes} bytes"
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            error = self._too_large()
            await JSONResponse({"detail": error.detail}, error.status_code)(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise self._too_large()  # FastAPI answers it as any HTTPException: JSON 413
            return message

        await self.app(scope, counted, send)


class ErrorBody(BaseModel):
    """Every error but 422: ``{"detail": "what went wrong"}``. A 422 carries FastAPI's list of
    ``{"loc": [...field path], "msg": reason, "type": kind}`` instead."""

    detail: str


ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "No token, or an unknown or revoked one"},
    403: {"model": ErrorBody, "description": "The token may not do this"},
    429: {"model": ErrorBody, "description": "Too many requests for this token; see Retry-After"},
}
"""The errors every endpoint may answer, for its ``responses=`` (so the OpenAPI document lists them)."""
WRITE_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    413: {"model": ErrorBody, "description": "The request body is larger than [api] max_body_bytes"},
}

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="token",
    description="A token made by `watcher tokens add NAME --scope read|write [--officer ID]`.",
)


def _unauthorized(detail: str, *, invalid: bool) -> HTTPException:
    challenge = f'Bearer realm="{REALM}"' + (', error="invalid_token"' if invalid else "")
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail, headers={"WWW-Authenticate": challenge})


def caller(
    api: Deployment,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The token's principal; 401 without a valid one, 429 beyond its rate. Runs in a worker thread."""
    if credentials is None:
        raise _unauthorized("an API token is required: Authorization: Bearer <token>", invalid=False)
    with api.store.session() as session:
        who = authenticate(session, credentials.credentials, now=api.clock())
    if who is None:
        raise _unauthorized("the token is unknown or revoked", invalid=True)
    wait = api.limiter.take(who.name)
    if wait > 0:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            f"more than {api.config.api.rate} requests for token {who.name}",
            headers={"Retry-After": str(max(1, math.ceil(wait)))},
        )
    return who


Reader = Annotated[Principal, Depends(caller)]
"""Any valid token (read or write scope)."""


def write_caller(who: Reader) -> Principal:
    """A token of scope write; 403 for a read token."""
    if not who.may_write:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, f"token {who.name} is read-only; this needs scope write"
        )
    return who


Writer = Annotated[Principal, Depends(write_caller)]
"""A token of scope write."""


def reviewer_caller(who: Reader) -> Principal:
    """A token without an officer: what is deployment-wide, not any one officer's parties; 403 else."""
    if who.officer_id is not None:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"token {who.name} is limited to officer {who.officer_id}; this needs a token without --officer",
        )
    return who


DeploymentReader = Annotated[Principal, Depends(reviewer_caller)]
"""A token that sees the whole deployment (no officer)."""


class ApiModel(BaseModel):
    """Base of every request body: unknown fields are refused (422), as a typo must not pass silently."""

    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True, slots=True)
class PageParams:
    limit: int
    cursor: str | None


def page_query(
    limit: Annotated[
        int, Query(ge=1, le=MAX_LIMIT, description="Items per page (at most 1000)")
    ] = DEFAULT_LIMIT,
    cursor: Annotated[
        str | None, Query(max_length=200, description="Where the previous page ended (its next_cursor)")
    ] = None,
) -> PageParams:
    return PageParams(limit, cursor)


PageQuery = Annotated[PageParams, Depends(page_query)]
"""``?limit=`` (1 to 1000, default 100; beyond: 422) and ``?cursor=``, opaque to the caller."""


Item = TypeVar("Item", bound=BaseModel)


class Page(BaseModel, Generic[Item]):
    """A page of a listing: read ``next_cursor`` back as ``?cursor=`` until it is null."""

    items: list[Item]
    next_cursor: str | None = Field(description="The cursor of the next page; null on the last one")

    @classmethod
    def of(cls, items: Sequence[Item], next_cursor: str | None) -> Page[Item]:
        return cls(items=list(items), next_cursor=next_cursor)


def audit_write(
    session: Session,
    who: Principal,
    action: AuditAction,
    *,
    subject_type: str,
    subject_id: object,
    detail: dict[str, Any] | None = None,
) -> None:
    """An audit row for a write made through the API, named ``api:<token name>``. Writes through the
    modules shared with the CLI and console (``watcher.alerts``, ``watcher.lifecycle``) pass
    ``who.actor`` as their ``actor`` instead."""
    audit(
        session,
        actor=who.actor,
        action=action,
        subject_type=subject_type,
        subject_id=subject_id,
        detail=detail,
    )
