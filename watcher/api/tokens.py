"""API tokens: made once, shown once, stored as a salted hash; free of the web framework so that
``watcher tokens`` can use it without loading FastAPI.

A token reads ``bwt_<lookup>_<secret>``. ``lookup`` is public and finds the row; the secret (32
random bytes) is proved against ``sha256(salt + secret)`` in constant time. A slow password hash
would add nothing against guessing 256 random bits and would cost every request; a copy of the
table still hands out no usable token.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from watcher.models import ApiToken, utcnow
from watcher.store import audit
from watcher.visibility import OFFICER, REVIEWER
from watcher.vocabulary import AuditAction, TokenScope

PREFIX = "bwt"
TOKEN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
_TOKEN = re.compile(rf"{PREFIX}_([0-9a-f]{{16}})_([A-Za-z0-9_-]{{43}})")
LAST_USED_EVERY = timedelta(minutes=1)
"""``last_used_at`` is written at most this often per token: a busy caller is not a write per request."""
SUBJECT = "api_token"


class TokenError(ValueError):
    """A token could not be added or revoked; the message says why."""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who calls the API: a token's name, scope and officer; a :class:`watcher.visibility.Viewer`."""

    token_id: int
    name: str
    scope: TokenScope
    officer_id: str | None

    @property
    def role(self) -> str:
        return REVIEWER if self.officer_id is None else OFFICER

    @property
    def may_write(self) -> bool:
        return self.scope is TokenScope.WRITE

    @property
    def actor(self) -> str:
        """Who the audit log names for this token's writes."""
        return f"api:{self.name}"


def _digest(salt: str, secret: str) -> str:
    return hashlib.sha256(bytes.fromhex(salt) + secret.encode("ascii")).hexdigest()


_DUMMY_SALT = secrets.token_hex(16)
_DUMMY_HASH = _digest(_DUMMY_SALT, secrets.token_urlsafe(32))


def add_token(
    session: Session, *, name: str, scope: TokenScope, officer_id: str | None, actor: str
) -> tuple[ApiToken, str]:
    """A new token row and the token itself, which exists nowhere else: show it once."""
    if TOKEN_NAME.fullmatch(name) is None:
        raise TokenError(f"token name {name!r}: expected letters, digits and . _ @ - (at most 64)")
    if session.exec(select(ApiToken.id).where(ApiToken.name == name)).first() is not None:
        raise TokenError(f"a token named {name!r} already exists (revoked tokens keep their name)")
    lookup, secret, salt = secrets.token_hex(8), secrets.token_urlsafe(32), secrets.token_hex(16)
    row = ApiToken(
        name=name,
        lookup=lookup,
        salt=salt,
        secret_hash=_digest(salt, secret),
        scope=scope,
        officer_id=officer_id,
    )
    session.add(row)
    session.flush()
    audit(
        session,
        actor=actor,
        action=AuditAction.API_TOKEN_ADDED,
        subject_type=SUBJECT,
        subject_id=name,
        detail={"scope": scope.value, "officer": officer_id},
    )
    return row, f"{PREFIX}_{lookup}_{secret}"


def list_tokens(session: Session) -> list[ApiToken]:
    return list(session.exec(select(ApiToken).order_by(col(ApiToken.name))))


def revoke_token(session: Session, name: str, *, actor: str, now: datetime | None = None) -> ApiToken:
    """Refuse the token from now on (at its next request: nothing is cached)."""
    row = session.exec(select(ApiToken).where(ApiToken.name == name)).first()
    if row is None:
        raise TokenError(f"no token named {name!r}")
    if row.revoked_at is not None:
        raise TokenError(f"token {name!r} was already revoked")
    row.revoked_at = now or utcnow()
    session.add(row)
    audit(session, actor=actor, action=AuditAction.API_TOKEN_REVOKED, subject_type=SUBJECT, subject_id=name)
    return row


def authenticate(session: Session, token: str, *, now: datetime | None = None) -> Principal | None:
    """The principal of a valid, unrevoked ``token``, else None; notes when it was last used."""
    match = _TOKEN.fullmatch(token)
    row = session.exec(select(ApiToken).where(ApiToken.lookup == match[1])).first() if match else None
    secret = match[2] if match else ""
    salt, expected = (row.salt, row.secret_hash) if row is not None else (_DUMMY_SALT, _DUMMY_HASH)
    proved = hmac.compare_digest(_digest(salt, secret), expected)
    if row is None or not proved or row.revoked_at is not None or row.id is None:
        return None
    now = now or utcnow()
    last = row.last_used_at
    if last is None or (last if last.tzinfo else last.replace(tzinfo=now.tzinfo)) < now - LAST_USED_EVERY:
        row.last_used_at = now
        session.add(row)
        session.commit()
    return Principal(row.id, row.name, TokenScope(row.scope), row.officer_id)
