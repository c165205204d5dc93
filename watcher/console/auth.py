"""Console accounts: salted password hashes, the sign-in throttle, and CSRF tokens.

Passwords are hashed with scrypt (stdlib, memory-hard) and a random salt per user; checks compare
in constant time, and an unknown user name costs the same hash as a known one, so timing does not
tell which names exist. Everything here is free of the web framework so the CLI can use it too.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlmodel import Session, select

from watcher.models import User, utcnow
from watcher.store import audit

OFFICER, REVIEWER = "officer", "reviewer"
ROLES = (OFFICER, REVIEWER)
USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
MIN_PASSWORD_LENGTH = 10

# scrypt cost: n=2**14, r=8 takes ~16 MiB and some tens of milliseconds: slow for a guesser,
# quick for a person signing in. The parameters are stored with each hash, so they can be raised.
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P, _SCRYPT_LEN = 2**14, 8, 1, 32
_SALT_BYTES = 16


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_password(password: str) -> str:
    """``scrypt$n$r$p$salt$hash`` with a fresh random salt."""
    salt = secrets.token_bytes(_SALT_BYTES)
    digest = hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, dklen=_SCRYPT_LEN
    )
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches ``stored``; a malformed hash never matches."""
    try:
        scheme, n, r, p, salt, expected = stored.split("$")
        if scheme != "scrypt":
            return False
        digest = hashlib.scrypt(
            password.encode("utf-8"),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(base64.b64decode(expected)),
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(digest, base64.b64decode(expected))


# Compared against when the user name is unknown, so that case takes as long as a wrong password.
_DUMMY_HASH = hash_password(secrets.token_urlsafe(16))


class UserError(ValueError):
    """A user cannot be created as asked (bad name, role, officer, or the name is taken)."""


def create_user(
    session: Session,
    *,
    username: str,
    password: str,
    role: str,
    display_name: str,
    officer_id: str | None = None,
    language: str | None = None,
    actor: str,
) -> User:
    """Add a user, recorded in the audit log; raises :class:`UserError` for what the caller can fix."""
    if USERNAME.fullmatch(username) is None:
        raise UserError(f"user name {username!r}: use 1-64 letters, digits, '.', '_', '@' or '-'")
    if role not in ROLES:
        raise UserError(f"role {role!r}: expected officer or reviewer")
    if role == OFFICER and not officer_id:
        raise UserError("an officer needs --officer ID (an [officers.<id>] table of the config)")
    if role == REVIEWER and officer_id:
        raise UserError("--officer applies to role officer only; a reviewer sees every borrower")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UserError(f"the password must be at least {MIN_PASSWORD_LENGTH} characters")
    if not display_name.strip():
        raise UserError("the display name must not be empty")
    if session.exec(select(User).where(User.username == username)).first() is not None:
        raise UserError(f"user {username!r} already exists")
    user = User(
        username=username,
        display_name=display_name.strip(),
        password_hash=hash_password(password),
        role=role,
        officer_id=officer_id,
        language=language,
    )
    session.add(user)
    session.flush()
    audit(
        session,
        actor=actor,
        action="console.user_added",
        subject_type="console_user",
        subject_id=username,
        detail={"role": role, "officer_id": officer_id or "", "display_name": user.display_name},
    )
    return user


def find_user(session: Session, username: str) -> User | None:
    return session.exec(select(User).where(User.username == username)).first()


def check_credentials(session: Session, username: str, password: str) -> User | None:
    """The active user with this name and password, else None (same cost either way)."""
    user = find_user(session, username)
    if user is None or not user.active:
        verify_password(password, _DUMMY_HASH)
        return None
    return user if verify_password(password, user.password_hash) else None


@dataclass
class _Failures:
    count: int = 0
    locked_until: float = 0.0


class LoginThrottle:
    """Per user name: after ``max_failures`` wrong passwords in a row, refuse sign-ins for ``lockout``.

    Kept in memory per console process: a restart clears it, which is acceptable because the point
    is to make guessing slow (5 guesses a minute), not to lock accounts for good. Keyed by the name
    as typed (case-folded), so unknown names are throttled too and do not reveal themselves.
    """

    def __init__(
        self,
        *,
        max_failures: int = 5,
        lockout_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self.lockout_seconds = lockout_seconds
        self.clock = clock
        self._failures: dict[str, _Failures] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _key(username: str) -> str:
        return username.strip().casefold()

    def locked_for(self, username: str) -> float:
        """Seconds until this name may try again; 0 when it may try now."""
        with self._lock:
            entry = self._failures.get(self._key(username))
            if entry is None:
                return 0.0
            return max(0.0, entry.locked_until - self.clock())

    def failed(self, username: str) -> bool:
        """Record a wrong password; True when this failure starts a lockout."""
        with self._lock:
            key = self._key(username)
            entry = self._failures.setdefault(key, _Failures())
            if entry.locked_until and entry.locked_until <= self.clock():
                entry.count, entry.locked_until = 0, 0.0
            entry.count += 1
            if entry.count >= self.max_failures:
                entry.locked_until = self.clock() + self.lockout_seconds
                entry.count = 0
                return True
            return False

    def succeeded(self, username: str) -> None:
        with self._lock:
            self._failures.pop(self._key(username), None)


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


def csrf_matches(expected: str | None, given: str | None) -> bool:
    """Constant-time comparison; a missing token on either side never matches."""
    if not expected or not given:
        return False
    return hmac.compare_digest(expected.encode("utf-8"), given.encode("utf-8"))


def record_sign_in(session: Session, user: User, *, via: str) -> None:
    audit(
        session,
        actor=user.display_name,
        action="console.signed_in",
        subject_type="console_user",
        subject_id=user.username,
        detail={"via": via},
        at=utcnow(),
    )


def record_lockout(session: Session, username: str, *, seconds: float) -> None:
    audit(
        session,
        actor=username[:128] or "(empty)",
        action="console.locked_out",
        subject_type="console_user",
        subject_id=username[:64] or "(empty)",
        detail={"seconds": int(seconds)},
        at=utcnow(),
    )
