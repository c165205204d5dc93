"""Who sent a console request: the user of the server-side session the signed cookie names, or the
user a trusted proxy's header names; and the CSRF token tied to the browser's session id."""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import IPv4Network, IPv6Network, ip_address

from starlette.requests import Request

from watcher.console.auth import (
    csrf_matches,
    csrf_token_for,
    find_session,
    find_user,
    new_session_id,
    record_sign_in,
    start_session,
)
from watcher.console.context import Console, Ctx, console_of
from watcher.models import ConsoleSession, User

SESSION_ID = "sid"
"""The one key of the signed session cookie: an opaque id, the server-side session's or, before
signing in, only what the sign-in form's CSRF token is derived from."""
PASSWORD_SIGN_IN = "password"


class ProxyUserRefused(Exception):
    """The trusted proxy header names a user who does not exist or is disabled."""


def _in_networks(address: str, networks: Sequence[IPv4Network | IPv6Network]) -> bool:
    try:
        parsed = ip_address(address.strip().strip("[]"))
    except ValueError:
        return False
    mapped = getattr(parsed, "ipv4_mapped", None)
    return any(parsed in network or (mapped is not None and mapped in network) for network in networks)


def from_trusted_proxy(console: Console, request: Request) -> bool:
    """Whether the peer that sent this request is one of ``[console] trusted_proxies``."""
    peer = request.client.host if request.client is not None else None
    return peer is not None and _in_networks(peer, console.proxies)


def client_address(console: Console, request: Request) -> str | None:
    """Who is signing in, for the sign-in throttle: the peer, or behind a trusted proxy the nearest
    address in ``X-Forwarded-For`` that is not itself a trusted proxy."""
    peer = request.client.host if request.client is not None else None
    if peer is None or not from_trusted_proxy(console, request):
        return peer
    hops = [hop.strip() for hop in request.headers.get("x-forwarded-for", "").split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _in_networks(hop, console.proxies):
            return hop
    return hops[0] if hops else peer


def session_id_of(request: Request) -> str | None:
    """The opaque session id the signed cookie carries, if any."""
    value = request.session.get(SESSION_ID)
    return value if isinstance(value, str) and value else None


def begin_session(request: Request, session_id: str) -> None:
    """Replace whatever the cookie held by ``session_id`` (a new id at every sign-in: no fixation)."""
    request.session.clear()
    request.session[SESSION_ID] = session_id


def _proxy_user(console: Console, request: Request, header: str, name: str) -> tuple[User, ConsoleSession]:
    now = console.clock()
    current = session_id_of(request)
    with console.store.session() as session:
        user = find_user(session, name.strip())
        found = find_session(session, current, now=now) if current else None
    if user is None or not user.active:
        raise ProxyUserRefused(name)
    if found is not None and found[1].id == user.id:
        return found[1], found[0]
    with console.store.transaction() as session:
        session_id = start_session(
            session, user, via=f"header {header}", now=now, hours=console.config.console.session_hours
        )
        record_sign_in(session, user, via=f"header {header}")
    begin_session(request, session_id)
    with console.store.session() as session:
        signed = find_session(session, session_id, now=now)
    assert signed is not None
    return signed[1], signed[0]


def signed_in_user(console: Console, request: Request) -> tuple[User, ConsoleSession] | None:
    """The signed-in user and their session row; None when nobody (still) is. Raises
    :class:`ProxyUserRefused` when a trusted proxy names a user who may not sign in."""
    header = console.config.console.trusted_user_header
    if header and from_trusted_proxy(console, request):
        name = request.headers.get(header)
        if name is not None:
            return _proxy_user(console, request, header, name)
    session_id = session_id_of(request)
    if session_id is None:
        return None
    with console.store.session() as session:
        found = find_session(session, session_id, now=console.clock())
    if found is None or found[0].via != PASSWORD_SIGN_IN:
        # An ended session's id stays in the cookie, harmless: only the sign-in form's CSRF token is
        # derived from it, and signing in issues a new id. A session the proxy's header opened lasts
        # only while the proxy keeps sending that header.
        return None
    row, user = found
    return user, row


def ensure_csrf(request: Request) -> str:
    """The CSRF token of this browser's session id, giving a browser without one an id first."""
    session_id = session_id_of(request)
    if session_id is None:
        session_id = new_session_id()
        begin_session(request, session_id)
    return csrf_token_for(console_of(request).secret, session_id)


def csrf_valid(ctx: Ctx) -> bool:
    """Whether the POSTed form carries the CSRF token of this browser's session id."""
    session_id = session_id_of(ctx.request)
    expected = csrf_token_for(ctx.console.secret, session_id) if session_id else None
    return csrf_matches(expected, ctx.field("csrf_token"))
